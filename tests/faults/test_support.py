"""The fault suite's own instruments must be able to fail: a reading that cannot be taken is a
failed test, never a number that makes "nothing changed" true by default."""

from __future__ import annotations

import asyncio
import json

import pytest

from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.gowire.ksuid import new_ksuid
from tests.deliveries import Worker, as_tasks, count_slots, per_slot, redeliveries, refused_refires
from tests.faults.support import manifest_text, run_cli, stream_last_seq, write_manifest
from tests.scheduler_support import prepare
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def test_stream_last_seq_moves_with_writes(nats_server: EmbeddedServer, tmp_path) -> None:
    assert stream_last_seq(nats_server, missing_ok=True) == 0  # no bucket yet
    paths = write_manifest(tmp_path / "m", manifest_text(3))
    assert run_cli("apply", str(paths), "-s", nats_server.url, "--auto-approve").code == 0
    assert stream_last_seq(nats_server) >= 6  # 3 markers and 3 records at least


def test_stream_last_seq_fails_when_the_stream_is_absent(nats_server: EmbeddedServer) -> None:
    with pytest.raises(pytest.fail.Exception, match="is not on"):
        stream_last_seq(nats_server)


def test_stream_last_seq_fails_when_the_server_cannot_be_reached(nats_server: EmbeddedServer, tmp_path) -> None:
    paths = write_manifest(tmp_path / "m", manifest_text(1))
    assert run_cli("apply", str(paths), "-s", nats_server.url, "--auto-approve").code == 0
    before = stream_last_seq(nats_server)
    nats_server.kill()
    # Unreachable is not "nothing was written": comparing it with ``before`` must not pass.
    with pytest.raises(pytest.fail.Exception, match="cannot read"):
        assert stream_last_seq(nats_server) == before


# -- the worker that counts deliveries (tests/deliveries.py) -----------------------------------


async def _publish_item(url: str, task_id: str, msg_id: str | None) -> None:
    """A work item as the scheduler publishes it; ``msg_id`` None is a re-publish the queue's
    duplicate window no longer catches (one made more than 2 minutes after the first)."""
    import nats

    nc = await nats.connect(url)
    try:
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        ack = await nc.jetstream().publish(
            f"CHORIA_AJ.Q.DEFAULT.{task_id}", json.dumps({"kind": 0, "job": task_id}).encode(), headers=headers
        )
        assert ack.seq
    finally:
        await nc.close()


def test_the_worker_counts_a_second_work_item_for_one_slot_as_duplicated(nats_server: EmbeddedServer) -> None:
    url = nats_server.url
    asyncio.run(prepare(url))
    slot = 1_800_000_000
    first, second = new_ksuid(slot), new_ksuid(slot + 1)
    type_of = {first: "t:a", second: "t:a"}
    with Worker(url) as worker:
        asyncio.run(_publish_item(url, first, first))
        wait_until(lambda: len(worker.snapshot()) == 1, 10, "the first delivery")
        # Inside the duplicate window, the same Nats-Msg-Id is dropped by the stream: not a delivery.
        asyncio.run(_publish_item(url, first, first))
        asyncio.run(_publish_item(url, second, second))
        wait_until(lambda: len(worker.snapshot()) == 2, 10, "the next slot's delivery")
        # The same task's item again, past the window: a worker is handed the slot twice.
        asyncio.run(_publish_item(url, first, None))
        wait_until(lambda: len(worker.snapshot()) == 3, 10, "the duplicate delivery")
    counts = per_slot(worker.deliveries, type_of)
    assert counts == {("t:a", slot): 2, ("t:a", slot + 1): 1}
    result = count_slots(as_tasks(worker.deliveries, type_of), ("t:a",), window_s=300)
    assert result["duplicated"] == {"t:a": {slot: 2}}, result
    assert redeliveries(worker.deliveries) == 0


def test_refused_refires_are_read_from_the_scheduler_log() -> None:
    lines = [
        '{"level": "info", "msg": "refused re-fire: schedule nightly slot 2027-01-01T00:00:00+00:00 '
        '(unix 1798761600): task 2Ab already stored"}',
        '{"level": "info", "msg": "leading: 2 schedule(s)"}',
        "not json",
    ]
    assert refused_refires(lines) == {("nightly", 1798761600): 1}

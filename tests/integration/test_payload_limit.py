"""The largest payload a schedule can carry (issue 9 item 10): each fire stores a Task record
in which the payload is base64-encoded once more than in the schedule record, so a payload
can fit the one and not the other. plan and apply check the Task record the scheduler will
publish against the server's own max_payload (from its INFO), and the size the codec computes
is the server's real boundary."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ajc_gitops import codec
from ajc_gitops.commands import apply as apply_command
from ajc_gitops.commands import plan as plan_command
from ajc_gitops.commands.options import ApplyOptions, PlanOptions
from ajc_gitops.connect import ConnectFlags, ConnectOptions
from ajc_gitops.errors import ApplyRefused
from ajc_gitops.model import GoTime, ScheduledTask
from ajc_gitops.scheduler.tasks import build_task
from ajc_gitops.store import Store, enqueue_many, ensure_task_streams
from ajc_gitops.sync.state import read_state

pytestmark = pytest.mark.integration

LIMIT = 200_000
SLOT = datetime(2026, 8, 1, tzinfo=UTC)
CREATED = GoTime(unix_ns=1_785_542_400_123_456_789)  # nine fraction digits: the widest


def _schedule(size: int) -> ScheduledTask:
    return ScheduledTask("BIG", "@every 1s", "DEFAULT", "t", b"x" * size, 60 * 10**9 + 123_456_789, 10)


def _largest_fitting(limit: int) -> int:
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        if codec.fire_publish_size(_schedule(mid)) <= limit:
            low = mid
        else:
            high = mid - 1
    return low


async def test_the_computed_task_record_size_is_the_servers_boundary(nats_server_factory) -> None:
    server = nats_server_factory(extra_config=f"max_payload: {LIMIT}")
    fits = _largest_fitting(LIMIT)
    assert codec.fire_publish_size(_schedule(fits + 1)) > LIMIT
    async with Store.open(ConnectOptions(servers=(server.url,), timeout_s=2.0)) as store:
        assert store.max_payload == LIMIT
        await ensure_task_streams(store)
        [stored] = await enqueue_many(store, [build_task(_schedule(fits), SLOT, created=CREATED)])
    assert stored.status == "enqueued", stored
    # One payload step more and the server refuses the record (and drops the connection).
    async with Store.open(ConnectOptions(servers=(server.url,), timeout_s=2.0)) as store:
        [refused] = await enqueue_many(store, [build_task(_schedule(fits + 1), SLOT, created=CREATED)])
    assert refused.status == "error", refused


def _manifest(tmp_path: Path, size: int) -> Path:
    directory = tmp_path / "manifests"
    directory.mkdir(exist_ok=True)
    blob = base64.b64encode(b"x" * size).decode()
    (directory / "big.yaml").write_text(
        f"schedules:\n  - name: BIG\n    schedule: '@every 1s'\n    task_type: t\n    payload_base64: {blob}\n"
    )
    return directory


@pytest.mark.parametrize("command", ["plan", "apply"])
async def test_plan_and_apply_check_the_task_record_against_the_servers_max_payload(
    command: str, nats_server_factory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = nats_server_factory(extra_config=f"max_payload: {LIMIT}")
    flags = ConnectFlags(server=server.url, timeout_s=2.0)
    # 150,000 bytes: well within the 1 MiB that validate assumes, not within this server's limit.
    paths = (_manifest(tmp_path, 150_000),)
    if command == "plan":
        code = await asyncio.to_thread(plan_command.run, PlanOptions(paths, flags))
    else:
        code = await asyncio.to_thread(
            apply_command.run, ApplyOptions(paths, flags, auto_approve=True), interactive=False
        )
    out = capsys.readouterr().out
    assert code == 1, out
    where = f"{paths[0] / 'big.yaml'}:5:21: error: "
    assert f"{where}payload of 150,000 bytes makes the task record" in out, out
    assert f"above the max_payload of 200,000 bytes of {server.url}; " in out, out
    async with Store.open(ConnectOptions(servers=(server.url,), timeout_s=2.0)) as store:
        records, markers = await read_state(store)
    assert not records and not markers  # nothing written


async def test_a_payload_that_fits_the_server_plans_and_applies(nats_server_factory, tmp_path: Path) -> None:
    server = nats_server_factory(extra_config=f"max_payload: {LIMIT}")
    flags = ConnectFlags(server=server.url, timeout_s=2.0)
    paths = (_manifest(tmp_path, 100_000),)
    code = await asyncio.to_thread(
        apply_command.run, ApplyOptions(paths, flags, auto_approve=True, detailed_exitcode=True), interactive=False
    )
    assert code == 2


async def test_a_saved_plan_is_checked_against_the_server_it_is_applied_to(
    nats_server, nats_server_factory, tmp_path: Path
) -> None:
    planfile = tmp_path / "plan.json"
    paths = (_manifest(tmp_path, 150_000),)
    planned = await asyncio.to_thread(
        plan_command.run, PlanOptions(paths, ConnectFlags(server=nats_server.url, timeout_s=2.0), out=planfile)
    )
    assert planned == 0
    small = nats_server_factory(extra_config=f"max_payload: {LIMIT}")
    with pytest.raises(ApplyRefused) as refused:
        await asyncio.to_thread(
            apply_command.run,
            ApplyOptions((planfile,), ConnectFlags(server=small.url, timeout_s=2.0)),
            interactive=False,
        )
    assert str(refused.value).startswith(f"{paths[0] / 'big.yaml'}:2:5: payload of 150,000 bytes makes"), refused.value
    assert f"the max_payload of 200,000 bytes of {small.url}; " in str(refused.value)
    async with Store.open(ConnectOptions(servers=(small.url,), timeout_s=2.0)) as store:
        records, markers = await read_state(store)
    assert not records and not markers

"""The one-pass read ``status`` uses (``iter_task_records_since``) finds exactly what plain
one-at-a-time gets find, on a real nats-server, whether the pass read every record, only the
later part of them (the rest looked up by ID), or was declined (all looked up by ID)."""

from __future__ import annotations

import contextlib
import random
from datetime import UTC, datetime, timedelta

import pytest

from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.store import Store, iter_task_records_since
from ajc_gitops.store.asyncjobs.sweep import _sweep
from tests.scheduler_support import options, prepare
from tests.task_records import fill, stored_one_by_one
from tests.waiting import async_wait_until


async def _read(store: Store, ids: list[str], since: datetime, sweep_factor: int = 3) -> dict[str, bytes]:
    got: dict[str, bytes] = {}
    reads = iter_task_records_since(store, ids, since=since, max_in_flight=64, sweep_factor=sweep_factor)
    async with contextlib.aclosing(reads) as batches:
        async for batch in batches:
            got.update((ids[i], record) for i, record in batch)  # a later repeat is newer
    return got


async def _swept(store: Store, since: datetime) -> dict[str, bytes]:
    async with contextlib.aclosing(_sweep(store, since, limit=10**6)) as batches:
        return {task_id: record async for batch in batches for task_id, record in batch}


@pytest.mark.parametrize("regime", ["all swept", "declined"])
async def test_the_one_pass_read_finds_what_one_by_one_gets_find(nats_server: EmbeddedServer, regime: str) -> None:
    await prepare(nats_server.url)
    async with Store.open(options(nats_server.url)) as store:
        ids = await fill(store, random.Random(11))
        asked = [*ids, "0" * 27]  # plus an ID no slot has
        since = datetime.now(UTC) - timedelta(hours=1)
        want = await stored_one_by_one(nats_server.url, asked)
        assert 200 < len(want) < len(asked) - 60  # fired, never fired, deleted and purged all present
        swept = await _swept(store, since)
        assert {k: v for k, v in swept.items() if k in want} == want  # the pass alone met them all
        got = await _read(store, asked, since, sweep_factor=3 if regime == "all swept" else 0)
    assert got == want


async def test_records_written_before_the_start_are_looked_up(nats_server: EmbeddedServer) -> None:
    """A record older than the pass's start (a scheduler's clock behind the server's) is not
    met by the pass; its lookup finds it."""
    await prepare(nats_server.url)
    async with Store.open(options(nats_server.url)) as store:
        first = await fill(store, random.Random(12), name="early")
        middle = datetime.now(UTC)
        second = await fill(store, random.Random(13), name="late")
        asked = [*first, *second]
        swept = await _swept(store, middle)
        want = await stored_one_by_one(nats_server.url, asked)
        early = {task_id for task_id in first if task_id in want}
        assert early and not early & swept.keys()  # the pass started after them
        assert {task_id for task_id in second if task_id in want} <= swept.keys()
        assert await _read(store, asked, middle) == want


async def test_leaving_early_deletes_the_reader(nats_server: EmbeddedServer) -> None:
    await prepare(nats_server.url)
    async with Store.open(options(nats_server.url)) as store:
        ids = await fill(store, random.Random(14))
        reads = iter_task_records_since(store, ids, since=datetime.now(UTC) - timedelta(hours=1))
        async with contextlib.aclosing(reads) as batches:
            async for _ in batches:
                break

        async def no_consumer() -> bool:
            info = await store.api_request("STREAM.INFO.CHORIA_AJ_TASKS", None, what="tasks stream")
            return info["state"]["consumer_count"] == 0

        # Well inside the reader's 10 s inactivity threshold: deleted, not expired.
        await async_wait_until(no_consumer, timeout=5, what="the reader's consumer deleted")

"""The pipelined task-record lookup that ``status`` and ``backfill`` use finds exactly what a
plain one-at-a-time ``get_last_msg`` (nats-py's own JetStream client) finds, on a real
nats-server: never-fired IDs, records rewritten to later states, records deleted or purged
from the tasks stream, and records that are no Task at all."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import pytest

from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.store import Store, get_task_records, iter_task_records
from tests.scheduler_support import options, prepare
from tests.task_records import fill, stored_one_by_one


@pytest.mark.parametrize("window", [1, 7, 1024])
async def test_the_pipelined_lookup_finds_what_one_by_one_gets_find(nats_server: EmbeddedServer, window: int) -> None:
    await prepare(nats_server.url)
    async with Store.open(options(nats_server.url)) as store:
        ids = await fill(store, random.Random(window))
        asked = [*ids, "0" * 27]  # plus an ID no slot has
        got = await get_task_records(store, asked, max_in_flight=window)
    want = await stored_one_by_one(nats_server.url, asked)
    assert 200 < len(want) < len(asked) - 60  # fired, never fired, deleted and purged all present
    assert got == want


async def test_each_position_comes_once_even_when_the_caller_is_slow(nats_server: EmbeddedServer) -> None:
    """Lookups stay in flight while the caller works on a batch; no record is lost or repeated
    when the caller leaves them time to pile up, and leaving early stops cleanly."""
    await prepare(nats_server.url)
    async with Store.open(options(nats_server.url)) as store:
        ids = await fill(store, random.Random(3))
        positions: list[int] = []
        async with contextlib.aclosing(iter_task_records(store, ids, max_in_flight=16)) as batches:
            async for batch in batches:
                positions += (i for i, _ in batch)
                await store.client.flush()  # a round trip per batch: replies arrive meanwhile
        want = await stored_one_by_one(nats_server.url, ids)
        assert sorted(positions) == sorted(ids.index(i) for i in want)
        async with contextlib.aclosing(iter_task_records(store, ids, max_in_flight=16)) as batches:
            async for _ in batches:
                break
        assert await get_task_records(store, ids[:5]) == {i: want[i] for i in ids[:5] if i in want}


@pytest.mark.parametrize("window", [16, 7])  # 400 IDs: a whole number of windows, and not
async def test_ids_can_be_made_as_the_lookups_draw_them(nats_server: EmbeddedServer, window: int) -> None:
    await prepare(nats_server.url)
    async with Store.open(options(nats_server.url)) as store:
        ids = await fill(store, random.Random(5))
        drawn: list[str] = []

        def each_id() -> Iterator[str]:
            for task_id in ids:
                drawn.append(task_id)
                yield task_id

        got: dict[str, bytes] = {}
        async with contextlib.aclosing(iter_task_records(store, each_id(), max_in_flight=window)) as batches:
            async for batch in batches:
                assert all(i < len(drawn) for i, _ in batch)
                got.update((ids[i], record) for i, record in batch)
    assert drawn == ids
    assert got == await stored_one_by_one(nats_server.url, ids)

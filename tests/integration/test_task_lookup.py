"""The pipelined task-record lookup that ``status`` and ``backfill`` use finds exactly what a
plain one-at-a-time ``get_last_msg`` (nats-py's own JetStream client) finds, on a real
nats-server: never-fired IDs, records rewritten to later states, records deleted or purged
from the tasks stream, and records that are no Task at all."""

from __future__ import annotations

import contextlib
import dataclasses
import random
from collections.abc import Iterator

import nats
import pytest
from nats.js.errors import NotFoundError

from ajc_gitops.codec import encode_task
from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.gowire.godate import from_unix
from ajc_gitops.model import GoTime, ScheduledTask
from ajc_gitops.names import TASK_SUBJECT, TASKS_STREAM
from ajc_gitops.scheduler.tasks import build_task, slot_task_ids
from ajc_gitops.store import Store, get_task_records, iter_task_records
from tests.scheduler_support import options, prepare

NS = 1_000_000_000
SLOT = 1_780_000_000 - 1_780_000_000 % 3600


async def _stored_one_by_one(url: str, task_ids: list[str]) -> dict[str, bytes]:
    """The reference: one ``STREAM.MSG.GET`` at a time, through nats-py's JetStream API."""
    found: dict[str, bytes] = {}
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for task_id in task_ids:
            try:
                msg = await js.get_last_msg(TASKS_STREAM, TASK_SUBJECT.format(task_id))
            except NotFoundError:
                continue
            found[task_id] = msg.data or b""
    finally:
        await nc.close()
    return found


async def _fill(store: Store, rng: random.Random) -> list[str]:
    """400 slots of one schedule: some never fired, some rewritten by a worker (later
    revisions, other states), some deleted or purged, two holding what is no Task."""
    st = ScheduledTask("lookup", "@hourly", "DEFAULT", "t:lookup", created_at=GoTime(0))
    slots = [SLOT - h * 3600 for h in range(400)]
    ids = slot_task_ids(st.name, slots)
    nc = store.client
    written = []
    for slot, task_id in zip(slots, ids, strict=True):
        if rng.random() < 0.2:
            continue  # never fired
        task = build_task(st, from_unix(slot), created=GoTime(slot * NS + NS // 10), task_id=task_id)
        await nc.request(TASK_SUBJECT.format(task_id), encode_task(task), timeout=5)
        written.append(task)
    for task in rng.sample(written, 60):  # a Go worker moved them on: the record is rewritten
        for tries, state in enumerate(("active", rng.choice(["complete", "retry", "terminated"])), 1):
            later = dataclasses.replace(task, state=state, tries=tries, last_err="boom" if state != "complete" else "")
            await nc.request(TASK_SUBJECT.format(task.id), encode_task(later), timeout=5)
    gone = rng.sample(written, 40)
    for task in gone[:20]:
        info = await store.api_request(
            f"STREAM.MSG.GET.{TASKS_STREAM}", {"last_by_subj": TASK_SUBJECT.format(task.id)}, what="seq"
        )
        await store.api_request(f"STREAM.MSG.DELETE.{TASKS_STREAM}", {"seq": info["message"]["seq"]}, what="delete")
    for task in gone[20:]:
        await store.api_request(f"STREAM.PURGE.{TASKS_STREAM}", {"filter": TASK_SUBJECT.format(task.id)}, what="purge")
    never = [i for i in ids if all(t.id != i for t in written)]
    await nc.request(TASK_SUBJECT.format(never[0]), b"", timeout=5)  # an empty record
    await nc.request(TASK_SUBJECT.format(never[1]), b'["not a task"]', timeout=5)
    await nc.flush()
    return ids


@pytest.mark.parametrize("window", [1, 7, 1024])
async def test_the_pipelined_lookup_finds_what_one_by_one_gets_find(nats_server: EmbeddedServer, window: int) -> None:
    await prepare(nats_server.url)
    async with Store.open(options(nats_server.url)) as store:
        ids = await _fill(store, random.Random(window))
        asked = [*ids, "0" * 27]  # plus an ID no slot has
        got = await get_task_records(store, asked, max_in_flight=window)
    want = await _stored_one_by_one(nats_server.url, asked)
    assert 200 < len(want) < len(asked) - 60  # fired, never fired, deleted and purged all present
    assert got == want


async def test_each_position_comes_once_even_when_the_caller_is_slow(nats_server: EmbeddedServer) -> None:
    """Lookups stay in flight while the caller works on a batch; no record is lost or repeated
    when the caller leaves them time to pile up, and leaving early stops cleanly."""
    await prepare(nats_server.url)
    async with Store.open(options(nats_server.url)) as store:
        ids = await _fill(store, random.Random(3))
        positions: list[int] = []
        async with contextlib.aclosing(iter_task_records(store, ids, max_in_flight=16)) as batches:
            async for batch in batches:
                positions += (i for i, _ in batch)
                await store.client.flush()  # a round trip per batch: replies arrive meanwhile
        want = await _stored_one_by_one(nats_server.url, ids)
        assert sorted(positions) == sorted(ids.index(i) for i in want)
        async with contextlib.aclosing(iter_task_records(store, ids, max_in_flight=16)) as batches:
            async for _ in batches:
                break
        assert await get_task_records(store, ids[:5]) == {i: want[i] for i in ids[:5] if i in want}


@pytest.mark.parametrize("window", [16, 7])  # 400 IDs: a whole number of windows, and not
async def test_ids_can_be_made_as_the_lookups_draw_them(nats_server: EmbeddedServer, window: int) -> None:
    await prepare(nats_server.url)
    async with Store.open(options(nats_server.url)) as store:
        ids = await _fill(store, random.Random(5))
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
    assert got == await _stored_one_by_one(nats_server.url, ids)

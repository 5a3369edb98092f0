"""Reading many task records by ID in one pass over ``CHORIA_AJ_TASKS``, for ``status``.

A lookup per ID (``lookup.iter_task_records``) costs the server a JetStream API request each:
34-37 us of its CPU, ~8.5 s for the 240,000 slots of 10,000 hourly schedules over a day. The
same records delivered by one consumer in stream order cost it ~1.3 s, and the client less
than reading the lookups' replies. So when the IDs asked for are most of what the stream
holds since a start time, ``iter_task_records_since`` reads every record written since then
once (a pull consumer, ``opt_start_time``, several pulls in flight) and keeps those whose ID
was asked for; every ID the pass did not meet is then looked up by ID as before. The answer
is what the lookups alone give: the pass only decides which IDs still need one, and a record
written before the start (a scheduler's clock behind the server's) or purged meanwhile is
found, or not, by its lookup. When the stream holds far more than was asked for (other
producers' tasks, a short ``--since`` on a long history) the pass would cost more than it
saves, and only the lookups run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from datetime import datetime

from nats.aio.msg import Msg

from ajc_gitops.errors import StoreError
from ajc_gitops.names import TASK_SUBJECT, TASKS_STREAM
from ajc_gitops.store.asyncjobs.lookup import create_reader, delete_reader, iter_task_records
from ajc_gitops.store.kv.client import Store

__all__ = ["SWEEP_FACTOR", "iter_task_records_since"]

# A record passed over costs about a fifth of a lookup (server and client CPU together,
# measured by bench/status_bench.py): sweep while the stream holds at most this many records
# per ID asked for since the start.
SWEEP_FACTOR = 3
_PULL_BATCH = 2000
_PULLS_IN_FLIGHT = 4
_PREFIX_LEN = len(TASK_SUBJECT.format(""))


async def iter_task_records_since(
    store: Store,
    task_ids: Sequence[str],
    *,
    since: datetime,
    max_in_flight: int = 1024,
    sweep_factor: int = SWEEP_FACTOR,
) -> AsyncGenerator[list[tuple[int, bytes]], None]:
    """``iter_task_records`` for IDs whose tasks were mostly written at or after ``since``:
    batches of (position in ``task_ids``, record), absent IDs never. A position may come
    again in a later batch when its record was rewritten while the stream was read; the
    later record is the newer. Close it (``contextlib.aclosing``) when leaving early."""
    positions = {task_id: i for i, task_id in enumerate(task_ids)}
    met = bytearray(len(task_ids))
    if len(positions) == len(task_ids):  # repeated IDs: positions are ambiguous, look them up
        limit = sweep_factor * len(task_ids)
        async with contextlib.aclosing(_sweep(store, since, limit)) as batches:
            async for batch in batches:
                found = []
                for task_id, record in batch:
                    if (at := positions.get(task_id)) is not None:
                        met[at] = 1
                        found.append((at, record))
                if found:
                    yield found
    rest = [i for i, seen in enumerate(met) if not seen]
    if not rest:
        return
    async with contextlib.aclosing(
        iter_task_records(store, (task_ids[i] for i in rest), max_in_flight=max_in_flight)
    ) as lookups:
        async for looked_up in lookups:
            yield [(rest[j], record) for j, record in looked_up]


async def _sweep(store: Store, since: datetime, limit: int) -> AsyncGenerator[list[tuple[str, bytes]], None]:
    """Every task record last written at or after ``since`` as (ID, record), in stream order,
    read to the stream's end; nothing when more than ``limit`` records are there to read."""
    nc = store.client
    consumer, pending = await create_reader(store, since, what="read task records")
    with store.guard("read task records"):
        inbox = nc.new_inbox()
    next_api = f"{store.api_prefix}.CONSUMER.MSG.NEXT.{TASKS_STREAM}.{consumer}"
    # Waiting pulls, not no_wait ones: the server answers a no_wait pull "no messages" at once
    # when the pulls before it have claimed what is pending, before their records are sent.
    # The end is the record whose reply says nothing is pending; a pull that expires before
    # it (its last record was deleted meanwhile) also ends the read, since a waiting pull is
    # given every record there is before it expires.
    expires_ns = int(max(0.5, store.timeout / 2) * 1_000_000_000)
    pull = b'{"batch":%d,"expires":%d}' % (_PULL_BATCH, expires_ns)
    ready: list[tuple[str, bytes]] = []
    state = {"asked": 0, "delivered": 0, "done": False}
    failures: list[str] = []
    progress = asyncio.Event()

    async def ask() -> None:
        # A pull for the next records while earlier ones are delivered keeps the server busy;
        # at most a few are out, and none while the caller has a backlog, so memory stays bounded.
        while (
            not state["done"]
            and (state["asked"] - state["delivered"]) < _PULLS_IN_FLIGHT * _PULL_BATCH
            and len(ready) < _PULLS_IN_FLIGHT * _PULL_BATCH
        ):
            state["asked"] += _PULL_BATCH
            await nc.publish(next_api, pull, reply=inbox)

    async def on_msg(msg: Msg) -> None:
        headers = msg.headers
        if headers and (status := headers.get("Status")):
            if status != "408":
                failures.append(f"{status} {headers.get('Description', '')}".strip())
            state["done"] = True
            progress.set()
            return
        ready.append((msg.subject[_PREFIX_LEN:], msg.data))
        state["delivered"] += 1
        if msg.reply.endswith(".0"):  # the reply's last token: records still pending
            state["done"] = True
        progress.set()
        await ask()

    try:
        if pending == 0 or pending > limit:
            return
        with store.guard("read task records", next_api):
            sub = await nc.subscribe(inbox, cb=on_msg)
        try:
            with store.guard("read task records", next_api):
                await ask()
            while True:
                if failures:
                    raise StoreError(f"{store.server}: reading the tasks stream: {failures[0]}")
                if ready:
                    batch = ready[:]
                    ready.clear()
                    yield batch
                    with store.guard("read task records", next_api):
                        await ask()
                    continue
                if state["done"]:
                    return
                progress.clear()
                before = state["delivered"]
                try:
                    async with asyncio.timeout(store.timeout):
                        await progress.wait()
                except TimeoutError:
                    if state["delivered"] == before and not state["done"]:
                        raise StoreError(
                            f"{store.server}: no answer reading the tasks stream within {store.timeout:g}s"
                        ) from None
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
    finally:
        await delete_reader(store, consumer)

"""Helpers shared by the scheduler's integration and process tests.

Election TTL: Go's is 10 s, so winning takes up to 12.5 s and a SIGKILL failover up to 25 s
(contract §5). Tests create the elections bucket with a ``SHORT_TTL`` instead and set
``AJC_GITOPS_TEST_ALLOW_SHORT_ELECTION_TTL=1``; the scheduler still reads the TTL from the
bucket, and Go refuses to start on a bucket whose TTL is under 10 s, so the override can never
be in effect in a group with a Go member (``scheduler/runner.py``).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import nats
from nats.aio.client import Client as NATSClient
from nats.js.api import ConsumerConfig, DeliverPolicy

from ajc_gitops.codec import encode_scheduled_task
from ajc_gitops.connect import ConnectOptions
from ajc_gitops.gowire.ksuid import parse_ksuid
from ajc_gitops.model import GoTime, ScheduledTask
from ajc_gitops.names import ELECTIONS_BUCKET, SCHEDULE_PREFIX
from ajc_gitops.store import Store, ensure_task_streams

SHORT_TTL = 4.0


def options(url: str) -> ConnectOptions:
    return ConnectOptions(servers=tuple(url.split(",")), timeout_s=3.0)


async def prepare(url: str, *, ttl_s: float = SHORT_TTL, replicas: int = 1) -> None:
    """Buckets, tasks stream and DEFAULT queue as Go creates them, but the elections bucket
    with a short TTL (module doc)."""
    async with Store.open(options(url)) as store:
        config = Store.bucket_config(ELECTIONS_BUCKET, replicas=replicas)
        config["max_age"] = config["duplicate_window"] = int(ttl_s * 1e9)
        await store.api_request(f"STREAM.CREATE.KV_{ELECTIONS_BUCKET}", config, what="create short-TTL elections")
        await store.ensure_buckets(replicas=replicas)
        await ensure_task_streams(store, replicas=replicas)


def record(name: str, spec: str, *, created_ns: int, task_type: str | None = None, **kw: Any) -> bytes:
    fields: dict[str, Any] = {"queue": "DEFAULT", "payload": None, "max_tries": 0}
    fields.update(kw)
    st = ScheduledTask(
        name=name, schedule=spec, task_type=task_type or f"t:{name}", created_at=GoTime(created_ns), **fields
    )
    return encode_scheduled_task(st)


async def put_schedule(url: str, name: str, value: bytes) -> int:
    async with Store.open(options(url)) as store:
        return await store.put_raw(SCHEDULE_PREFIX + name, value)


async def read_tasks(url: str) -> list[dict[str, Any]]:
    """Every task record in CHORIA_AJ_TASKS (one per task ID, contract §1)."""
    nc = await nats.connect(servers=url.split(","))
    try:
        return await _read_all(nc)
    finally:
        await nc.close()


async def _read_all(nc: NATSClient) -> list[dict[str, Any]]:
    js = nc.jetstream()
    info = await js.stream_info("CHORIA_AJ_TASKS")
    total = info.state.messages
    if total == 0:
        return []
    records: list[dict[str, Any]] = []
    sub = await js.subscribe(
        "CHORIA_AJ.T.*",
        stream="CHORIA_AJ_TASKS",
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    try:
        while True:
            msg = await sub.next_msg(timeout=5)
            records.append(json.loads(msg.data))
            if msg.metadata.num_pending == 0:
                return records
    finally:
        await sub.unsubscribe()


def tasks_now(url: str) -> list[dict[str, Any]]:
    return asyncio.run(read_tasks(url))


def fired_after(url: str, instant: float, n: int, types: tuple[str, ...]) -> bool:
    """Every schedule of ``types`` has fired ``n`` slots after ``instant``: a leader is up and firing."""
    tasks = tasks_now(url)
    return all(sum(1 for t in tasks if t["type"] == tt and slot_of(t) > instant) >= n for tt in types)


def slot_of(task: dict[str, Any]) -> int:
    """Our task IDs carry the fire instant in the KSUID time part (scheduler/tasks.py)."""
    seconds, _ = parse_ksuid(task["id"])  # Unix seconds
    return seconds


def per_slot(tasks: list[dict[str, Any]]) -> Counter[tuple[str, int]]:
    return Counter((t["type"], slot_of(t)) for t in tasks)


def assert_exactly_once(tasks: list[dict[str, Any]], task_type: str, every_s: int = 1) -> list[int]:
    """Slots of ``task_type``: no duplicate and no gap between the first and the last."""
    counts = per_slot(tasks)
    slots = sorted(s for (tt, s) in counts if tt == task_type)
    assert slots, f"no task of type {task_type}"
    dupes = {s: n for (tt, s), n in counts.items() if tt == task_type and n > 1}
    assert not dupes, f"{task_type}: duplicated slots {dupes}"
    missing = sorted(set(range(slots[0], slots[-1] + 1, every_s)) - set(slots))
    assert not missing, f"{task_type}: missing slots {missing} (have {slots[0]}..{slots[-1]})"
    return slots


async def election_holder(url: str) -> str | None:
    async with Store.open(options(url)) as store:
        from ajc_gitops.store import read_holder

        return (await read_holder(store, timeout=2.0)).name


def holder_now(url: str) -> str | None:
    return asyncio.run(election_holder(url))

"""Firing throughput: ``store.tasks.enqueue_many`` against nats-py's raw pipelined publish rate,
one embedded nats-server (loopback), both measured in the same run.

* raw: JetStream publishes of a task-sized body (300 bytes, with the expected-sequence
  header) to ``CHORIA_AJ.T.<n>``, each with its own reply subject on one inbox subscription,
  1024 unanswered at most: the fastest a pipeline of nats-py publishes gets here.
* enqueue: N tasks through the full §4.4 sequence (task record, task_state event, work
  item), i.e. 3 publishes per task (2 JetStream + 1 core).

Goal (issue 4): tasks/s >= 40 % of (raw publishes/s / 3). Fire lag (slot to task stored) is
the scheduler's to report; this measures only the store side.

Run: ``python bench/enqueue_bench.py [--count N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import nats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ajc_gitops.connect import ConnectOptions  # noqa: E402
from ajc_gitops.embedded import start_server  # noqa: E402
from ajc_gitops.model import GoTime, ScheduledTask  # noqa: E402
from ajc_gitops.scheduler.tasks import build_task  # noqa: E402
from ajc_gitops.store import QueueSpec, Store, enqueue_many, ensure_queue, ensure_task_streams  # noqa: E402

PUBLISHES_PER_TASK = 3


async def raw_rate(url: str, count: int, window: int = 1024) -> float:
    nc = await nats.connect(url)
    try:
        inbox = nc.new_inbox()
        done = asyncio.Event()
        acks = 0
        free = asyncio.Semaphore(window)

        async def on_ack(_msg: object) -> None:
            nonlocal acks
            acks += 1
            free.release()
            if acks == count:
                done.set()

        await nc.subscribe(f"{inbox}.*", cb=on_ack)
        body = b"x" * 300
        headers = {"Nats-Expected-Last-Subject-Sequence": "0"}
        started = time.perf_counter()
        for i in range(count):
            await free.acquire()
            await nc.publish(f"CHORIA_AJ.T.raw{time.monotonic_ns()}{i}", body, reply=f"{inbox}.{i}", headers=headers)
        await done.wait()
        return count / (time.perf_counter() - started)
    finally:
        await nc.close()


async def enqueue_rate(store: Store, count: int, run: int) -> float:
    slot = datetime(2026, 8, 1, tzinfo=UTC)
    created = GoTime(time.time_ns())
    schedules = [ScheduledTask(f"r{run}s{i}", "* * * * *", "BENCH", "bench:task", b'"x"') for i in range(count)]
    tasks = [build_task(st, slot, created=created) for st in schedules]
    started = time.perf_counter()
    outcomes = await enqueue_many(store, tasks)
    elapsed = time.perf_counter() - started
    bad = [o for o in outcomes if o.status != "enqueued"]
    if bad:
        raise SystemExit(f"{len(bad)} tasks not enqueued, first: {bad[0]}")
    return count / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    server = start_server(server_name="enqueue-bench")
    try:
        async with Store.open(ConnectOptions(servers=(server.url,), timeout_s=10.0)) as store:
            await ensure_task_streams(store)
            await ensure_queue(store, QueueSpec("BENCH"))
            raws, rates = [], []
            for run in range(args.repeat):
                raws.append(await raw_rate(server.url, 2 * args.count))
                rates.append(await enqueue_rate(store, args.count, run))
    finally:
        server.close()
    raw, rate = statistics.median(raws), statistics.median(rates)
    goal = 0.4 * raw / PUBLISHES_PER_TASK
    print(f"raw pipelined JetStream publish: {raw:,.0f}/s (median of {args.repeat})")
    print(f"enqueue_many, {args.count} tasks:  {rate:,.0f} tasks/s = {rate * PUBLISHES_PER_TASK / raw:.0%} of raw/3")
    print(f"goal (40% of raw/3):            {goal:,.0f} tasks/s -> {'ok' if rate >= goal else 'MISSED'}")


if __name__ == "__main__":
    asyncio.run(main())

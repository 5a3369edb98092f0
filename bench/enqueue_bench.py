"""Firing throughput: ``store.tasks.enqueue_many`` against nats-py's raw pipelined publish rate,
one embedded nats-server (loopback), both measured in the same run.

* ceilings (benchlib): nats-py's inbox-pipelined JetStream publish of a task-sized body and
  natscli's ``nats bench js pub async``, against the same server in the same run.
* enqueue: N tasks through the full §4.4 sequence (task record, task_state event, work
  item), i.e. 3 publishes per task (2 JetStream + 1 core).

Goal (issue 4): tasks/s >= 40 % of (inbox ceiling / 3). Fire lag (slot to task stored) is
the scheduler's to report; this measures only the store side.

Run: ``python bench/enqueue_bench.py [--count N] [--repeat R] [--markdown]``; exits 1 when the
goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import Row, inbox_publish_rate, measure_ceiling, report  # noqa: E402

from ajc_gitops.connect import ConnectOptions  # noqa: E402
from ajc_gitops.embedded import start_server  # noqa: E402
from ajc_gitops.model import GoTime, ScheduledTask  # noqa: E402
from ajc_gitops.scheduler.tasks import build_task  # noqa: E402
from ajc_gitops.store import QueueSpec, Store, enqueue_many, ensure_queue, ensure_task_streams  # noqa: E402

PUBLISHES_PER_TASK = 3


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


async def measure(url: str, count: int, repeat: int) -> tuple[list[float], list[float]]:
    async with Store.open(ConnectOptions(servers=(url,), timeout_s=10.0)) as store:
        await ensure_task_streams(store)
        await ensure_queue(store, QueueSpec("BENCH"))
        raws, rates = [], []
        for run in range(repeat):  # interleaved, so the machine's load moves both alike
            raws.append(await inbox_publish_rate(url, 2 * count))
            rates.append(await enqueue_rate(store, count, run))
    return raws, rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="add the date, machine and versions line")
    args = parser.parse_args()
    server = start_server(server_name="enqueue-bench")
    try:
        raws, rates = asyncio.run(measure(server.url, args.count, args.repeat))
        ceiling = measure_ceiling(server.url, 3 * args.count)
    finally:
        server.close()
    raw, rate = statistics.median(raws), statistics.median(rates)
    inbox = max(raw, ceiling.inbox)
    ceiling = dataclasses.replace(ceiling, inbox=inbox)
    goal = 0.4 * inbox / PUBLISHES_PER_TASK
    rows = [
        Row(f"enqueue_many, {args.count:,} tasks (median of {args.repeat})", f"{rate:,.0f} tasks/s",
            f">= {goal:,.0f} (40% of inbox / 3)", rate >= goal),
        *ceiling.rows("enqueue rate", rate, PUBLISHES_PER_TASK),
    ]  # fmt: skip
    return report("enqueue benchmark (store.tasks.enqueue_many), nats-server on loopback", rows, markdown=args.markdown)


if __name__ == "__main__":
    raise SystemExit(main())

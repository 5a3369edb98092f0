"""The scheduler against a real nats-server (embedded, loopback). Measures, in one run:

* burst: 10,000 schedules due in the same second. All must be enqueued and handed to a worker
  exactly once (a worker consumes the queue as asyncjobs does throughout, tests/deliveries.py;
  the task store refusing a re-fire is counted separately, from the scheduler's metric); fire lag (cron
  instant to the task record's stream timestamp) p50/p99; tasks/s = N / (last record stored -
  instant), against 40 % of the inbox ceiling (benchlib: nats-py's inbox-pipelined JetStream
  publish; natscli's ``nats bench`` beside it; same run, same server) divided by the 3
  publishes per task (record, state event, work item; contract §4.4).
* idle: a few ``@every 1s`` schedules for ``--idle-seconds``; p99 lag < 50 ms.
* memory: a fresh process with 100,000 schedules loaded and leading (heap built); RSS < 300 MB.

The elections bucket is made with a 4 s TTL (the test-only override, ``SHORT_TTL_ENV``) so
winning takes ~3 s instead of ~12 s; nothing measured depends on the TTL.

Run: ``python bench/scheduler_bench.py [--markdown]``; exits 1 when a goal is missed. Figures go
in docs/benchmarks.md, "scheduler". Go's scheduler beside ours: bench/go_scheduler_bench.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import Row, measure_ceiling, report  # noqa: E402

from ajc_gitops.codec import encode_scheduled_task  # noqa: E402
from ajc_gitops.connect import ConnectOptions  # noqa: E402
from ajc_gitops.embedded import start_server  # noqa: E402
from ajc_gitops.gowire.ksuid import parse_ksuid  # noqa: E402
from ajc_gitops.model import GoTime, ScheduledTask  # noqa: E402
from ajc_gitops.names import ELECTIONS_BUCKET, SCHEDULE_PREFIX  # noqa: E402
from ajc_gitops.scheduler.runner import SchedulerConfig, SchedulerService  # noqa: E402
from ajc_gitops.state import WriteOp  # noqa: E402
from ajc_gitops.store import Store, ensure_task_streams  # noqa: E402
from tests.deliveries import Worker, per_task  # noqa: E402  (the counter the fault suite uses)

NS = 1_000_000_000
TTL_S = 4.0
PUBLISHES_PER_TASK = 3


def opts(url: str) -> ConnectOptions:
    return ConnectOptions(servers=(url,), timeout_s=10.0)


async def prepare(url: str) -> None:
    async with Store.open(opts(url)) as store:
        config = Store.bucket_config(ELECTIONS_BUCKET)
        config["max_age"] = config["duplicate_window"] = int(TTL_S * NS)
        await store.api_request(f"STREAM.CREATE.KV_{ELECTIONS_BUCKET}", config, what="elections")
        await store.ensure_buckets()
        await ensure_task_streams(store)


async def write_schedules(url: str, prefix: str, count: int, spec: str, created_ns: int) -> None:
    ops = []
    for i in range(count):
        name = f"{prefix}{i:06d}"
        st = ScheduledTask(name, spec, "DEFAULT", f"bench:{prefix.rstrip('-')}", None, 0, 0, GoTime(created_ns))
        ops.append(WriteOp.create(SCHEDULE_PREFIX + name, encode_scheduled_task(st), tombstone_revision=None))
    async with Store.open(opts(url)) as store:
        for start in range(0, count, 10_000):
            outcomes = await store.write_many(ops[start : start + 10_000])
            assert all(o.status == "ok" for o in outcomes), outcomes[:3]


async def lags_by_type(url: str) -> tuple[dict[str, list[float]], dict[str, str]]:
    """Seconds from each task's slot (its ID's time part) to its record's stream timestamp,
    by type; and each task ID's type (to place the worker's items)."""
    nc = await nats.connect(url)
    lags: dict[str, list[float]] = {}
    type_of: dict[str, str] = {}
    try:
        js = nc.jetstream()
        total = (await js.stream_info("CHORIA_AJ_TASKS")).state.messages
        sub = await js.subscribe(
            "CHORIA_AJ.T.*", stream="CHORIA_AJ_TASKS", ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
        )  # fmt: skip
        for _ in range(total):
            msg = await sub.next_msg(timeout=10)
            task = json.loads(msg.data)
            slot, _ = parse_ksuid(task["id"])
            stored = msg.metadata.timestamp.timestamp()
            lags.setdefault(task["type"], []).append(stored - slot)
            type_of[task["id"]] = task["type"]
        await sub.unsubscribe()
    finally:
        await nc.close()
    return lags, type_of


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def burst_and_idle(url: str, count: int, idle_s: float) -> dict[str, float]:
    service = SchedulerService(SchedulerConfig("bench", opts(url), allow_short_ttl=True))
    worker = Worker(url).__enter__()  # its own thread and connection, like a worker process
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.started.wait(), 30)
        while not (service.elector and service.elector.is_leader):
            await asyncio.sleep(0.05)  # a bench, not a test: poll the state
        # All slots at one instant: @every 1h anchored an hour before it (slots.py).
        due = (time.time_ns() // NS + 6) * NS
        await write_schedules(url, "burst-", count, "@every 1h", due - 3600 * NS)
        await write_schedules(url, "idle-", 5, "@every 1s", due + 2 * NS)
        while service.fire is None or service.fire.fired < count:
            await asyncio.sleep(0.05)
        await asyncio.sleep(idle_s)
        dupes = service.metrics.value("ajc_gitops_scheduler_duplicate_fires_suppressed_total") or 0
    finally:
        service.stop.set()
        await task
        await asyncio.to_thread(worker.__exit__, None, None, None)  # drain what is left
    lags, type_of = await lags_by_type(url)
    burst, idle = lags["bench:burst"], lags["bench:idle"]
    assert len(burst) == count, f"only {len(burst)} of {count} enqueued"
    handed = per_task(worker.deliveries)  # our IDs are per (schedule, slot)
    burst_handed = sum(1 for job in handed if type_of.get(job) == "bench:burst")
    assert burst_handed == count, f"only {burst_handed} of {count} slots handed to the worker"
    return {
        "burst_n": len(burst), "handed": burst_handed, "dup_items": sum(n - 1 for n in handed.values()),
        "dupes": dupes, "burst_p50": pct(burst, 0.5), "burst_p99": pct(burst, 0.99),
        "burst_rate": count / max(burst), "idle_n": len(idle), "idle_p50": pct(idle, 0.5),
        "idle_p99": pct(idle, 0.99), "idle_max": max(idle),
    }  # fmt: skip


async def rss_child(url: str, count: int) -> None:
    """In a fresh process: load ``count`` schedules, lead, report RSS."""
    service = SchedulerService(SchedulerConfig("rss", opts(url), allow_short_ttl=True))
    task = asyncio.create_task(service.run())
    try:
        await asyncio.wait_for(service.started.wait(), 30)
        while not (service.elector and service.elector.is_leader and service.fire and service.fire.idle.is_set()):
            await asyncio.sleep(0.1)
        assert service.follower is not None and len(service.follower.schedules) == count
        rss = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))  # fmt: skip
        print(json.dumps({"rss_kb": rss, "loaded": len(service.follower.schedules)}))
    finally:
        service.stop.set()
        await task


def measure_rss(url: str, count: int) -> dict[str, float]:
    asyncio.run(write_schedules(url, "mem-", count, "0 0 1 1 *", time.time_ns()))
    env = {**os.environ, "AJC_GITOPS_TEST_ALLOW_SHORT_ELECTION_TTL": "1"}
    out = subprocess.run(
        [sys.executable, __file__, "--rss-child", url, "--rss-count", str(count)],
        stdout=subprocess.PIPE, text=True, check=True, env=env, timeout=300,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"rss_mb": result["rss_kb"] / 1024, "loaded": result["loaded"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--rss-schedules", type=int, default=100_000)
    parser.add_argument("--markdown", action="store_true", help="add the date, machine and versions line")
    parser.add_argument("--rss-child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--rss-count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        asyncio.run(rss_child(args.rss_child, args.rss_count))
        return 0
    with tempfile.TemporaryDirectory(prefix="ajc-bench-") as tmp:
        with start_server(work_dir=Path(tmp) / "a") as server:
            asyncio.run(prepare(server.url))
            f = asyncio.run(burst_and_idle(server.url, args.count, args.idle_seconds))
            ceiling = measure_ceiling(server.url, 3 * args.count)
        with start_server(work_dir=Path(tmp) / "b") as server:
            asyncio.run(prepare(server.url))
            f |= measure_rss(server.url, args.rss_schedules)
    target = 0.4 * ceiling.inbox / PUBLISHES_PER_TASK
    rows = [
        Row(f"burst: {args.count:,} due in one second, enqueued", f"{f['burst_n']:,.0f}", "all",
            f["burst_n"] == args.count),
        Row("  handed to a worker / dup items / refused re-fires",
            f"{f['handed']:,.0f} / {f['dup_items']:.0f} / {f['dupes']:.0f}", "all / 0",
            f["handed"] == args.count and f["dup_items"] == 0),
        Row("burst fire lag p50 / p99", f"{f['burst_p50'] * 1000:,.0f} / {f['burst_p99'] * 1000:,.0f} ms"),
        Row("burst tasks/s (N / last stored - instant)", f"{f['burst_rate']:,.0f} /s",
            f">= {target:,.0f} (40% of inbox / 3)", f["burst_rate"] >= target),
        *ceiling.rows("burst rate", f["burst_rate"], PUBLISHES_PER_TASK),
        Row(f"idle fire lag p50 / p99 / max ({f['idle_n']:.0f} fires)",
            f"{f['idle_p50'] * 1000:.1f} / {f['idle_p99'] * 1000:.1f} / {f['idle_max'] * 1000:.1f} ms", "p99 < 50 ms",
            f["idle_p99"] < 0.05),
        Row(f"RSS, {f['loaded']:,.0f} schedules loaded, leading", f"{f['rss_mb']:.0f} MB", "< 300 MB",
            f["rss_mb"] < 300),
    ]  # fmt: skip
    title = f"scheduler benchmark, python {platform.python_version()}, {platform.machine()}, nats-server on loopback"
    return report(title, rows, markdown=args.markdown)


if __name__ == "__main__":
    raise SystemExit(main())

"""``ajc-gitops status`` at scale: 10,000 hourly schedules, a 24-hour window (240,000 slots),
every slot fired by an ajc-gitops leader, against one embedded nats-server (loopback).

Measured: ``scheduler.status.read_status`` end to end (one read of the configuration bucket,
the election key, the task of each of the 240,000 slots, slot verdicts), the median of
``--repeat`` runs, in both read modes: ``--read id`` (the default: a lookup per slot by its
deterministic ID, pipelined) and ``--read stream`` (the window's task records read in one pass
and matched by ID, then a lookup for any slot the pass did not meet).
Goal (issue 12): under 5 s; the script exits 1 when missed. Baselines, same run and server:
the same records read by nats-py through one pull consumer with a handler that only counts
them (the floor of that one pass), and the 240,000 ``STREAM.MSG.GET`` requests one lookup per
slot would send (1,024 in flight; Go's tasks stream has no ``allow_direct``, so there is no
batched direct get, contract §1). The ratio is against the faster of the two. The CPU
seconds of the nats-server process and of this one are shown beside each: on a machine of N
cores no run can be faster than their sum over N.
Also measured (``--filter-probe``, the other exact lookup): how long the server takes to
create one consumer whose ``filter_subjects`` list that many task subjects, on this stream.
Also shown, not judged: the same with ``--missing`` slots left unfired, which adds the bounded
scan for Go-created tasks (it stops at ``--scan-limit`` records).

Setup writes the schedules, their ownership markers and 240,000 task records (the bytes
``scheduler.tasks.build_task`` and the codec make, published straight to ``CHORIA_AJ.T.<id>``:
status only reads records). Run: ``python bench/status_bench.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import nats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import Row, report  # noqa: E402

from ajc_gitops.codec import encode_marker, encode_task, record_digest  # noqa: E402
from ajc_gitops.connect import ConnectOptions  # noqa: E402
from ajc_gitops.embedded import start_server  # noqa: E402
from ajc_gitops.gowire.godate import from_unix  # noqa: E402
from ajc_gitops.model import GoTime, Marker, ScheduledTask  # noqa: E402
from ajc_gitops.names import MARKER_PREFIX, SCHEDULE_PREFIX, TASK_SUBJECT, TASKS_STREAM  # noqa: E402
from ajc_gitops.render.status import STATUS_RENDERERS  # noqa: E402
from ajc_gitops.scheduler.status import ReadMode, StatusQuery, read_status  # noqa: E402
from ajc_gitops.scheduler.tasks import build_task  # noqa: E402
from ajc_gitops.state import WriteOp  # noqa: E402
from ajc_gitops.status.model import SlotKind, StatusReport  # noqa: E402
from ajc_gitops.store import Store, ensure_task_streams  # noqa: E402

NS = 1_000_000_000
GOAL_S = 5.0
_CREATE = {"Nats-Expected-Last-Subject-Sequence": "0"}  # as store/asyncjobs/tasks.py stores a task
HOURS = 24


def opts(url: str) -> ConnectOptions:
    return ConnectOptions(servers=(url,), timeout_s=10.0)


async def publish_records(url: str, records: list[tuple[str, bytes]], window: int = 1024) -> None:
    """Pipelined JetStream publishes on one inbox (the write side of what status reads), each
    with the header a fire stores its task record with (``Nats-Expected-Last-Subject-Sequence:
    0``): the stream keeps it, and a consumer hands it to the reader with every record."""
    nc = await nats.connect(url)
    try:
        inbox, free, done = nc.new_inbox(), asyncio.Semaphore(window), asyncio.Event()
        acked = 0

        async def on_ack(_msg: object) -> None:
            nonlocal acked
            acked += 1
            free.release()
            if acked == len(records):
                done.set()

        await nc.subscribe(f"{inbox}.*", cb=on_ack)
        for i, (subject, body) in enumerate(records):
            await free.acquire()
            await nc.publish(subject, body, reply=f"{inbox}.{i}", headers=_CREATE)
        await done.wait()
    finally:
        await nc.close()


async def setup(url: str, count: int, now_s: int, missing: set[tuple[int, int]]) -> list[str]:
    created = GoTime((now_s - (HOURS + 2) * 3600) * NS)
    tasks = [
        ScheduledTask(f"s{i:05d}", f"{i % 60} * * * *", "BENCH", "bench:status", None, 0, 0, created)
        for i in range(count)
    ]
    async with Store.open(opts(url)) as store:
        await store.ensure_buckets()
        await ensure_task_streams(store)
        from ajc_gitops.codec import encode_scheduled_task

        ops = []
        for st in tasks:
            value = encode_scheduled_task(st)
            ops.append(WriteOp.create(SCHEDULE_PREFIX + st.name, value, tombstone_revision=None))
            marker = encode_marker(Marker(st.name, record_digest(value), "", ""))
            ops.append(WriteOp.create(MARKER_PREFIX + st.name, marker, tombstone_revision=None))
        outcomes = await store.write_many(ops)
        assert all(o.status == "ok" for o in outcomes), "setup writes failed"
    records = []
    for i, st in enumerate(tasks):
        minute = i % 60
        for h in range(HOURS + 1):
            slot = now_s - now_s % 3600 - h * 3600 + minute * 60
            if not now_s - HOURS * 3600 < slot <= now_s or (i, h) in missing:
                continue
            task = build_task(st, from_unix(slot), created=GoTime(slot * NS + NS // 10))
            records.append((TASK_SUBJECT.format(task.id), encode_task(task)))
    await publish_records(url, records)
    return [subject for subject, _ in records]


def cpu_s(pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by ``pid``, or by this process (Linux /proc)."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Run:
    wall_s: float
    server_cpu_s: float
    client_cpu_s: float


async def timed(server_pid: int, work: Callable[[], Awaitable[object]]) -> Run:
    server, client, started = cpu_s(server_pid), cpu_s(), time.perf_counter()
    await work()
    return Run(time.perf_counter() - started, cpu_s(server_pid) - server, cpu_s() - client)


async def raw_lookups(url: str, subjects: list[str], window: int = 1024) -> float:
    """Seconds for nats-py to send every lookup and count the replies, nothing more."""
    nc = await nats.connect(url)
    try:
        inbox, free, done = nc.new_inbox(), asyncio.Semaphore(window), asyncio.Event()
        answered = 0

        async def on_reply(_msg: object) -> None:
            nonlocal answered
            answered += 1
            free.release()
            if answered == len(subjects):
                done.set()

        await nc.subscribe(f"{inbox}.*", cb=on_reply)
        api = "$JS.API.STREAM.MSG.GET.CHORIA_AJ_TASKS"
        started = time.perf_counter()
        for i, subject in enumerate(subjects):
            await free.acquire()
            await nc.publish(api, b'{"last_by_subj":"' + subject.encode() + b'"}', reply=f"{inbox}.{i}")
        await done.wait()
        return time.perf_counter() - started
    finally:
        await nc.close()


async def raw_sweep(url: str, start_s: int, batch: int = 2000, in_flight: int = 4) -> float:
    """Seconds for nats-py to read every task record written since ``start_s`` through one
    pull consumer (waiting pulls, ``in_flight`` out at once) and count them, nothing more:
    the floor of the one-pass read status makes."""
    nc = await nats.connect(url)
    try:
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start_s))
        config = {
            "deliver_policy": "by_start_time", "opt_start_time": since, "ack_policy": "none",
            "filter_subject": "CHORIA_AJ.T.*", "inactive_threshold": 10 * NS, "mem_storage": True, "num_replicas": 1,
        }  # fmt: skip
        started = time.perf_counter()
        body = json.dumps({"stream_name": TASKS_STREAM, "config": config}).encode()
        created = json.loads((await nc.request(f"$JS.API.CONSUMER.CREATE.{TASKS_STREAM}", body, timeout=30)).data)
        api = f"$JS.API.CONSUMER.MSG.NEXT.{TASKS_STREAM}.{created['name']}"
        pull = json.dumps({"batch": batch, "expires": 5 * NS}).encode()
        inbox, done = nc.new_inbox(), asyncio.Event()
        counted = asked = 0

        async def on_msg(msg: nats.aio.msg.Msg) -> None:
            nonlocal counted, asked
            if msg.headers and msg.headers.get("Status"):
                return
            counted += 1
            if msg.reply.endswith(".0"):
                done.set()
            elif counted % batch == 0:
                asked += 1
                await nc.publish(api, pull, reply=inbox)

        await nc.subscribe(inbox, cb=on_msg)
        for _ in range(in_flight):
            await nc.publish(api, pull, reply=inbox)
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - started
        assert counted == created["num_pending"], "the raw sweep lost records"
        await nc.request(f"$JS.API.CONSUMER.DELETE.{TASKS_STREAM}.{created['name']}", b"", timeout=30)
        return elapsed
    finally:
        await nc.close()


async def measure(
    url: str, now_s: int, scan_limit: int, server_pid: int, read: ReadMode = "id"
) -> tuple[Run, dict[str, int], dict[str, float]]:
    async with Store.open(opts(url)) as store:
        reports = []

        async def work() -> None:
            query = StatusQuery(since=timedelta(hours=HOURS), scan_limit=scan_limit, read=read)
            reports.append(await read_status(store, query, now_ns=now_s * NS))

        run = await timed(server_pid, work)
    return run, {k.value: reports[0].total(k) for k in SlotKind}, render_times(reports[0])


def render_times(report: StatusReport) -> dict[str, float]:
    """Seconds each ``--format`` takes to print the report (not part of the measured read)."""
    times = {}
    for name, render in STATUS_RENDERERS.items():
        started = time.perf_counter()
        render(report)
        times[name] = time.perf_counter() - started
    return times


async def filter_probe(url: str, subjects: list[str], counts: Sequence[int]) -> list[tuple[int, float]]:
    """Seconds the server takes to create (and answer for) one ephemeral consumer on the tasks
    stream whose ``filter_subjects`` are the first ``n`` task subjects, for each ``n``."""
    nc = await nats.connect(url)
    out = []
    try:
        for n in counts:
            config = {
                "deliver_policy": "last_per_subject", "ack_policy": "none", "filter_subjects": subjects[:n],
                "mem_storage": True, "num_replicas": 1, "inactive_threshold": 10 * NS,
            }  # fmt: skip
            body = json.dumps({"stream_name": TASKS_STREAM, "config": config}).encode()
            started = time.perf_counter()
            reply = await nc.request(f"$JS.API.CONSUMER.CREATE.{TASKS_STREAM}", body, timeout=120)
            out.append((n, time.perf_counter() - started))
            name = json.loads(reply.data).get("name")
            if name:
                await nc.request(f"$JS.API.CONSUMER.DELETE.{TASKS_STREAM}.{name}", b"", timeout=30)
    finally:
        await nc.close()
    return out


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--missing", type=int, default=100)
    parser.add_argument("--scan-limit", type=int, default=50_000)
    parser.add_argument(
        "--filter-probe", action="store_true", help="also time consumer creation with 2 to 3,000 filter subjects"
    )
    parser.add_argument("--markdown", action="store_true", help="add the date, machine and versions line")
    args = parser.parse_args()
    now_s = int(time.time())
    rng = random.Random(12)
    server = start_server(server_name="status-bench")
    probe: list[tuple[int, float]] = []
    try:
        subjects = await setup(server.url, args.schedules, now_s, set())
        runs, streamed, raws, sweeps = [], [], [], []
        for _ in range(args.repeat):
            raws.append(await timed(server.pid, lambda: raw_lookups(server.url, subjects)))
            sweeps.append(await timed(server.pid, lambda: raw_sweep(server.url, now_s - HOURS * 3600 - 60)))
            runs.append(await measure(server.url, now_s, args.scan_limit, server.pid))
            streamed.append(await measure(server.url, now_s, args.scan_limit, server.pid, "stream"))
        if args.filter_probe:
            probe = await filter_probe(server.url, subjects, (2, 100, 1_000, 3_000))
    finally:
        server.close()
    missing = {(rng.randrange(args.schedules), rng.randrange(1, HOURS)) for _ in range(args.missing)}
    server = start_server(server_name="status-bench-missing")
    try:
        await setup(server.url, args.schedules, now_s, missing)
        with_missing = await measure(server.url, now_s, args.scan_limit, server.pid)
    finally:
        server.close()
    status = sorted((r for r, _, _ in runs), key=lambda r: r.wall_s)[len(runs) // 2]  # the median run
    stream = sorted((r for r, _, _ in streamed), key=lambda r: r.wall_s)[len(streamed) // 2]
    assert all(c == runs[0][1] for _, c, _ in streamed), "the two reads gave different verdicts"
    raw = sorted(raws, key=lambda r: r.wall_s)[len(raws) // 2]
    sweep = sorted(sweeps, key=lambda r: r.wall_s)[len(sweeps) // 2]
    strongest = min(raw.wall_s, sweep.wall_s)
    median = status.wall_s
    counts = runs[0][1]
    slots = sum(counts.values())
    cores = os.cpu_count() or 1
    rows = [
        Row(f"status: {args.schedules:,} schedules x {HOURS} h hourly ({slots:,} slots)", f"{median:.2f} s",
            f"< {GOAL_S:g} s", median < GOAL_S),
        Row("  its CPU: nats-server + status", f"{status.server_cpu_s:.2f} s + {status.client_cpu_s:.2f} s"),
        Row("status --read stream (one pass over the window, then lookups)", f"{stream.wall_s:.2f} s",
            f"< {GOAL_S:g} s", stream.wall_s < GOAL_S),
        Row("  its CPU: nats-server + status", f"{stream.server_cpu_s:.2f} s + {stream.client_cpu_s:.2f} s"),
        Row(f"  baseline: {len(subjects):,} records by one pull consumer, counted (nats-py)", f"{sweep.wall_s:.2f} s"),
        Row("  its CPU: nats-server + nats-py", f"{sweep.server_cpu_s:.2f} s + {sweep.client_cpu_s:.2f} s"),
        Row(f"  baseline: {len(subjects):,} bare MSG.GET round trips (nats-py)", f"{raw.wall_s:.2f} s"),
        Row("  its CPU: nats-server + nats-py", f"{raw.server_cpu_s:.2f} s + {raw.client_cpu_s:.2f} s"),
        Row(f"  lookups' CPU floor on {cores} core(s): (server + client) / cores",
            f"{(raw.server_cpu_s + raw.client_cpu_s) / cores:.2f} s"),
        Row("  status / the faster baseline (--read id, --read stream)",
            f"{median / strongest:.2f} x, {stream.wall_s / strongest:.2f} x"),
        Row("  slot verdicts", ", ".join(f"{v:,} {k}" for k, v in counts.items() if v)),
        Row("  then printing it (--format): " + " / ".join(runs[0][2]),
            " / ".join(f"{t:.2f} s" for t in runs[0][2].values())),
        Row(f"  with {len(missing)} slots unfired (+ scan, limit {args.scan_limit:,})",
            f"{with_missing[0].wall_s:.2f} s"),
        Row("  their verdicts", ", ".join(f"{v:,} {k}" for k, v in with_missing[1].items() if v)),
    ]  # fmt: skip
    rows += [Row(f"  one consumer with {n:,} filter subjects: created in", f"{t:.3f} s") for n, t in probe]
    return report("status benchmark, nats-server on loopback", rows, markdown=args.markdown, go_tools=())


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))

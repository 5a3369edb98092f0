"""A million schedules: one real ``ajc-gitops scheduler`` process against a real nats-server
with Go's elections bucket (10 s TTL), plus ``plan`` and ``apply`` at 100,000 (issue 11, item 3).

1. Seeds ``--schedules`` records (default 1,000,000) straight into the KV stream, pipelined
   (one inbox subscription, every publish with its own reply subject, ``--window`` unanswered
   at most): one schedule per customer, a daily cron at a minute of its own (1,440 distinct
   texts, a third of them ``CRON_TZ=Europe/Berlin`` on weekdays), created a day ago, plus
   ``--ticks`` ``@every 1s`` schedules whose fires are the idle lag sample.
2. Starts ``python -m ajc_gitops scheduler scale --log-format json --monitor PORT`` and reads
   its /metrics (served from a thread, so reading it does not disturb the loop) and its log:
   * load + lead: process start to its "leading: N schedule(s)" line (the fire heap built);
     Go's election alone (splay up to 5 s, then one 7.5 s interval before acting) is ~8-13 s;
   * peak RSS: VmHWM of the process at the end;
   * the longest event-loop stall, from the process's own probe (scheduler/loopprobe.py,
     ``ajc_gitops_scheduler_event_loop_stall_max_seconds{phase}``): while loading (until the
     schedule set is complete) and while running (heap, catch-up, firing);
   * lease kept: one "acquired" and no "lost leadership" line, and no reconnect (the server's
     ``total_connections`` grows by exactly the scheduler's two connections);
   * idle fire lag: each tick task's slot (its ID's time part) to its record's stream
     timestamp, for slots after the lead, over ``--fire-seconds``.
3. ``plan`` and ``apply`` of ``--plan-schedules`` (default 100,000), measured as
   bench/plan_apply_bench.py does (manifests on disk, 100 files; loading them is shown apart):
   apply creates them all into missing buckets, then plan (read + diff + render) finds no
   change.

Prints a table with a verdict per goal and exits 1 when a goal is missed; ``--markdown``
prints it for docs/benchmarks.md with the date, machine and versions.

Run: ``python bench/scale_bench.py [--schedules N] [--markdown]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ajc_gitops.codec import encode_scheduled_task  # noqa: E402
from ajc_gitops.commands.common import make_plan  # noqa: E402
from ajc_gitops.connect import ConnectOptions  # noqa: E402
from ajc_gitops.embedded import EmbeddedServer, find_nats_server, free_ports, start_server  # noqa: E402
from ajc_gitops.gowire.ksuid import parse_ksuid  # noqa: E402
from ajc_gitops.manifest.load import load_manifests  # noqa: E402
from ajc_gitops.model import GoTime, ScheduledTask  # noqa: E402
from ajc_gitops.names import CONFIG_BUCKET, SCHEDULE_PREFIX, kv_subject  # noqa: E402
from ajc_gitops.render.plan import PLAN_RENDERERS  # noqa: E402
from ajc_gitops.scheduler.runner import SHORT_TTL_ENV  # noqa: E402
from ajc_gitops.store import Store, ensure_task_streams  # noqa: E402
from ajc_gitops.sync.apply import apply_plan  # noqa: E402

NS = 1_000_000_000
TICK_TYPE = "scale:tick"


# -- seeding --------------------------------------------------------------------------------


def records(count: int, ticks: int, now_ns: int) -> Iterator[tuple[str, bytes]]:
    day_ago = GoTime(now_ns - 86_400 * NS)
    for i in range(count):
        minute, hour = i % 60, (i // 60) % 24
        spec = f"CRON_TZ=Europe/Berlin {minute} {hour} * * 1-5" if i % 3 == 2 else f"{minute} {hour} * * *"
        name = f"c{i:07d}"
        st = ScheduledTask(name, spec, "DEFAULT", "scale:daily", None, 0, 0, day_ago)
        yield name, encode_scheduled_task(st)
    anchor = GoTime((now_ns // NS) * NS)
    for i in range(ticks):
        name = f"tick{i:04d}"
        yield name, encode_scheduled_task(ScheduledTask(name, "@every 1s", "DEFAULT", TICK_TYPE, None, 0, 0, anchor))


async def seed(url: str, count: int, ticks: int, window: int, *, bare: bool = False) -> float:
    """Publishes/s of the whole seed; every publish acknowledged by the stream. Each record is
    stored as ``apply`` and Go's ``ajc task cron add`` store it: a KV Create, whose
    ``Nats-Expected-Last-Subject-Sequence: 0`` header the stream keeps and every reader is
    handed (nats-py parses it per message); ``bare``: without it."""
    async with Store.open(ConnectOptions(servers=(url,), timeout_s=10.0)) as store:
        await store.ensure_buckets()  # Go's elections bucket: 10 s TTL
        await ensure_task_streams(store)
    nc = await nats.connect(url)
    try:
        inbox = nc.new_inbox()
        free = asyncio.Semaphore(window)
        done = asyncio.Event()
        total = count + ticks
        acked = errors = 0

        async def on_ack(msg: object) -> None:
            nonlocal acked, errors
            acked += 1
            errors += b'"error"' in getattr(msg, "data", b"")
            free.release()
            if acked == total:
                done.set()

        await nc.subscribe(f"{inbox}.*", cb=on_ack)
        prefix = kv_subject(CONFIG_BUCKET, SCHEDULE_PREFIX)
        create = None if bare else {"Nats-Expected-Last-Subject-Sequence": "0"}
        started = time.perf_counter()
        for n, (name, value) in enumerate(records(count, ticks, time.time_ns())):
            await free.acquire()
            await nc.publish(prefix + name, value, reply=f"{inbox}.{n}", headers=create)
        await done.wait()
        rate = total / (time.perf_counter() - started)
        if errors:
            raise SystemExit(f"seeding: {errors} publishes refused by the stream")
        return rate
    finally:
        await nc.close()


# -- the scheduler process -------------------------------------------------------------------


def get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
    return body.decode()


def metric(text: str, name: str, **labels: str) -> float | None:
    """One sample of Prometheus text: ``name`` with (at least) these labels."""
    for line in text.splitlines():
        head, _, value = line.rpartition(" ")
        if head == name if not labels else (
            head.startswith(name + "{") and all(f'{k}="{v}"' in head for k, v in labels.items())
        ):  # fmt: skip
            return float(value)
    return None


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def log_lines(path: Path) -> list[dict[str, str]]:
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            out.append({"msg": line, "level": "raw"})
    return out


def log_time(entry: dict[str, str]) -> float:
    return datetime.datetime.fromisoformat(entry["time"]).timestamp()


def total_connections(server: EmbeddedServer) -> int:
    return int(json.loads(get(f"{server.monitor_url}/varz"))["total_connections"])


@dataclass(frozen=True, slots=True)
class Run:
    load_lead_s: float
    loaded: float
    peak_rss_mb: float
    stall_loading_s: float
    stall_running_s: float
    acquired: int
    lost: int
    reconnects: int
    tracebacks: int
    lead_wall: float


def run_scheduler(server: EmbeddedServer, work: Path, fire_s: float, deadline_s: float) -> Run:
    monitor = free_ports(1)[0]
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NATS_URL", None)
    env.pop(SHORT_TTL_ENV, None)  # Go's TTL, as a fleet runs it
    log = work / "scheduler.log"
    connections = total_connections(server)
    started_wall = time.time()
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ajc_gitops", "scheduler", "scale", "-s", server.url,
             "--log-format", "json", "--monitor", str(monitor)],
            stdout=subprocess.DEVNULL, stderr=err, env=env,
        )  # fmt: skip
    try:
        lead_wall = 0.0
        deadline = time.monotonic() + deadline_s
        while not lead_wall:
            if proc.poll() is not None:
                raise SystemExit(f"scheduler exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                print(f"no lead within {deadline_s:.0f} s; log tail:\n{log.read_text()[-3000:]}", file=sys.stderr)
                break
            lead_wall = next((log_time(e) for e in log_lines(log) if e["msg"].startswith("leading:")), 0.0)
            time.sleep(0.2)
        if lead_wall:
            time.sleep(fire_s)
        text = get(f"http://127.0.0.1:{monitor}/metrics")
        peak = status_kb(proc.pid, "VmHWM") / 1024
        reconnects = total_connections(server) - connections - 2  # its store and its schedule feed
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    entries = log_lines(log)
    stall = "ajc_gitops_scheduler_event_loop_stall_max_seconds"
    return Run(
        load_lead_s=(lead_wall - started_wall) if lead_wall else float("inf"),
        loaded=metric(text, "choria_asyncjobs_task_scheduler_schedules_total") or 0,
        peak_rss_mb=peak,
        stall_loading_s=metric(text, stall, phase="loading") or 0.0,
        stall_running_s=metric(text, stall, phase="running") or 0.0,
        acquired=sum("acquired" in e["msg"] for e in entries),
        lost=sum("lost leadership" in e["msg"] for e in entries),
        reconnects=reconnects,
        tracebacks=sum("Traceback" in e["msg"] or e["level"] == "raw" for e in entries),
        lead_wall=lead_wall,
    )


async def tick_lags(url: str, after: float) -> list[tuple[float, float]]:
    """(slot, seconds from it to the task record's stream timestamp) of each tick task whose
    slot is after ``after``."""
    nc = await nats.connect(url)
    lags: list[tuple[float, float]] = []
    try:
        js = nc.jetstream()
        total = (await js.stream_info("CHORIA_AJ_TASKS")).state.messages
        sub = await js.subscribe("CHORIA_AJ.T.*", stream="CHORIA_AJ_TASKS", ordered_consumer=True)
        for _ in range(total):
            msg = await sub.next_msg(timeout=10)
            task = json.loads(msg.data)
            if task["type"] != TICK_TYPE:
                continue
            slot, _ = parse_ksuid(task["id"])
            if slot > after:
                lags.append((slot, msg.metadata.timestamp.timestamp() - slot))
        await sub.unsubscribe()
    finally:
        await nc.close()
    return lags


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("inf")


# -- plan and apply ---------------------------------------------------------------------------


def write_manifests(directory: Path, count: int, per_file: int = 1000) -> None:
    for start in range(0, count, per_file):
        lines = ["defaults: {queue: EMAIL, task_type: 'email:daily', deadline: 1h}", "schedules:"]
        for i in range(start, min(start + per_file, count)):
            lines += [f"  - name: cust-{i:07d}", f"    schedule: '{i % 60} {(i // 60) % 24} * * *'",
                      f"    payload: {{customer: {i}}}"]  # fmt: skip
        (directory / f"part-{start // per_file:04d}.yaml").write_text("\n".join(lines) + "\n")


async def plan_apply_in(url: str, manifests: Path, count: int) -> tuple[float, float, float]:
    """(load, apply, plan) seconds, measured as bench/plan_apply_bench.py does: apply is the
    plan's execution (stale check, markers, Creates, buckets), plan is read + diff + render."""
    now = datetime.datetime.now(datetime.UTC)
    started = time.perf_counter()
    loaded = load_manifests([manifests], now=now)
    load_s = time.perf_counter() - started
    assert not loaded.errors and len(loaded.schedules) == count
    async with Store.open(ConnectOptions(servers=(url,), timeout_s=30.0)) as store:
        plan = await make_plan(store, loaded.schedules, now=now, prune=False, adopt=frozenset())
        started = time.perf_counter()
        result = await apply_plan(store, plan)
        apply_s = time.perf_counter() - started
        assert result.complete and len(result.applied) == count
        started = time.perf_counter()
        again = await make_plan(store, loaded.schedules, now=now, prune=False, adopt=frozenset())
        PLAN_RENDERERS["text"](again, color=False)
        plan_s = time.perf_counter() - started
        assert not again.has_changes
    return load_s, apply_s, plan_s


def plan_apply(work: Path, count: int) -> tuple[float, float, float]:
    manifests = work / "manifests"
    manifests.mkdir()
    write_manifests(manifests, count)
    with start_server(work_dir=work / "nats-plan") as server:
        return asyncio.run(plan_apply_in(server.url, manifests, count))


# -- report ---------------------------------------------------------------------------------


def versions() -> str:
    server = subprocess.run(
        [str(find_nats_server()), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()  # fmt: skip
    return f"Python {platform.python_version()}, {server or 'nats-server'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1_000_000)
    parser.add_argument("--ticks", type=int, default=100, help="@every 1s schedules for the idle lag")
    parser.add_argument("--fire-seconds", type=float, default=60.0)
    parser.add_argument("--plan-schedules", type=int, default=100_000, help="0 skips plan/apply")
    parser.add_argument("--window", type=int, default=4096, help="unacknowledged seeding publishes")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--keep-log", type=Path, metavar="FILE", help="copy the scheduler's log here")
    parser.add_argument(
        "--bare-records", action="store_true", help="seed records without the KV Create header apply and Go write"
    )
    args = parser.parse_args()
    n = args.schedules
    with tempfile.TemporaryDirectory(prefix="ajc-scale-") as tmp:
        work = Path(tmp)
        with start_server(work_dir=work / "nats") as server:
            seeded = time.perf_counter()
            rate = asyncio.run(seed(server.url, n, args.ticks, args.window, bare=args.bare_records))
            seed_s = time.perf_counter() - seeded
            print(f"seeded {n + args.ticks:,} records in {seed_s:.1f} s ({rate:,.0f}/s)", file=sys.stderr)
            r = run_scheduler(server, work, args.fire_seconds, deadline_s=max(120.0, n / 5000))
            slot_lags = asyncio.run(tick_lags(server.url, r.lead_wall + 1)) if r.lead_wall else []
            lags = [lag for _, lag in slot_lags]
            worst = sorted(slot_lags, key=lambda sl: -sl[1])[:5]
            print("worst idle lags (s after the lead: ms): " + ", ".join(
                f"{slot - r.lead_wall:.0f}: {lag * 1000:.0f}" for slot, lag in worst), file=sys.stderr)  # fmt: skip
            if args.keep_log:
                shutil.copyfile(work / "scheduler.log", args.keep_log)
        pa = plan_apply(work, args.plan_schedules) if args.plan_schedules else None
    p = args.plan_schedules
    rows: list[tuple[str, str, str, bool | None]] = [
        (f"seed {n + args.ticks:,} records (pipelined publishes)", f"{seed_s:.1f} s ({rate:,.0f}/s)", "", None),
        (f"load {r.loaded:,.0f} schedules and lead (process start to heap built)",
         f"{r.load_lead_s:.1f} s", "< 60 s", r.load_lead_s < 60),
        ("peak RSS (VmHWM)", f"{r.peak_rss_mb:,.0f} MB", "< 1,536 MB", r.peak_rss_mb < 1536),
        ("longest event-loop stall while loading", f"{r.stall_loading_s * 1000:.0f} ms", "< 100 ms",
         r.stall_loading_s < 0.1),
        ("longest event-loop stall while leading and firing", f"{r.stall_running_s * 1000:.0f} ms", "< 100 ms",
         r.stall_running_s < 0.1),
        ("lease kept (acquired / lost / reconnects)", f"{r.acquired} / {r.lost} / {r.reconnects}", "1 / 0 / 0",
         r.acquired == 1 and r.lost == 0 and r.reconnects == 0),
        (f"idle fire lag p50 / p99 / max ({len(lags):,} fires of {args.ticks} @every 1s)",
         f"{pct(lags, 0.5) * 1000:.1f} / {pct(lags, 0.99) * 1000:.1f} / {max(lags or [0]) * 1000:.1f} ms",
         "p99 < 50 ms", bool(lags) and pct(lags, 0.99) < 0.05),
        ("no traceback or non-JSON line in the scheduler log", str(r.tracebacks), "0", r.tracebacks == 0),
    ]  # fmt: skip
    if pa is not None:
        load_s, apply_s, plan_s = pa
        rows += [
            (f"load {p:,} schedules from 100 manifests (not part of the goals)", f"{load_s:.1f} s", "", None),
            (f"apply {p:,} creates (markers + records, buckets created)", f"{apply_s:.1f} s", "< 10 s", apply_s < 10),
            (f"plan: read + diff + render, {p:,} live, no change", f"{plan_s:.1f} s", "< 10 s", plan_s < 10),
        ]
    print_report(rows, markdown=args.markdown)
    return 0 if all(ok is not False for *_, ok in rows) else 1


def print_report(rows: list[tuple[str, str, str, bool | None]], *, markdown: bool) -> None:
    if markdown:
        load = os.getloadavg()
        print(f"{datetime.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} cores, "
              f"load average {load[0]:.1f} at the end; {versions()}\n")  # fmt: skip
    widths = (max(len(r[0]) for r in rows), max(len(r[1]) for r in rows), max(len(r[2]) for r in rows))
    print(f"| {'measure':<{widths[0]}} | {'result':>{widths[1]}} | {'goal':<{widths[2]}} | verdict |")
    print(f"|{'-' * (widths[0] + 2)}|{'-' * (widths[1] + 2)}|{'-' * (widths[2] + 2)}|---------|")
    for what, value, goal, ok in rows:
        verdict = "" if ok is None else ("met" if ok else "MISSED")
        print(f"| {what:<{widths[0]}} | {value:>{widths[1]}} | {goal:<{widths[2]}} | {verdict:<7} |")


if __name__ == "__main__":
    sys.exit(main())

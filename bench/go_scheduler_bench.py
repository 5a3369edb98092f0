"""Go's ``ajc task cron scheduler`` and ours side by side: one nats-server, the same schedules,
one run, each scheduler a process of its own, in turn (issue 11, item 2).

Per scheduler, with Go's elections bucket (10 s TTL) and ``TZ=UTC``:

* burst: ``--burst`` schedules due at the same minute boundary (cron ``M H * * *``), written
  before the process starts; timed only once it leads. tasks/s = N / (last record stored -
  instant); fire lag = the task's ``created`` - the instant (Go sets ``created`` when it builds
  the task, before publishing it, so lag to the record stored is shown too); CPU = the process's user+system
  seconds (/proc/PID/stat) from a second before the instant to the last work item.
* idle: 100 ``@every 1s`` schedules over ``--idle-seconds`` after the burst; lag = ``created``
  - the slot, the slot being the task ID's second (Go's ID is made at the fire, ours carries
  the slot; both fire on whole seconds here).
* loaded: ``--loaded`` schedules that never fire soon plus one ``@every 1s`` probe, a fresh
  process: RSS once leading, seconds from process start to the probe's first task, CPU while
  idle (% of a core over 10 s).
* leader kill: two processes, 20 ``@every 1s`` schedules; SIGKILL the leader, wait until the
  other leads and 5 s more: slots of the window with no task (lost), tasks later than 1 s after
  their slot (late), slots with more than one task (duplicates).

Goals: burst rate >= 3x Go's; p99 lag below Go's in both runs; RSS below Go's at ``--loaded``;
nothing lost where Go loses fires. Exits 1 when one is missed (or Go is absent).

Run: ``python bench/go_scheduler_bench.py [--idle-seconds 60] [--markdown]``; ``--steps burst``
runs only the burst and idle step (a minute or two per scheduler), and only its rows are shown.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import Row, report  # noqa: E402

from ajc_gitops.codec import encode_scheduled_task  # noqa: E402
from ajc_gitops.connect import ConnectOptions  # noqa: E402
from ajc_gitops.embedded import free_ports, start_server  # noqa: E402
from ajc_gitops.gowire.ksuid import parse_ksuid  # noqa: E402
from ajc_gitops.model import GoTime, ScheduledTask  # noqa: E402
from ajc_gitops.names import CONFIG_BUCKET, ELECTIONS_BUCKET, SCHEDULE_PREFIX  # noqa: E402
from ajc_gitops.state import WriteOp  # noqa: E402
from ajc_gitops.store import QueueSpec, Store, ensure_queue, ensure_task_streams  # noqa: E402
from tests.gopeer import gobuild  # noqa: E402

NS = 1_000_000_000
QUEUES = ("BURST", "IDLE", "PROBE", "KILL")
KILL_SCHEDULES = 20
IDLE_SCHEDULES = 100


def opts(url: str) -> ConnectOptions:
    return ConnectOptions(servers=(url,), timeout_s=10.0)


# -- the server side -------------------------------------------------------------------------


async def reset(url: str) -> None:
    """No schedules, no election key: the next process starts as on a fresh bucket."""
    async with Store.open(opts(url)) as store:
        await store.ensure_buckets()
        await ensure_task_streams(store)
        for queue in QUEUES:
            await ensure_queue(store, QueueSpec(queue))
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for stream in (f"KV_{CONFIG_BUCKET}", f"KV_{ELECTIONS_BUCKET}", *(f"CHORIA_AJ_Q_{q}" for q in QUEUES)):
            await js.purge_stream(stream)
    finally:
        await nc.close()


async def write(url: str, prefix: str, count: int, spec: str, queue: str, task_type: str, created_ns: int) -> None:
    ops = []
    for i in range(count):
        st = ScheduledTask(f"{prefix}{i:06d}", spec, queue, task_type, None, 0, 0, GoTime(created_ns))
        ops.append(WriteOp.create(SCHEDULE_PREFIX + st.name, encode_scheduled_task(st), tombstone_revision=None))
    async with Store.open(opts(url)) as store:
        for start in range(0, count, 10_000):
            outcomes = await store.write_many(ops[start : start + 10_000])
            assert all(o.status == "ok" for o in outcomes), outcomes[:3]


async def queue_count(url: str, queue: str) -> int:
    nc = await nats.connect(url)
    try:
        return int((await nc.jetstream().stream_info(f"CHORIA_AJ_Q_{queue}")).state.messages)
    finally:
        await nc.close()


@dataclass(frozen=True, slots=True)
class Task:
    slot: float  # the ID's second
    created: float  # the task's own ``created``: Go sets it before the record is published
    stored: float  # the record's stream timestamp


async def tasks_of(url: str, task_type: str) -> list[Task]:
    nc = await nats.connect(url)
    out = []
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
            if task["type"] == task_type:
                slot, _ = parse_ksuid(task["id"])
                created = datetime.fromisoformat(task["created"]).timestamp()
                out.append(Task(float(slot), created, msg.metadata.timestamp.timestamp()))
        await sub.unsubscribe()
    finally:
        await nc.close()
    return out


# -- the scheduler processes -----------------------------------------------------------------


@dataclass
class Proc:
    popen: subprocess.Popen[bytes]
    monitor: int
    started: float = field(default_factory=time.time)

    def leading(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}/metrics", timeout=2) as resp:
                text = resp.read().decode()
        except OSError:
            return False
        # Go prints "0", prometheus_client "0.0"
        return any(
            line.split()[:1] == ["choria_asyncjobs_task_scheduler_paused"] and float(line.split()[1]) == 0
            for line in text.splitlines()
        )

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.popen.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class Impl:
    def __init__(self, kind: str, url: str, work: Path, ajc: Path | None) -> None:
        self.kind, self.url, self.work, self.ajc = kind, url, work, ajc
        self.config = work / "config"
        (self.config / "nats" / "context").mkdir(parents=True, exist_ok=True)
        (self.config / "nats" / "context" / "bench.json").write_text(json.dumps({"url": url}))

    def start(self, name: str) -> Proc:
        monitor = free_ports(1)[0]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "AJC_"))}
        env |= {"TZ": "UTC", "XDG_CONFIG_HOME": str(self.config), "NO_COLOR": "1"}
        if self.kind == "go":
            assert self.ajc is not None
            argv = [str(self.ajc), "--context", "bench", "task", "cron", "scheduler", name, "--monitor", str(monitor)]
        else:
            argv = [sys.executable, "-m", "ajc_gitops", "scheduler", name, "-s", self.url,
                    "--log-format", "json", "--monitor", str(monitor)]  # fmt: skip
        log = (self.work / f"{self.kind}-{name}.log").open("wb")
        return Proc(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env), monitor)


def wait(what: str, cond: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- the runs --------------------------------------------------------------------------------


def burst_and_idle(impl: Impl, burst: int, idle_s: float) -> dict[str, float]:
    url = impl.url
    asyncio.run(reset(url))
    now = time.time()
    instant = (int(now + 40) // 60 + 1) * 60  # a minute boundary >= 40 s away: load + lead first
    when = time.gmtime(instant)
    spec = f"{when.tm_min} {when.tm_hour} * * *"
    asyncio.run(write(url, "b", burst, spec, "BURST", f"{impl.kind}:burst", time.time_ns()))
    asyncio.run(write(url, "i", IDLE_SCHEDULES, "@every 1s", "IDLE", f"{impl.kind}:idle", instant * NS))
    proc = impl.start("burst")
    try:
        wait(f"{impl.kind} to lead", proc.leading, 60)
        if time.time() > instant - 2:
            raise SystemExit(f"{impl.kind} led too late for the burst instant")
        time.sleep(instant - 1 - time.time())
        cpu0 = proc.cpu_s()
        wait(f"{impl.kind}'s burst", lambda: asyncio.run(queue_count(url, "BURST")) >= burst, 300)
        cpu = proc.cpu_s() - cpu0
        idle_from = time.time() + 2
        time.sleep(idle_s + 3)
    finally:
        proc.stop()
    fired = asyncio.run(tasks_of(url, f"{impl.kind}:burst"))
    lags = [t.created - instant for t in fired]
    stored = [t.stored - instant for t in fired]
    ticks = [t for t in asyncio.run(tasks_of(url, f"{impl.kind}:idle")) if idle_from <= t.slot < idle_from + idle_s]
    idle = [t.created - t.slot for t in ticks]
    idle_stored = [t.stored - t.slot for t in ticks]
    return {
        "n": len(lags), "rate": len(lags) / max(stored), "p50": pct(lags, 0.5), "p99": pct(lags, 0.99),
        "max": max(lags), "s_p50": pct(stored, 0.5), "s_p99": pct(stored, 0.99), "cpu": cpu, "idle_n": len(idle),
        "idle_p50": pct(idle, 0.5), "idle_p99": pct(idle, 0.99), "idle_s_p99": pct(idle_stored, 0.99),
    }  # fmt: skip


def loaded(impl: Impl, count: int) -> dict[str, float]:
    url = impl.url
    asyncio.run(reset(url))
    asyncio.run(write(url, "m", count, "0 0 1 1 *", "PROBE", f"{impl.kind}:never", time.time_ns()))
    asyncio.run(write(url, "p", 1, "@every 1s", "PROBE", f"{impl.kind}:probe", (time.time_ns() // NS) * NS))
    proc = impl.start("loaded")
    try:
        wait(f"{impl.kind}'s first probe fire", lambda: asyncio.run(queue_count(url, "PROBE")) > 0, 180 + count / 2000)
        first = time.time() - proc.started
        time.sleep(5)
        rss = proc.rss_mb()
        cpu0 = proc.cpu_s()
        time.sleep(10)
        idle_cpu = (proc.cpu_s() - cpu0) / 10
    finally:
        proc.stop()
    return {"rss": rss, "first": first, "idle_cpu": idle_cpu}


def leader_kill(impl: Impl) -> dict[str, float]:
    url = impl.url
    asyncio.run(reset(url))
    asyncio.run(write(url, "k", KILL_SCHEDULES, "@every 1s", "KILL", f"{impl.kind}:kill", (time.time_ns() // NS) * NS))
    procs = [impl.start("kill-a"), impl.start("kill-b")]
    try:
        wait(f"a {impl.kind} leader", lambda: any(p.leading() for p in procs), 60)
        time.sleep(5)
        leader = next(p for p in procs if p.leading())
        other = next(p for p in procs if p is not leader)
        killed = time.time()
        leader.stop(signal.SIGKILL)
        wait(f"the other {impl.kind} to lead", other.leading, 60)
        takeover = time.time() - killed
        time.sleep(6)
        end = time.time() - 3  # slots late by up to 3 s still count as fired
    finally:
        for p in procs:
            p.stop()
    tasks = asyncio.run(tasks_of(url, f"{impl.kind}:kill"))
    start = int(killed) - 3
    slots = range(start, int(end))
    per_slot = Counter(int(t.slot) for t in tasks if start <= t.slot < int(end))
    return {
        "takeover": takeover, "slots": len(slots) * KILL_SCHEDULES,
        "lost": sum(max(0, KILL_SCHEDULES - per_slot[s]) for s in slots),
        "late": sum(1 for t in tasks if start <= t.slot < int(end) and t.created - t.slot > 1.0),
        "dupes": sum(max(0, per_slot[s] - KILL_SCHEDULES) for s in slots),
    }  # fmt: skip


def ms(s: float) -> str:
    return f"{s * 1000:,.0f}" if s >= 0.1 else f"{s * 1000:.1f}"


STEPS = ("burst", "loaded", "kill")


def table(go: dict[str, float], py: dict[str, float], burst: int, idle_s: float, count: int) -> list[Row]:
    def both(what: str, fmt: str, key: str) -> Row:
        return Row(what, f"{fmt.format(go[key])} / {fmt.format(py[key])}")

    rows: list[Row] = []
    if "n" in go:
        rows += _burst_rows(go, py, burst, idle_s)
    if "rss" in go:
        rows += [
            Row(f"RSS with {count:,} loaded, leading (Go / ours)", f"{go['rss']:.0f} / {py['rss']:.0f} MB", "< Go",
                py["rss"] < go["rss"]),
            both("seconds from start to first fire (Go / ours)", "{:.1f}", "first"),
            Row("CPU while idle, % of a core (Go / ours)", f"{go['idle_cpu']:.1%} / {py['idle_cpu']:.1%}"),
        ]  # fmt: skip
    if "takeover" in go:
        rows += [
            both("leader kill: seconds to the next leader (Go / ours)", "{:.1f}", "takeover"),
            Row(f"leader kill: slots in the window ({KILL_SCHEDULES} schedules)",
                f"{go['slots']:,.0f} / {py['slots']:,.0f}"),
            Row("leader kill: lost (Go / ours)", f"{go['lost']:,.0f} / {py['lost']:,.0f}", "0 where Go loses",
                py["lost"] == 0 or go["lost"] == 0),
            both("leader kill: late > 1 s (Go / ours)", "{:,.0f}", "late"),
            Row("leader kill: duplicates (Go / ours)", f"{go['dupes']:,.0f} / {py['dupes']:,.0f}", "0 (ours)",
                py["dupes"] == 0),
        ]  # fmt: skip
    return rows


def _burst_rows(go: dict[str, float], py: dict[str, float], burst: int, idle_s: float) -> list[Row]:
    def both(what: str, fmt: str, key: str) -> Row:
        return Row(what, f"{fmt.format(go[key])} / {fmt.format(py[key])}")

    return [
        Row(f"burst: {burst:,} due in one second, tasks (Go / ours)", f"{go['n']:,.0f} / {py['n']:,.0f}", "all",
            go["n"] == py["n"] == burst),
        Row("burst tasks/s, N / (last stored - instant) (Go / ours)", f"{go['rate']:,.0f} / {py['rate']:,.0f}",
            ">= 3x Go", py["rate"] >= 3 * go["rate"]),
        Row("burst fire lag p50 / p99 / max, Go", f"{ms(go['p50'])} / {ms(go['p99'])} / {ms(go['max'])} ms"),
        Row("burst fire lag p50 / p99 / max, ours", f"{ms(py['p50'])} / {ms(py['p99'])} / {ms(py['max'])} ms",
            "p99 < Go", py["p99"] < go["p99"]),
        Row("burst lag to the record stored p50 / p99 (Go / ours)",
            f"{ms(go['s_p50'])} / {ms(go['s_p99'])} ; {ms(py['s_p50'])} / {ms(py['s_p99'])} ms"),
        both("burst CPU seconds (Go / ours)", "{:.2f}", "cpu"),
        Row(f"idle: {IDLE_SCHEDULES} @every 1s for {idle_s:.0f} s, fires (Go / ours)",
            f"{go['idle_n']:,.0f} / {py['idle_n']:,.0f}"),
        Row("idle fire lag p50 / p99, Go", f"{ms(go['idle_p50'])} / {ms(go['idle_p99'])} ms"),
        Row("idle fire lag p50 / p99, ours", f"{ms(py['idle_p50'])} / {ms(py['idle_p99'])} ms", "p99 < Go",
            py["idle_p99"] < go["idle_p99"]),
        Row("idle lag to the record stored p99 (Go / ours)", f"{ms(go['idle_s_p99'])} / {ms(py['idle_s_p99'])} ms"),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--loaded", type=int, default=100_000)
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {', '.join(STEPS)}")
    parser.add_argument("--markdown", action="store_true", help="add the date, machine and versions line")
    args = parser.parse_args()
    steps = [step for step in args.steps.split(",") if step]
    if not steps or not set(steps) <= set(STEPS):
        parser.error(f"--steps: one or more of {', '.join(STEPS)}")
    try:
        ajc = gobuild.build(gobuild.AJC).path
    except gobuild.GoUnavailable as exc:
        print(f"go_scheduler_bench: skipped, Go's scheduler is needed: {exc}", file=sys.stderr)
        return 1
    results: dict[str, dict[str, float]] = {"go": {}, "py": {}}
    with tempfile.TemporaryDirectory(prefix="ajc-gobench-") as tmp, start_server(work_dir=Path(tmp) / "nats") as server:
        impls = {k: Impl(k, server.url, Path(tmp) / k, ajc if k == "go" else None) for k in results}
        runs = {"burst": lambda i: burst_and_idle(i, args.burst, args.idle_seconds),
                "loaded": lambda i: loaded(i, args.loaded), "kill": leader_kill}  # fmt: skip
        for step in (runs[name] for name in STEPS if name in steps):
            for kind, impl in impls.items():  # in turn, on the same server
                results[kind] |= step(impl)
                print(f"{kind}: {results[kind]}", file=sys.stderr, flush=True)
    rows = table(results["go"], results["py"], args.burst, args.idle_seconds, args.loaded)
    title = "Go's ajc task cron scheduler (asyncjobs v0.3.0) and ours, one nats-server on loopback"
    return report(title, rows, markdown=args.markdown, go_tools=(gobuild.AJC,))


if __name__ == "__main__":
    raise SystemExit(main())

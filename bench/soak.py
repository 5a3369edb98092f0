"""Soak: one real ``ajc-gitops scheduler`` process leading 10,000 schedules for ``--minutes``.

Load: 10,000 ``@every 1m`` schedules whose ``created_at`` anchors are spread over the 60
seconds of a minute (``@every`` slots are ``anchor + k·delay``, scheduler/slots.py), so about
167 tasks are due every second, i.e. 10,000 tasks a minute and ~500 JetStream publishes/s
(record, state event, work item). That is a steady, realistic fleet load which a 2-core machine
sustains with the nats-server on the same cores; ``@every 1s`` for all 10,000 would be 30,000
publishes/s, a burst benchmark (bench/scheduler_bench.py), not a soak.

Every ``--sample-seconds`` (10) it reads the process's RSS (/proc/PID/status VmRSS) and open fds
(/proc/PID/fd), the message counts of CHORIA_AJ_TASKS and CHORIA_AJ_Q_DEFAULT from the server's
monitoring port (no client connection competing with the scheduler) and the scheduler's own
/metrics. It prints a table (start, middle, end, slope per minute) and verdicts:

* RSS flat: slope over the second half < 1 MB/min and end within 10 % of the middle
  (the first half includes heap and buffer warm-up);
* fds flat: end - start <= 2;
* no pending growth: tasks stored == work items enqueued == tasks the scheduler counted as
  created (nothing queued inside the process beyond what fired), and the fired count keeps up
  with the load (>= 95 % of the slots due since the first sample).

The elections bucket uses the test-only short TTL (``SHORT_TTL_ENV``) so winning takes ~3 s,
or with ``--go-ttl`` Go's own bucket (10 s TTL); either way a "lost leadership" line in the
scheduler's log fails the run. Run: ``python bench/soak.py --minutes 10``, or under a fleet's
load with Go's lease: ``python bench/soak.py --go-ttl --count 100000 --minutes 5``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ajc_gitops.codec import encode_scheduled_task  # noqa: E402
from ajc_gitops.connect import ConnectOptions  # noqa: E402
from ajc_gitops.embedded import EmbeddedServer, free_ports, start_server  # noqa: E402
from ajc_gitops.model import GoTime, ScheduledTask  # noqa: E402
from ajc_gitops.names import ELECTIONS_BUCKET, SCHEDULE_PREFIX  # noqa: E402
from ajc_gitops.scheduler.runner import SHORT_TTL_ENV  # noqa: E402
from ajc_gitops.state import WriteOp  # noqa: E402
from ajc_gitops.store import Store, ensure_task_streams  # noqa: E402

NS = 1_000_000_000
TTL_S = 4.0
TASKS_STREAM = "CHORIA_AJ_TASKS"
QUEUE_STREAM = "CHORIA_AJ_Q_DEFAULT"


def opts(url: str) -> ConnectOptions:
    return ConnectOptions(servers=(url,), timeout_s=10.0)


async def prepare(url: str, count: int, *, go_ttl: bool) -> None:
    async with Store.open(opts(url)) as store:
        if not go_ttl:
            config = Store.bucket_config(ELECTIONS_BUCKET)
            config["max_age"] = config["duplicate_window"] = int(TTL_S * NS)
            await store.api_request(f"STREAM.CREATE.KV_{ELECTIONS_BUCKET}", config, what="elections")
        await store.ensure_buckets()  # with go_ttl: Go's elections bucket, 10 s TTL
        await ensure_task_streams(store)
        # Anchors one per second of the last minute: the first slot of each schedule
        # (anchor + 60 s) falls within the next minute, so the load is even from the start and
        # only the few seconds before the scheduler leads are caught up (not a burst).
        base = (time.time_ns() // NS - 55) * NS
        ops = []
        for i in range(count):
            name = f"soak-{i:06d}"
            st = ScheduledTask(name, "@every 1m", "DEFAULT", "soak:every1m", None, 0, 0, GoTime(base + (i % 60) * NS))
            ops.append(WriteOp.create(SCHEDULE_PREFIX + name, encode_scheduled_task(st), tombstone_revision=None))
        for start in range(0, count, 10_000):
            outcomes = await store.write_many(ops[start : start + 10_000])
            assert all(o.status == "ok" for o in outcomes), outcomes[:3]


def get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        body: bytes = resp.read()
    return body.decode()


def stream_counts(server: EmbeddedServer) -> dict[str, int]:
    info = json.loads(get(f"{server.monitor_url}/jsz?streams=true"))
    out: dict[str, int] = {}
    for account in info.get("account_details") or []:
        for detail in account.get("stream_detail") or []:
            out[detail["name"]] = int((detail.get("state") or {}).get("messages", 0))
    return out


def metric_sum(text: str, name: str) -> float:
    """Sum of every sample of ``name`` (all label sets) in Prometheus text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True, slots=True)
class Sample:
    t: float  # seconds since the first sample
    rss_mb: float
    fds: int
    tasks: int  # messages in CHORIA_AJ_TASKS
    queued: int  # messages in CHORIA_AJ_Q_DEFAULT
    created: float  # choria_asyncjobs_task_scheduler_scheduled_count, all labels
    dupes: float  # ajc_gitops_scheduler_duplicate_fires_suppressed_total
    sched_rss: float = 0.0


def take(server: EmbeddedServer, pid: int, monitor: int, t0: float) -> Sample:
    counts = stream_counts(server)
    metrics = get(f"http://127.0.0.1:{monitor}/metrics")
    return Sample(
        t=time.monotonic() - t0,
        rss_mb=rss_mb(pid),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        tasks=counts.get(TASKS_STREAM, 0),
        queued=counts.get(QUEUE_STREAM, 0),
        created=metric_sum(metrics, "choria_asyncjobs_task_scheduler_scheduled_count"),
        dupes=metric_sum(metrics, "ajc_gitops_scheduler_duplicate_fires_suppressed_total"),
    )


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value), per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    den = sum((p[0] - mx) ** 2 for p in points)
    return 60 * sum((p[0] - mx) * (p[1] - my) for p in points) / den if den else 0.0


def report(samples: list[Sample], count: int, lost: int) -> bool:
    first, mid, last = samples[0], samples[len(samples) // 2], samples[-1]
    half = samples[len(samples) // 2 :]
    rows = [
        ("RSS (MB)", first.rss_mb, mid.rss_mb, last.rss_mb, slope_per_min([(s.t, s.rss_mb) for s in half])),
        ("open fds", first.fds, mid.fds, last.fds, slope_per_min([(s.t, s.fds) for s in samples])),
        ("tasks stream msgs", first.tasks, mid.tasks, last.tasks, slope_per_min([(s.t, s.tasks) for s in samples])),
        ("queue stream msgs", first.queued, mid.queued, last.queued, slope_per_min([(s.t, s.queued) for s in samples])),
        ("tasks created (metric)", first.created, mid.created, last.created,
         slope_per_min([(s.t, s.created) for s in samples])),
    ]  # fmt: skip
    print(f"\n{len(samples)} samples over {last.t / 60:.1f} min, {count} schedules @every 1m")
    print(f"{'':24} {'start':>10} {'middle':>10} {'end':>10} {'slope/min':>11}")
    print(f"{'t (s)':24} {first.t:>10.0f} {mid.t:>10.0f} {last.t:>10.0f}")
    for label, a, b, c, s in rows:
        print(f"{label:24} {a:>10.1f} {b:>10.1f} {c:>10.1f} {s:>11.2f}")
    rss_slope = rows[0][4]
    rss_ok = rss_slope < 1.0 and last.rss_mb <= mid.rss_mb * 1.10
    fds_ok = last.fds - first.fds <= 2
    consistent = last.tasks == last.queued == int(last.created)
    due = (last.t - first.t) / 60 * count
    fired = last.created - first.created
    keeps_up = fired >= 0.95 * due
    verdicts = [
        (f"RSS flat (2nd-half slope {rss_slope:.2f} MB/min < 1, end <= middle +10 %)", rss_ok),
        (f"fds flat (end - start = {last.fds - first.fds} <= 2)", fds_ok),
        (f"no pending growth (tasks {last.tasks} == queued {last.queued} == created {int(last.created)})", consistent),
        (f"keeps up with the load (fired {fired:.0f} >= 95 % of {due:.0f} due)", keeps_up),
        (f"no duplicate fires suppressed (metric {last.dupes:.0f})", last.dupes == 0),
        (f"leadership held ({lost} 'lost leadership' log lines)", lost == 0),
    ]
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}: {text}")
    return all(ok for _, ok in verdicts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--warmup-seconds", type=float, default=15.0)
    parser.add_argument(
        "--go-ttl", action="store_true", help="Go's elections bucket (10 s TTL) instead of the 4 s test TTL"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ajc-soak-") as tmp, start_server(work_dir=Path(tmp) / "nats") as server:
        asyncio.run(prepare(server.url, args.count, go_ttl=args.go_ttl))
        monitor = free_ports(1)[0]
        env = {**os.environ, "NO_COLOR": "1"}
        env.pop("NATS_URL", None)
        env.pop(SHORT_TTL_ENV, None)
        if not args.go_ttl:
            env[SHORT_TTL_ENV] = "1"
        log = Path(tmp) / "scheduler.log"
        with log.open("w") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ajc_gitops", "scheduler", "soak", "-s", server.url,
                 "--log-format", "json", "--monitor", str(monitor)],
                stdout=subprocess.DEVNULL, stderr=err, env=env,
            )  # fmt: skip
        try:
            # Wait (bounded) until it leads and has fired once: the soak measures steady state.
            deadline = time.monotonic() + 60
            while True:
                try:
                    text = get(f"http://127.0.0.1:{monitor}/metrics", timeout=2)
                    if metric_sum(text, "choria_asyncjobs_task_scheduler_scheduled_count") > 0:
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    print(log.read_text()[-3000:], file=sys.stderr)
                    return 2
                time.sleep(0.2)
            # Warm-up: the catch-up of the seconds before it led, then the steady state.
            time.sleep(args.warmup_seconds)
            t0 = time.monotonic()
            samples: list[Sample] = []
            end = t0 + args.minutes * 60
            while True:
                s = take(server, proc.pid, monitor, t0)
                samples.append(s)
                print(
                    f"t={s.t:6.0f}s rss={s.rss_mb:7.1f}MB fds={s.fds:4d} tasks={s.tasks:7d} "
                    f"queued={s.queued:7d} created={s.created:7.0f} dupes={s.dupes:.0f}",
                    flush=True,
                )
                if proc.poll() is not None:
                    print(f"scheduler exited {proc.returncode}:\n{log.read_text()[-3000:]}", file=sys.stderr)
                    return 2
                if time.monotonic() >= end:
                    break
                time.sleep(max(0.0, min(args.sample_seconds, end - time.monotonic())))
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        text = log.read_text()
        traceback = "Traceback" in text
        ok = report(samples, args.count, text.count("lost leadership"))
        print(f"{'FAIL' if traceback else 'PASS'}: no traceback in the scheduler log; exit {proc.returncode}")
        return 0 if ok and not traceback and proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

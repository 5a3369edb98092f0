"""plan and apply at 10,000 schedules against a real nats-server (embedded, loopback).

Measures, in one run against one server:

* plan = read (complete snapshot of records and markers) + diff + text render, with 10,000
  schedules in the manifests and 10,000 live, both with nothing to change and with 1,000
  changed; goal < 2 s. Loading the manifests is shown apart.
* apply of 10,000 creates (stale check, 10,000 markers, 10,000 Creates, bucket creation): its
  KV writes/s (2 per schedule) against the ceilings of benchlib (nats-py's inbox-pipelined
  JetStream publish, natscli's ``nats bench js pub async``), same server, same run; goal:
  writes/s >= 50 % of the inbox ceiling.

Run: ``python bench/plan_apply_bench.py [--count N] [--repeat R] [--markdown]``; exits 1 when a
goal is missed. Figures go in docs/benchmarks.md under "plan/apply".
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import nats
import nats.js.errors

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import Row, measure_ceiling, report  # noqa: E402

from ajc_gitops.commands.common import make_plan  # noqa: E402
from ajc_gitops.connect import ConnectOptions  # noqa: E402
from ajc_gitops.embedded import start_server  # noqa: E402
from ajc_gitops.manifest.load import DesiredSchedule, load_manifests  # noqa: E402
from ajc_gitops.names import CONFIG_BUCKET, ELECTIONS_BUCKET  # noqa: E402
from ajc_gitops.plan.model import Plan  # noqa: E402
from ajc_gitops.render.plan import PLAN_RENDERERS  # noqa: E402
from ajc_gitops.store import Store  # noqa: E402
from ajc_gitops.sync.apply import apply_plan  # noqa: E402
from ajc_gitops.sync.state import read_state  # noqa: E402

T = TypeVar("T")
PER_FILE = 1000
WRITES_PER_SCHEDULE = 2  # the ownership marker, then the record


def write_manifests(directory: Path, count: int, schedule: str = "0 0 1 * *", changed: int = 0) -> None:
    for old in directory.glob("*.yaml"):
        old.unlink()
    for start in range(0, count, PER_FILE):
        lines = ["defaults: {queue: EMAIL, task_type: 'email:monthly', deadline: 12h}", "schedules:"]
        for i in range(start, min(start + PER_FILE, count)):
            spec = "@hourly" if i < changed else schedule
            lines += [
                f"  - name: sched-{i:05d}",
                f"    schedule: '{spec}'",
                f"    payload: {{template: monthly, n: {i}}}",
            ]
        (directory / f"part-{start // PER_FILE:03d}.yaml").write_text("\n".join(lines) + "\n")


async def timed(awaitable: Awaitable[T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = await awaitable
    return time.perf_counter() - started, result


async def plan_and_render(store: Store, schedules: Sequence[DesiredSchedule], now: datetime) -> Plan:
    plan = await make_plan(store, schedules, now=now, prune=False, adopt=frozenset())
    PLAN_RENDERERS["text"](plan, color=False)
    return plan


async def drop_buckets(url: str) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for bucket in (CONFIG_BUCKET, ELECTIONS_BUCKET):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_key_value(bucket)
    finally:
        await nc.close()


async def bench(url: str, count: int, repeat: int, work: Path) -> dict[str, list[float]]:
    now = datetime.now(UTC)
    figures: dict[str, list[float]] = {
        k: [] for k in ("load", "plan_nochange", "plan_changed", "apply")
    }
    options = ConnectOptions(servers=(url,), timeout_s=10)
    for _ in range(repeat):
        # apply of `count` creates into missing buckets
        await drop_buckets(url)
        write_manifests(work, count)
        started = time.perf_counter()
        loaded = load_manifests([work], now=now)
        figures["load"].append(time.perf_counter() - started)
        assert not loaded.errors
        async with Store.open(options) as store:
            plan = await make_plan(store, loaded.schedules, now=now, prune=False, adopt=frozenset())
            assert plan.to_add == count
            elapsed, result = await timed(apply_plan(store, plan))
            assert result.complete and len(result.applied) == count
            figures["apply"].append(count / elapsed)
            records, _ = await read_state(store)
            assert len(records.live) == count
            elapsed, p = await timed(plan_and_render(store, loaded.schedules, now))
            assert not p.has_changes
            figures["plan_nochange"].append(elapsed)
            write_manifests(work, count, changed=count // 10)
            changed = load_manifests([work], now=now).schedules
            elapsed, p = await timed(plan_and_render(store, changed, now))
            assert p.to_change == count // 10
            figures["plan_changed"].append(elapsed)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="add the date, machine and versions line")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ajc-bench-") as tmp, start_server(work_dir=Path(tmp) / "nats") as server:
        work = Path(tmp) / "manifests"
        work.mkdir()
        f = asyncio.run(bench(server.url, args.count, args.repeat, work))
        ceiling = measure_ceiling(server.url, 2 * args.count)
    med = {k: statistics.median(v) for k, v in f.items() if v}
    n = args.count
    rows = [
        Row(f"load {n:,} manifests (validate, not part of plan goal)", f"{med['load']:.2f} s"),
        Row(f"plan: read + diff + render, {n:,} live, no changes", f"{med['plan_nochange']:.2f} s", "< 2 s",
            med["plan_nochange"] < 2),
        Row(f"plan: read + diff + render, {n:,} live, {n // 10:,} changed", f"{med['plan_changed']:.2f} s", "< 2 s",
            med["plan_changed"] < 2),
        Row(f"apply {n:,} creates (schedules/s; 2 KV writes each)", f"{med['apply']:,.0f} /s"),
        *ceiling.rows("apply rate", med["apply"], WRITES_PER_SCHEDULE, goal=0.5),
    ]  # fmt: skip
    title = f"plan/apply benchmark: {n:,} schedules, median of {args.repeat} runs, nats-server on loopback"
    return report(title, rows, markdown=args.markdown)


if __name__ == "__main__":
    raise SystemExit(main())

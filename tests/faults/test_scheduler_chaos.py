"""Scheduler group chaos: three real ``ajc-gitops scheduler`` processes under a steady load of
``@every 1s`` schedules, the leader killed again and again at random moments (alternating
SIGKILL and SIGTERM, the killed member restarted at once under the same name), and the NATS
server restarted under a running scheduler. Throughout, a worker consumes the DEFAULT queue as
an asyncjobs worker does (tests/deliveries.py), and afterwards every work item it was handed is
counted per (schedule, slot): none duplicated, none missing inside the catch-up window. Counting
the task records in CHORIA_AJ_TASKS instead could not show a duplicate: that stream keeps one
record per task ID and refuses a second. The re-fires the task store refused (each logged by the
scheduler) are reported, and each must name a slot that was handed out exactly once.

Elections use the test-only short TTL (``SHORT_TTL`` = 4 s, tests/scheduler_support.py, enabled
per process by ``SHORT_TTL_ENV``) so that a SIGKILL failover takes at most TTL + 2 x interval =
10 s instead of Go's 25 s; SIGTERM releases the key and hands over in under a TTL. The
behaviour under test does not depend on the TTL, only the wall time of the suite does.

The default variant keeps one short round (< ~60 s); the long variant (``-m slow`` or
``AJC_LONG=1``, tests/conftest.py) kills the leader many more times.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.scheduler.runner import SHORT_TTL_ENV
from tests import deliveries
from tests.deliveries import Worker
from tests.faults.support import repeat
from tests.scheduler_support import SHORT_TTL, fired_after, holder_now, prepare, put_schedule, tasks_now
from tests.scheduler_support import record as schedule_record
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

TYPES = tuple(f"t:chaos{i}" for i in range(4))
CATCHUP_WINDOW_S = 300  # --catchup-window 5m, passed to every member
# A SIGKILL failover: the key expires after the TTL, a follower campaigns within 2 intervals,
# plus the first fires; SIGTERM is faster. Generous so a slow CI machine does not flake.
FAILOVER_BUDGET_S = 4 * SHORT_TTL + 5
POLL_S = 0.2  # reading the tasks stream is one connection and a full read: not every 10 ms


class Member:
    """One ``ajc-gitops scheduler NAME`` process, stderr to a log file (kept across restarts)."""

    def __init__(self, name: str, url: str, log_dir: Path) -> None:
        self.name = name
        self.url = url
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.start()

    def start(self) -> None:
        env = {**os.environ, SHORT_TTL_ENV: "1", "NO_COLOR": "1"}
        for name in ("NATS_URL", "NATS_CONTEXT", "AJC_SCHEDULER_NAME"):
            env.pop(name, None)
        cmd = [sys.executable, "-m", "ajc_gitops", "scheduler", self.name, "-s", self.url,
               "--log-format", "json", "--catchup-window", f"{CATCHUP_WINDOW_S}s"]  # fmt: skip
        with self.log.open("a") as err:  # append: one log per name across restarts
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
        self.starts += 1

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, how: signal.Signals) -> int:
        """Send ``how`` and reap; SIGTERM must exit 0 within a few seconds (contract §5)."""
        assert self.proc is not None
        self.proc.send_signal(how)
        return self.proc.wait(10)

    def stop(self) -> int | None:
        if not self.running:
            return None
        return self.signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    def check_log(self) -> None:
        text = self.log.read_text()
        assert "Traceback" not in text, text[-3000:]


@dataclass
class Run:
    """What happened, for the assertions and for docs/reliability.md."""

    kills: Counter[str] = field(default_factory=Counter)
    failovers_s: list[float] = field(default_factory=list)
    started: float = 0.0
    first_kill: float = 0.0
    last_kill: float = 0.0


def put_schedules(url: str, types: tuple[str, ...]) -> None:
    now = time.time_ns()
    for tt in types:
        name = tt.removeprefix("t:")
        asyncio.run(put_schedule(url, name, schedule_record(name, "@every 1s", created_ns=now, task_type=tt)))


def count_slots(worker: Worker, url: str, types: tuple[str, ...]) -> dict[str, Any]:
    """What ``worker`` was handed, per (schedule, slot) (``deliveries.count_slots``), with each
    item's schedule read from its task record; plus the refused re-fires the members logged."""
    type_of = {t["id"]: t["type"] for t in tasks_now(url)}
    out = deliveries.count_slots(deliveries.as_tasks(worker.deliveries, type_of), types, CATCHUP_WINDOW_S)
    out["tasks_stored"] = sum(1 for t in type_of.values() if t in types)
    out["redeliveries"] = deliveries.redeliveries(worker.deliveries)
    return out


def refused_refires(logs: list[Path], worker: Worker, url: str) -> dict[str, Any]:
    """The slots whose second fire the task store refused, from the members' logs; each must
    have reached the worker exactly once (refused, not lost, not run twice)."""
    refused: Counter[tuple[str, int]] = Counter()
    for log in logs:
        refused += deliveries.refused_refires(log.read_text().splitlines())
    type_of = {t["id"]: t["type"] for t in tasks_now(url)}
    handed = deliveries.per_slot(worker.deliveries, type_of)
    wrong = {slot: handed[(f"t:{name}", slot)] for (name, slot) in refused if handed[(f"t:{name}", slot)] != 1}
    return {"refused": sum(refused.values()), "not_handed_once": wrong}


def kill_leader_repeatedly(server: EmbeddedServer, tmp_path: Path, kills: int, seed: int) -> tuple[Run, dict[str, Any]]:
    url = server.url
    rng = random.Random(seed)
    asyncio.run(prepare(url))
    put_schedules(url, TYPES)
    worker = Worker(url).__enter__()
    group = {f"py-{i}": Member(f"py-{i}", url, tmp_path) for i in range(3)}
    run = Run(started=time.time())
    try:
        wait_until(
            lambda: fired_after(url, run.started, 2, TYPES), 4 * SHORT_TTL + 5, "the first leader's fires", POLL_S
        )
        for k in range(kills):
            leader = wait_until(
                lambda: (h := holder_now(url)) in group and group[h].running and h,
                FAILOVER_BUDGET_S,
                "a live leader",
                POLL_S,
            )
            # A random moment inside a second: before, on and after slot boundaries, mid-publish.
            time.sleep(rng.uniform(0.0, 1.5))
            how = signal.SIGKILL if k % 2 == 0 else signal.SIGTERM
            killed_at = time.time()
            code = group[leader].signal(how)
            assert code == (0 if how == signal.SIGTERM else -signal.SIGKILL), (leader, how, code)
            run.kills[how.name] += 1
            run.first_kill = run.first_kill or killed_at
            run.last_kill = killed_at
            group[leader].start()  # the member comes back, under the same name, as a follower
            # Bound as a default: the closure is polled within this iteration only.
            fired = lambda after=killed_at + 1: fired_after(url, after, 2, TYPES)  # noqa: E731
            wait_until(fired, FAILOVER_BUDGET_S, f"fires after kill {k + 1} ({how.name})", POLL_S)
            run.failovers_s.append(time.time() - killed_at)
        # Every slot of the run is now either fired or missed; stop the group cleanly.
    finally:
        codes = {name: m.stop() for name, m in group.items()}
        for m in group.values():
            m.kill()
        worker.__exit__(None, None, None)  # drains what is left in the queue
    assert all(c in (0, None) for c in codes.values()), codes
    for m in group.values():
        m.check_log()
    result = count_slots(worker, url, TYPES)
    result.update(refused_refires([m.log for m in group.values()], worker, url))
    return run, result


def assert_clean(run: Run, result: dict[str, Any]) -> None:
    print(
        f"kills {dict(run.kills)}, slots handed to the worker {result['slots']} "
        f"(tasks stored {result['tasks_stored']}, redeliveries {result['redeliveries']}), "
        f"duplicated {result['duplicated']}, missed {result['missed']}, "
        f"missed outside window {result['missed_outside_window']}, refused re-fires {result['refused']}, "
        f"failover s max {max(run.failovers_s):.1f} mean {sum(run.failovers_s) / len(run.failovers_s):.1f}"
    )
    assert not result["duplicated"], result["duplicated"]
    assert not result.get("unknown"), result["unknown"]
    assert not result["not_handed_once"], result["not_handed_once"]
    assert not result["missed"], result["missed"]
    # Every kill is inside this run and every gap < the window, so nothing may be outside it.
    assert not result["missed_outside_window"], result["missed_outside_window"]


def test_leader_killed_repeatedly_misses_and_duplicates_nothing(nats_server: EmbeddedServer, tmp_path: Path) -> None:
    # 4 kills (2 SIGKILL, 2 SIGTERM) fit ~60 s: a SIGKILL failover is <= 10 s with the short TTL.
    run, result = kill_leader_repeatedly(nats_server, tmp_path, kills=repeat(4), seed=int(time.time()))
    assert run.kills == Counter({"SIGKILL": repeat(2), "SIGTERM": repeat(2)})
    assert_clean(run, result)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_leader_killed_repeatedly_long(nats_server: EmbeddedServer, tmp_path: Path) -> None:
    run, result = kill_leader_repeatedly(nats_server, tmp_path, kills=repeat(30), seed=int(time.time()))
    assert sum(run.kills.values()) == repeat(30)
    assert_clean(run, result)


# The quick restart (0 s down) is a long-run variant; CI keeps the 3 s outage.
@pytest.mark.parametrize("down_s", [pytest.param(0.0, marks=pytest.mark.slow), 3.0])
def test_nats_restart_under_a_running_scheduler(nats_server: EmbeddedServer, tmp_path: Path, down_s: float) -> None:
    """The same process keeps firing after the server comes back (it reconnects, re-watches
    the schedules and resyncs), and no slot is fired twice. ``down_s`` 0 is ``restart()``;
    3 keeps the server down across several slots (the outage itself, not a wait for an event),
    which the scheduler must fire late, once, inside the catch-up window."""
    url = nats_server.url
    asyncio.run(prepare(url))
    put_schedules(url, TYPES[:2])
    worker = Worker(url).__enter__()
    member = Member("py-0", url, tmp_path)
    try:
        wait_until(lambda: fired_after(url, time.time() - 30, 2, TYPES[:2]), 4 * SHORT_TTL + 5, "first fires", POLL_S)
        assert member.proc is not None
        pid = member.proc.pid
        restarted_at = time.time()
        if down_s:
            nats_server.stop()
            time.sleep(down_s)
            nats_server.start()
        else:
            nats_server.restart()
        back_at = time.time()
        wait_until(lambda: fired_after(url, back_at + 1, 3, TYPES[:2]), 30, "fires after the server restart", POLL_S)
        # Re-watch: a schedule added after the restart is picked up by the same process.
        added_at = time.time()
        put_schedules(url, TYPES[2:3])
        wait_until(lambda: fired_after(url, added_at, 2, TYPES[:3]), 15, "the schedule added after the restart", POLL_S)
        assert member.running and member.proc.pid == pid, "the scheduler process was restarted"
    finally:
        code = member.stop()
        member.kill()
        worker.__exit__(None, None, None)
    assert code == 0
    member.check_log()
    result = count_slots(worker, url, TYPES[:3])
    result.update(refused_refires([member.log], worker, url))
    print(f"server down {back_at - restarted_at:.1f}s: {result}")
    assert not result["duplicated"], result["duplicated"]
    assert not result["missed"], result["missed"]
    assert not result.get("unknown"), result["unknown"]
    assert not result["not_handed_once"], result["not_handed_once"]

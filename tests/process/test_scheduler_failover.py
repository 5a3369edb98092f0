"""`ajc-gitops scheduler` as real processes: two and three members, the leader killed with
SIGKILL or stopped with SIGTERM, and a 3-node JetStream cluster losing a node. Tasks are
counted per (schedule, slot) from the tasks stream: none missing inside the catch-up
window, none duplicated. SIGTERM exits 0 within a few seconds and hands over faster than
the TTL (contract §5, fixing §8.14).

Elections use a short-TTL bucket (tests/scheduler_support.py); a SIGKILL failover then takes
at most TTL + 2 x interval = 10 s instead of Go's 25 s."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nats.errors
import pytest

from ajc_gitops.embedded import free_ports
from ajc_gitops.errors import AjcError
from ajc_gitops.scheduler.runner import SHORT_TTL_ENV
from tests.scheduler_support import (
    SHORT_TTL,
    assert_exactly_once,
    holder_now,
    prepare,
    put_schedule,
    tasks_now,
)
from tests.scheduler_support import fired_after as fired_in_stream
from tests.scheduler_support import record as schedule_record

pytestmark = pytest.mark.integration
NS = 1_000_000_000
TYPES = ("t:s1", "t:s2")


class Member:
    def __init__(self, name: str, url: str, log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self.monitor = free_ports(1)[0]
        env = {**os.environ, SHORT_TTL_ENV: "1", "NO_COLOR": "1", "AJC_SCHEDULER_NAME": name}
        env.pop("NATS_URL", None)
        cmd = [
            sys.executable,
            "-m",
            "ajc_gitops",
            "scheduler",
            "-s",
            url,
            "--log-format",
            "json",
            "--catchup-window",
            "5m",
        ]
        with self.log.open("w") as err:
            self.proc = subprocess.Popen(
                [*cmd, "--monitor", str(self.monitor)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )

    def probe(self, path: str) -> int:
        try:
            return int(urllib.request.urlopen(f"http://127.0.0.1:{self.monitor}{path}", timeout=2).status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    def stderr(self) -> str:
        return self.log.read_text()

    def check_logs(self) -> None:
        text = self.stderr()
        assert "Traceback" not in text, text
        for line in text.splitlines():
            json.loads(line)  # --log-format json: one object per line

    def stop(self, timeout: float = 5.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


def setup_group(url: str, replicas: int = 1) -> None:
    asyncio.run(prepare(url, replicas=replicas))
    now = time.time_ns()
    for t in TYPES:
        name = t.removeprefix("t:")
        asyncio.run(put_schedule(url, name, schedule_record(name, "@every 1s", created_ns=now)))


def _written(url: str, name: str, value: bytes) -> bool:
    """Put a schedule; False while the cluster cannot take it (a node rejoining can make
    JetStream briefly unavailable on every node)."""
    try:
        asyncio.run(put_schedule(url, name, value))
    except AjcError:
        return False
    return True


def fired_after(url: str, instant: float, n: int = 2, types: tuple[str, ...] = TYPES) -> bool:
    """Every schedule has fired ``n`` slots after ``instant``; not yet when the tasks stream
    cannot be read (its leader was on a node that just went down)."""
    try:
        return fired_in_stream(url, instant, n, types)
    except nats.errors.Error:
        return False


# Two of the four (size, signal) pairs: a group of 3 under both signals alternating is
# tests/faults/test_scheduler_chaos.py.
@pytest.mark.parametrize(("members", "how"), [(2, "SIGKILL"), (3, "SIGTERM")])
def test_leader_failover_misses_and_duplicates_nothing(nats_server, tmp_path, wait_until, members, how):
    url = nats_server.url
    setup_group(url)
    group = {f"py-{i}": Member(f"py-{i}", url, tmp_path) for i in range(members)}
    try:
        leader = wait_until(lambda: holder_now(url) in group and holder_now(url), timeout=4 * SHORT_TTL)
        wait_until(lambda: fired_after(url, time.time() - 30, 2), timeout=10, what="first fires")
        stopped_at = time.time()
        if how == "SIGKILL":
            group[leader].proc.kill()
            group[leader].proc.wait()
        else:
            group[leader].proc.send_signal(signal.SIGTERM)
            assert group[leader].proc.wait(4) == 0  # exits 0 within a few seconds
            assert time.time() - stopped_at < 3
        new = wait_until(lambda: (h := holder_now(url)) not in (None, leader) and h, timeout=4 * SHORT_TTL)
        handover = time.time() - stopped_at
        assert new in group
        assert (group[new].probe("/healthz"), group[new].probe("/readyz")) == (200, 200)
        if how == "SIGTERM":
            # Released with a Delete: the next candidate tick takes it, no waiting for the TTL.
            assert handover < SHORT_TTL, f"handover took {handover:.1f}s"
        wait_until(lambda: fired_after(url, stopped_at + handover, 2), timeout=15, what="fires after the handover")
    finally:
        codes = {name: m.stop() for name, m in group.items() if m.proc.poll() is None}
    assert all(code == 0 for code in codes.values()), codes
    for m in group.values():
        m.check_logs()
    tasks = tasks_now(url)
    for tt in TYPES:
        slots = assert_exactly_once(tasks, tt)
        assert slots[0] < stopped_at - 1 and slots[-1] > stopped_at + handover, (tt, slots)


@pytest.mark.parametrize("fault", ["stop", "pause"])
def test_three_node_cluster_with_one_node_down(nats_cluster, tmp_path, wait_until, fault):
    url = nats_cluster.urls
    setup_group(url, replicas=3)
    group = {f"py-{i}": Member(f"py-{i}", url, tmp_path) for i in range(2)}
    victim, paused = nats_cluster.servers[0], False  # the node every member connected to first
    try:
        wait_until(lambda: holder_now(url) in group, timeout=4 * SHORT_TTL)
        wait_until(lambda: fired_after(url, time.time() - 30, 2), timeout=10, what="first fires")
        stopped_at = time.time()
        # SIGSTOP mimics a partition: sockets stay open, nothing answers, so the members must
        # notice the silence themselves rather than get a closed connection.
        if fault == "stop":
            victim.stop()
        else:
            victim.pause()
            paused = True
        url = ",".join(s.url for s in nats_cluster.servers[1:])
        wait_until(lambda: fired_after(url, stopped_at + 2, 3), timeout=30, what=f"fires with a node down ({fault})")
        recovered = time.time() - stopped_at
        print(f"\n{fault}: every schedule fired 3 slots again {recovered:.1f}s after the node went down")
        # The node comes back and catches up while the group runs; a schedule added now must
        # fire, and none may be dropped by a resync that read the returning node's old view.
        if fault == "stop":
            victim.start(30)
        else:
            victim.resume()
            paused = False
        back = time.time()
        url = nats_cluster.urls
        s3 = schedule_record("s3", "@every 1s", created_ns=time.time_ns())
        wait_until(lambda: _written(url, "s3", s3), timeout=30, what="s3 written while the cluster settles")
        wait_until(lambda: fired_after(url, back + 1, 3, types=(*TYPES, "t:s3")), timeout=30, what="fires after")
    finally:
        if paused:
            victim.resume()
        codes = {name: m.stop(timeout=8) for name, m in group.items()}
    assert all(code == 0 for code in codes.values()), codes
    for m in group.values():
        m.check_logs()
    tasks = tasks_now(url)
    for tt in TYPES:
        slots = assert_exactly_once(tasks, tt)
        assert slots[0] < stopped_at and slots[-1] > back + 2
    assert assert_exactly_once(tasks, "t:s3")[-1] > back + 2


def test_second_interrupt_forces_exit_while_shutdown_hangs(nats_server, tmp_path, wait_until):
    url = nats_server.url
    setup_group(url)
    member = Member("py-0", url, tmp_path)
    try:
        wait_until(lambda: holder_now(url) == "py-0", timeout=4 * SHORT_TTL)
        nats_server.pause()  # the release and the close now hang on the server
        member.proc.send_signal(signal.SIGINT)
        wait_until(lambda: "shutting down" in member.stderr(), timeout=5)
        member.proc.send_signal(signal.SIGINT)
        forced = time.monotonic()
        assert member.proc.wait(5) == 130
        assert time.monotonic() - forced < 2
    finally:
        nats_server.resume()
        if member.proc.poll() is None:
            member.proc.kill()
    assert "Traceback" not in member.stderr()


def test_unreachable_server_is_one_line_and_exit_1(tmp_path):
    member = Member("py-0", "nats://127.0.0.1:1", tmp_path)
    assert member.proc.wait(30) == 1
    lines = [line for line in member.stderr().splitlines() if not line.startswith("{")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "cannot connect" in lines[0], lines

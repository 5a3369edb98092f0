"""The election state machine under a virtual clock and an in-memory KV with Go's rules.

No sockets: ``FakeKV`` applies JetStream's expected-last-subject-sequence check and the
bucket TTL on the virtual clock; ``VirtualClock`` wakes waiters in time order and only moves
on once every elector is waiting again, so invariants are checked after every step.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass

import pytest

from ajc_gitops.errors import ConflictError, StoreError
from ajc_gitops.scheduler.election import Campaign, ElectionError, Elector, Role, Timing, next_tick

TTL = 10.0


# -- fakes ----------------------------------------------------------------------------------


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0
        self._heap: list[tuple[float, int, asyncio.Future[None], asyncio.Event]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self.now

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        if event.is_set():
            return True
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (self.now + max(0.0, seconds), next(self._seq), fut, event))
        await fut
        return event.is_set()

    def waiting(self) -> int:
        return sum(1 for _, _, f, _ in self._heap if not f.done())

    async def quiesce(self, tasks: list[asyncio.Task[None]]) -> None:
        """Let the loop run until every live task waits on this clock again."""
        for _ in range(10_000):
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if self.waiting() >= sum(not t.done() for t in tasks):
                return
            await asyncio.sleep(0)
        raise AssertionError("electors never went back to waiting")

    async def step(self, until: float, tasks: list[asyncio.Task[None]]) -> bool:
        """Wake the earliest waiter due by ``until`` (or with its event set); False if none."""
        for _, _, fut, event in self._heap:
            if event.is_set() and not fut.done():
                fut.set_result(None)
                await self.quiesce(tasks)
                return True
        while self._heap and self._heap[0][2].done():
            heapq.heappop(self._heap)
        if not self._heap or self._heap[0][0] > until:
            self.now = max(self.now, until)
            return False
        due, _, fut, _ = heapq.heappop(self._heap)
        self.now = max(self.now, due)
        fut.set_result(None)
        await self.quiesce(tasks)
        return True


@dataclass
class _Msg:
    value: bytes
    revision: int
    op: str  # PUT or DEL
    stamped: float


class FakeKV:
    """One key of a TTL bucket with JetStream's CAS semantics; logs every operation."""

    def __init__(self, clock: VirtualClock, ttl: float = TTL) -> None:
        self.clock = clock
        self.ttl = ttl
        self._last: _Msg | None = None
        self._seq = 0
        self.ops: list[tuple[str, bytes, int]] = []
        self.partitioned: set[bytes] = set()  # every request from these members fails
        self.hang_updates_for: set[bytes] = set()

    def current(self) -> _Msg | None:
        if self._last is not None and self.clock.now >= self._last.stamped + self.ttl:
            self._last = None  # max_age expired it
        return self._last

    def holder(self) -> bytes | None:
        cur = self.current()
        return cur.value if cur is not None and cur.op == "PUT" else None

    def _write(self, value: bytes, op: str, expected: int) -> int:
        cur = self.current()
        if (cur.revision if cur else 0) != expected:
            raise ConflictError("wrong last sequence")
        self._seq += 1
        self._last = _Msg(value, self._seq, op, self.clock.now)
        self.ops.append((op if op == "DEL" else "WRITE", value, self._seq))
        return self._seq

    async def bucket_ttl(self) -> float:
        return self.ttl

    async def create(self, value: bytes, *, timeout: float) -> int:
        cur = self.current()
        expected = cur.revision if cur is not None and cur.op == "DEL" else 0
        self.ops.append(("create", value, expected))
        if value in self.partitioned:
            raise StoreError("timed out waiting for the server")
        return self._write(value, "PUT", expected)

    async def update(self, value: bytes, *, revision: int, timeout: float) -> int:
        self.ops.append(("update", value, revision))
        if value in self.hang_updates_for:
            await asyncio.Event().wait()
        if value in self.partitioned:
            raise StoreError("timed out waiting for the server")
        return self._write(value, "PUT", revision)

    async def delete(self, *, revision: int, timeout: float) -> None:
        self.ops.append(("delete", b"", revision))
        self._write(b"", "DEL", revision)


class Harness:
    def __init__(self, names: list[str], splays: list[float], timing: Timing | None = None) -> None:
        self.clock = VirtualClock()
        self.kv = FakeKV(self.clock)
        self.events: list[tuple[float, str, str]] = []
        self.electors = [self._elector(n, s, timing) for n, s in zip(names, splays, strict=True)]
        self.tasks: list[asyncio.Task[None]] = []
        self.max_leaders = 0

    def _elector(self, name: str, splay: float, timing: Timing | None) -> Elector:
        return Elector(
            self.kv,
            name,
            timing=timing or Timing.from_ttl(TTL),
            clock=self.clock,
            rng=lambda: splay / 5.0,
            on_won=lambda: self.events.append((self.clock.now, name, "won")),
            on_lost=lambda: self.events.append((self.clock.now, name, "lost")),
        )

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(e.run(), name=e.name) for e in self.electors]
        await self.clock.quiesce(self.tasks)

    def check(self) -> None:
        leaders = [e for e in self.electors if e.is_leader]
        self.max_leaders = max(self.max_leaders, len(leaders))
        assert len(leaders) <= 1, f"two leaders at t={self.clock.now}: {[e.name for e in leaders]}"
        for e in leaders:  # an acting leader holds the key
            assert self.kv.holder() == e.name.encode()

    async def run_until(self, t: float) -> None:
        while await self.clock.step(t, self.tasks):
            self.check()
        self.check()

    def leader(self) -> Elector | None:
        leaders = [e for e in self.electors if e.is_leader]
        return leaders[0] if leaders else None

    async def stop(self) -> None:
        for e in self.electors:
            await e.release()
        while await self.clock.step(self.clock.now, self.tasks):
            pass
        await asyncio.gather(*self.tasks)


# -- pure timing ----------------------------------------------------------------------------


def test_timing_follows_go_rules():
    t = Timing.from_ttl(10.0)
    assert (t.ttl_s, t.interval_s, t.request_timeout_s, t.max_splay_s) == (10.0, 7.5, 5.0, 5.0)
    assert Timing.from_ttl(3600.0).interval_s == 2700.0
    assert Timing.from_ttl(60.0, request_timeout_s=30.0).request_timeout_s == 5.0


@pytest.mark.parametrize("ttl", [0.0, 5.0, 9.999, 3600.001, 86400.0])
def test_ttl_outside_go_range_is_refused(ttl):
    with pytest.raises(ElectionError, match=r"outside 10s\.\.1h"):
        Timing.from_ttl(ttl)


def test_refresh_gives_up_before_the_lease_could_expire():
    t = Timing.from_ttl(10.0)
    assert t.refresh_timeout(2.5) == pytest.approx(2.0)  # refresh sent 7.5 s into a 10 s lease
    assert t.refresh_timeout(60.0) == 5.0
    assert t.refresh_timeout(0.1) == 0.0


@pytest.mark.parametrize(
    ("now", "expected"),
    [(0.0, 7.5), (7.4, 7.5), (7.5, 15.0), (20.0, 22.5), (-1.0, 0.0)],
)
def test_next_tick_is_a_fixed_ticker_dropping_missed_ticks(now, expected):
    assert next_tick(0.0, 7.5, now) == expected


# -- pure state machine ---------------------------------------------------------------------


def test_campaign_announces_only_after_the_first_refresh():
    c = Campaign()
    step = c.created(5, sent_at=0.0, ttl_s=TTL)
    assert (step.acquired, step.announce, c.role) == (True, False, Role.WON)
    step = c.refreshed(6, sent_at=7.5, ttl_s=TTL)
    assert (step.announce, c.role, c.revision, c.lease_until) == (True, Role.LEADER, 6, 17.5)
    assert not c.refreshed(7, sent_at=15.0, ttl_s=TTL).announce


def test_campaign_failure_reports_loss_and_whether_it_had_announced():
    c = Campaign()
    assert c.failed() == c.failed()  # candidate: nothing to lose
    assert not c.failed().lost
    c.created(1, 0.0, TTL)
    step = c.failed()
    assert step.lost and not step.was_leader and c.revision is None and c.role is Role.CANDIDATE
    c.created(2, 0.0, TTL)
    c.refreshed(3, 7.5, TTL)
    step = c.failed()
    assert step.lost and step.was_leader


# -- the driver under a virtual clock -------------------------------------------------------


async def test_first_campaign_after_splay_and_acting_one_tick_later():
    h = Harness(["a"], [1.25])
    await h.start()
    await h.run_until(1.25)
    e = h.electors[0]
    assert e.role is Role.WON and not e.is_leader  # acquired, not yet acting
    await h.run_until(1.25 + 7.5 - 0.01)
    assert not e.is_leader
    await h.run_until(1.25 + 7.5)
    assert e.is_leader and e.term == 1
    assert h.events == [(8.75, "a", "won")]
    await h.run_until(100.0)
    assert e.is_leader and e.term == 1
    assert {op for op, _, _ in h.kv.ops} <= {"create", "update", "WRITE"}  # never a Put
    await h.stop()


@pytest.mark.parametrize("splays", [[0.0, 0.0], [0.0, 4.9], [3.0, 1.0, 2.0], [0.5, 0.5, 0.5]])
async def test_never_two_leaders_and_one_emerges(splays):
    h = Harness([f"s{i}" for i in range(len(splays))], splays)
    await h.start()
    await h.run_until(min(splays) + 7.5)
    assert h.leader() is not None
    await h.run_until(300.0)
    assert h.max_leaders == 1
    assert [ev for ev in h.events if ev[2] == "won"] == [h.events[0]]  # no flapping
    await h.stop()


async def test_failed_refresh_loses_at_once_and_another_takes_over_within_ttl_plus_interval():
    h = Harness(["a", "b"], [0.0, 2.0])
    await h.start()
    await h.run_until(7.5)
    a, b = h.electors
    assert a.is_leader
    h.kv.partitioned.add(b"a")
    last_ok = 7.5
    await h.run_until(15.0)  # a's refresh at 15.0 fails
    assert not a.is_leader and a.role is Role.CANDIDATE
    assert (15.0, "a", "lost") in h.events
    await h.run_until(last_ok + TTL + 2 * 7.5)
    assert b.is_leader
    won_b = next(t for t, n, ev in h.events if n == "b" and ev == "won")
    assert won_b <= last_ok + TTL + 2 * 7.5
    await h.stop()


async def test_killed_leader_is_replaced_after_its_key_expires():
    h = Harness(["a", "b", "c"], [0.0, 1.0, 2.0])
    await h.start()
    await h.run_until(8.0)
    a = h.electors[0]
    assert a.is_leader
    h.tasks[0].cancel()  # SIGKILL: no release, the key just expires
    await h.clock.quiesce(h.tasks)
    await h.run_until(7.5 + TTL + 2 * 7.5)
    leader = h.leader()
    assert leader is not None and leader.name in ("b", "c")
    assert h.max_leaders == 1
    for e in h.electors[1:]:
        await e.release()
    while await h.clock.step(h.clock.now, h.tasks):
        pass


async def test_release_stops_acting_first_then_deletes_so_the_next_tick_takes_over():
    h = Harness(["a", "b"], [0.0, 3.0])
    await h.start()
    await h.run_until(10.0)
    a, b = h.electors
    assert a.is_leader
    release = asyncio.create_task(a.release())
    await asyncio.sleep(0)  # release() has started: acting stops before any I/O completes
    assert not a.is_leader
    await release
    assert h.kv.ops[-1][0] == "DEL" and h.kv.holder() is None
    assert (10.0, "a", "lost") in h.events
    # b ticks at 3 + 7.5k: Create over the tombstone at 10.5, acts at 18.0, far below the TTL path.
    await h.run_until(18.0)
    assert b.is_leader
    await h.stop()


async def test_release_never_deletes_a_key_it_does_not_hold():
    h = Harness(["a", "b"], [0.0, 1.0])
    await h.start()
    await h.run_until(20.0)
    b = h.electors[1]
    assert not b.is_leader
    await b.release()
    assert all(op != "delete" for op, _, _ in h.kv.ops)
    await h.stop()


async def test_lease_expiry_alone_ends_leadership():
    h = Harness(["a"], [0.0])
    await h.start()
    await h.run_until(7.5)
    a = h.electors[0]
    assert a.is_leader
    h.clock.now = 7.5 + TTL  # the loop is stuck somewhere: our lease has run out
    assert not a.is_leader
    h.clock.now = 7.5
    await h.stop()


async def test_hanging_refresh_times_out_and_counts_as_lost():
    timing = Timing(ttl_s=TTL, interval_s=7.5, request_timeout_s=0.05)
    h = Harness(["a"], [0.0], timing=timing)
    await h.start()
    await h.run_until(7.5)
    a = h.electors[0]
    assert a.is_leader
    h.kv.hang_updates_for.add(b"a")
    h.clock.now = 15.0
    await a.campaign_once()  # waits 0.05 s of real time for the refresh
    assert not a.is_leader and a.role is Role.CANDIDATE
    await h.stop()


async def test_refuses_a_bucket_ttl_go_would_refuse():
    clock = VirtualClock()
    kv = FakeKV(clock, ttl=5.0)
    with pytest.raises(ElectionError):
        await Elector(kv, "a", clock=clock).run()


async def test_refresh_completing_after_release_began_is_not_announced_and_is_deleted():
    h = Harness(["a"], [0.0])
    await h.start()
    await h.run_until(0.0)
    a = h.electors[0]
    assert a.role is Role.WON
    gate = asyncio.Event()
    real_update = h.kv.update

    async def slow_update(value: bytes, *, revision: int, timeout: float) -> int:
        await gate.wait()
        return await real_update(value, revision=revision, timeout=timeout)

    h.kv.update = slow_update  # type: ignore[method-assign]
    h.clock.now = 7.5
    refresh = asyncio.create_task(a.campaign_once())
    await asyncio.sleep(0)  # the refresh is in flight
    release = asyncio.create_task(a.release())
    await asyncio.sleep(0)
    gate.set()
    await refresh
    await release
    assert h.events == []  # never announced
    assert h.kv.ops[-1][0] == "DEL" and h.kv.holder() is None
    await h.stop()

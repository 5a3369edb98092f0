"""Bulk work without stalling the event loop (scheduler/pacing.py, scheduler/loopprobe.py):
the probe's bookkeeping, the GC pause, and a large load and term start measured by the probe.
The schedules come from an in-memory watch source (``Follower``'s ``watch`` seam), which
hands them over without ever suspending: the worst case for the loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncGenerator

from ajc_gitops.codec import encode_scheduled_task
from ajc_gitops.errors import StoreError
from ajc_gitops.model import GoTime, ScheduledTask
from ajc_gitops.names import SCHEDULE_PREFIX
from ajc_gitops.scheduler.fire import FireLoop
from ajc_gitops.scheduler.follow import Follower
from ajc_gitops.scheduler.loopprobe import WARN_S, LoopProbe
from ajc_gitops.scheduler.metrics import SchedulerMetrics
from ajc_gitops.scheduler.pacing import bulk_allocation
from ajc_gitops.state import InitialDone, KvPut, WatchEvent
from ajc_gitops.store import Store
from tests.waiting import async_wait_until

COUNT = 20_000
S = 1_000_000_000


class Stalls:
    def __init__(self) -> None:
        self.seen: list[tuple[str, float]] = []

    def loop_stall(self, phase: str, seconds: float) -> None:
        self.seen.append((phase, seconds))


class Leader:
    is_leader = True
    term = 1


class NoServer:
    """The follower's store, here without a server: no stream state to read."""

    def __init__(self) -> None:
        self.resyncs_tried = 0

    async def stream_info_summary(self, _bucket: str) -> object:
        self.resyncs_tried += 1  # a resync starts here
        raise StoreError("no server in a unit test")


def test_probe_keeps_the_longest_stall_per_phase() -> None:
    observer = Stalls()
    probe = LoopProbe(observer)
    probe.record(0.002)
    probe.record(-0.001)  # a timer that fired early is no stall
    probe.phase = "running"
    probe.record(0.150)
    probe.record(0.030)
    assert probe.longest == {"loading": 0.002, "running": 0.150}
    assert observer.seen == [("loading", 0.002), ("loading", 0.0), ("running", 0.150), ("running", 0.030)]


def test_bulk_allocation_pauses_the_gc_nests_and_freezes_once() -> None:
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with bulk_allocation():
            with bulk_allocation(freeze=False):
                assert not gc.isenabled()
            assert not gc.isenabled()  # the outer one still holds it
            kept: list[list[int]] = [[] for _ in range(100)]  # GC-tracked objects to freeze
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(kept)
        with bulk_allocation(freeze=False):
            pass
        assert gc.isenabled()
    finally:
        gc.unfreeze()


def records(count: int) -> list[WatchEvent]:
    created = GoTime(1_700_000_000 * S)
    return [
        KvPut(SCHEDULE_PREFIX + f"c{i:05d}", encode_scheduled_task(
            ScheduledTask(f"c{i:05d}", f"{i % 60} {i // 60 % 24} * * *", "Q", "t:daily", None, 0, 0, created)
        ), i + 1)
        for i in range(count)
    ]  # fmt: skip


async def load_and_lead(events: list[WatchEvent]) -> tuple[LoopProbe, Follower, FireLoop]:
    async def source(_store: Store) -> AsyncGenerator[WatchEvent, None]:
        for event in events:
            yield event  # never suspends: all of them are "queued"
        yield InitialDone(1, len(events))
        await asyncio.Event().wait()

    observer = Stalls()
    # The loop's stalls in this thread's CPU time: what the code does between two turns of the
    # loop, not how long other processes on a busy machine kept the CPU (wall-clock stalls
    # passed 100 ms here only under load). A slice that never yields still shows in full.
    probe = LoopProbe(observer, monotonic=time.thread_time)
    follower = Follower(NoServer(), watch=source)  # type: ignore[arg-type]  # no resync runs this soon
    fire = FireLoop(
        None,  # type: ignore[arg-type]  # never enqueues here
        lambda: follower.schedules,
        Leader(),
        SchedulerMetrics("pacing"),  # real: its per-schedule series are part of a term start's cost
        floor=lambda _now: None,
        clock=lambda: 1_800_000_000 * S,
    )
    async with asyncio.TaskGroup() as tg:
        probing = tg.create_task(probe.run())
        following = tg.create_task(follower.run())
        await follower.wait_ready()
        measured = len(observer.seen)
        await async_wait_until(lambda: len(observer.seen) > measured)  # the probe saw the load
        probe.phase = "running"
        await fire._begin(1_800_000_000 * S)  # a term start: a track per schedule
        measured = len(observer.seen)
        await async_wait_until(lambda: len(observer.seen) > measured)
        following.cancel()
        probing.cancel()
    return probe, follower, fire


def test_loading_and_a_term_start_of_20000_never_stall_the_loop() -> None:
    probe, follower, fire = asyncio.run(load_and_lead(records(COUNT)))
    assert len(follower.schedules) == COUNT and len(fire._tracks) == COUNT
    longest = {phase: round(s * 1000) for phase, s in probe.longest.items()}
    assert max(probe.longest.values()) < WARN_S, f"longest stalls (ms): {longest}"


async def test_no_resync_runs_while_the_initial_values_are_still_coming() -> None:
    """A resync beside a load longer than its period (a million keys) would double the work."""
    release = asyncio.Event()
    events = records(3)

    async def source(_store: Store) -> AsyncGenerator[WatchEvent, None]:
        yield events[0]
        await release.wait()  # the rest of a long initial load
        for event in events[1:]:
            yield event
        yield InitialDone(1, len(events))
        await asyncio.Event().wait()

    store = NoServer()
    follower = Follower(store, watch=source, resync_s=0.001)  # type: ignore[arg-type]
    running = asyncio.create_task(follower.run())
    try:
        await async_wait_until(lambda: len(follower.schedules) == 1)
        for _ in range(200):  # two hundred resync periods, and loop turns, while loading
            await asyncio.sleep(0.001)
        assert store.resyncs_tried == 0
        release.set()
        await async_wait_until(lambda: store.resyncs_tried > 0, what="a resync once loaded")
        assert len(follower.schedules) == 3
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

"""The fire loop: while this member leads, create each due slot's task, on time, once.

Timing: a heap holds every schedule's next slot (Unix seconds); the loop sleeps until the
earliest one, or until a schedule changes or leadership does, never polling on a fixed
tick. Due slots are enqueued in chunks through the pipelined ``enqueue_many`` (contract
§4.4), and leadership is checked right before every chunk: the election turns ``is_leader``
False synchronously at the first failed refresh (contract §5).

Terms: each time the election announces us (a new ``term``), the heap is rebuilt and every
schedule starts just after the latest of: ``now - window`` (the catch-up window), the group
floor (``group.py``: never a slot a Go leader may have fired) and the record's ``created_at``
(a schedule never fires for a time before it existed). Slots between that and now are the
catch-up fires; one another member already fired is rejected by the tasks stream through the
deterministic ID (``tasks.py``) and counted as suppressed. To keep those re-attempts few, a
leader publishes its ``progress`` in its marker (``group.py``) and the next one starts a schedule
after the previous leader's progress when that leader knew the schedule's current record.

Changes while leading: a new schedule starts like a term start (so a record delivered late
still fires the slot it was created for); a replaced one (Put over a live key, contract §3)
continues after ``max(last slot handled, now)``, so an update never fires its new definition
retroactively; a removed one stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import heapq
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from ajc_gitops.gowire.godate import GoTimeRangeError, from_unix
from ajc_gitops.model import NANOS_PER_SECOND, GoTime, Task
from ajc_gitops.scheduler.fire_report import GAP, FireMetrics, FireReport, LeaderView
from ajc_gitops.scheduler.follow import FollowedSchedule
from ajc_gitops.scheduler.pacing import Slices, bulk_allocation
from ajc_gitops.scheduler.slots import (
    DEFAULT_CATCHUP_WINDOW,
    MISSED_COUNT_CAP,
    catchup_window,
    count_between,
    missed_between,
    next_slot,
)
from ajc_gitops.scheduler.tasks import InvalidTaskError, build_slot_task
from ajc_gitops.state import EnqueueOutcome
from ajc_gitops.store import Store, enqueue_many

__all__ = ["FireLoop", "FireMetrics", "LeaderView"]  # FireMetrics: fire_report.py; LeaderView: fire_report.py

_log = logging.getLogger(__name__)
CHUNK = 1024  # tasks per enqueue_many call; leadership is re-checked between chunks
RETRY_S = 1.0  # an unstored task (``error``) is retried this much later while inside its window
# The wall clock may be stepped: re-read it at least this often even with nothing due.
MAX_SLEEP_S = 30.0
# A slot this late is still an on-time fire, not a catch-up (a busy burst, a slow request):
# even --catchup-window 0 fires it.
LATE_GRACE_NS = 5 * NANOS_PER_SECOND


@dataclass(slots=True)
class _Track:
    schedule: FollowedSchedule
    after_s: int  # slots at or before this second are handled (or out of reach)
    gen: int  # heap entries with another generation are stale
    window_ns: int
    since_s: int  # slots before this second are catch-up fires


@dataclass(frozen=True, slots=True)
class _Due:
    slot_s: int
    name: str
    catchup: bool


class FireLoop:
    """Runs until cancelled; ``schedule_changed`` is the follower's ``on_change`` hook and
    ``wake`` is called on election transitions."""

    def __init__(
        self,
        store: Store,
        schedules: Callable[[], Mapping[str, FollowedSchedule]],
        leader: LeaderView,
        metrics: FireMetrics,
        *,
        floor: Callable[[int], int | None],
        handled_through: Callable[[int], int | None] = lambda _revision: None,
        on_term: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], int],
        window: datetime.timedelta | None = None,
        chunk: int = CHUNK,
        max_in_flight: int = 1024,
        stranded: Callable[[Task, str, int, str], None] | None = None,
    ) -> None:
        self._store = store
        self._schedules = schedules
        self._leader = leader
        self._metrics = metrics
        self._report = FireReport(metrics)
        self._floor = floor
        self._handled_through = handled_through
        self._on_term = on_term
        self._clock = clock
        self._window = window  # None: per schedule, its deadline or 5 minutes
        self._chunk = max(1, chunk)
        self._max_in_flight = max_in_flight
        self._stranded = stranded  # (task, schedule, stored ns, last_err): requeue.Requeuer.add
        self._wake = asyncio.Event()
        self._changes: dict[str, FollowedSchedule | None] = {}
        self._tracks: dict[str, _Track] = {}
        self._heap: list[tuple[int, int, str]] = []  # (slot second, generation, name)
        self._retries: list[tuple[int, int, int, str]] = []  # (not before ns, slot, gen, name)
        self._gen = 0
        self._term_start_s = 0
        self._floor_s: int | None = None
        self._warned: set[tuple[str, int]] = set()
        self._max_revision = 0  # of the records our tracks were built from
        self._progress: tuple[int, int] | None = None
        self._active = False  # between a term's start and its end: changes are tracked
        self.fired = 0  # tasks stored (enqueued or queue_error), for tests and dev
        self.idle = asyncio.Event()  # set while nothing is due (tests)

    # -- hooks --------------------------------------------------------------------------

    def schedule_changed(self, name: str, schedule: FollowedSchedule | None) -> None:
        if self._active:  # otherwise the next term starts from the whole current set
            self._changes[name] = schedule
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    # -- loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            while not self._leader.is_leader:
                self._wake.clear()
                if self._leader.is_leader:
                    break
                await self._wake.wait()
            term = self._leader.term
            if self._on_term is not None:
                await self._on_term()  # re-read the group, announce (contract §5 OnWon)
            await self._lead(term)

    def _leading(self, term: int) -> bool:
        return self._leader.is_leader and self._leader.term == term

    async def _lead(self, term: int) -> None:
        now_ns = self._clock()
        await self._begin(now_ns)
        _log.info(
            "leading: %d schedule(s); catch-up reaches back to %s",
            len(self._tracks),
            "the window" if self._floor_s is None else from_unix(self._floor_s).isoformat(),
        )
        while self._leading(term):
            self._wake.clear()
            now_ns = self._clock()
            self._apply_changes(now_ns)
            due = self._pop_due(now_ns // NANOS_PER_SECOND, now_ns)
            if due:
                self.idle.clear()
                if not await self._fire(due, term):
                    break
                continue
            self.idle.set()
            self._report.idle()  # the term's catch-up, if any, is over: logged once
            self._mark_progress(now_ns)
            delay = self._next_wake_ns(now_ns)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(delay / NANOS_PER_SECOND, MAX_SLEEP_S)):
                    await self._wake.wait()
        _log.info("stopped firing: no longer the leader")
        self._active = False
        self._report.term_ended()
        self.idle.clear()
        self._progress = None
        self._tracks.clear()
        self._heap.clear()
        self._retries.clear()

    @property
    def progress(self) -> tuple[int, int] | None:
        """(second, revision): while leading, every slot at or before that second of every
        schedule at a record revision up to that revision has been fired or is out of reach.
        Published in our marker so a next leader skips re-attempting them (``group.py``)."""
        return self._progress

    def _mark_progress(self, now_ns: int) -> None:
        # Idle: every due slot was handled, except those waiting for a retry.
        through = now_ns // NANOS_PER_SECOND
        if self._retries:
            through = min(through, min(slot for _, slot, _, _ in self._retries) - 1)
        if self._progress is None or through > self._progress[0] or self._max_revision != self._progress[1]:
            self._progress = (through, self._max_revision)

    def _window_ns(self, fs: FollowedSchedule) -> int:
        window = self._window if self._window is not None else catchup_window(fs.task, DEFAULT_CATCHUP_WINDOW)
        return int(window.total_seconds() * NANOS_PER_SECOND)

    def _start_after(self, fs: FollowedSchedule, now_ns: int) -> int:
        """The second after which a fresh track fires: the latest of window, floor, creation."""
        window_ns = self._window_ns(fs)
        after = (now_ns - window_ns) // NANOS_PER_SECOND
        if self._floor_s is not None:
            after = max(after, self._floor_s)
        created = fs.task.created_at
        if not created.is_zero:
            after = max(after, created.unix_ns // NANOS_PER_SECOND)
        handled = self._handled_through(fs.revision)
        if handled is not None:
            after = max(after, handled)  # a previous leader fired these (saves duplicates)
        return after

    async def _begin(self, now_ns: int) -> None:
        floor = self._floor(now_ns)
        self._floor_s = None if floor is None else floor // NANOS_PER_SECOND
        self._term_start_s = now_ns // NANOS_PER_SECOND
        self._active = True
        self._changes.clear()  # the current set below already contains them
        self._progress = None
        self._max_revision = 0
        self._tracks.clear()
        self._heap.clear()
        self._retries.clear()
        # A track per schedule, a million at scale: in slices, pushed one by one (no heapify
        # pass over the whole heap), the garbage collector paused (pacing.py).
        self._report.term_started(self._window, self._floor_s)
        counted: dict[tuple[str, int, int], int] = {}
        slices = Slices()
        schedules = self._schedules()
        with bulk_allocation():
            # The names only (a copy of a million items is itself a 0.1 s pass); one removed
            # meanwhile is skipped, one changed meanwhile is in ``_changes`` (we are active).
            for name in list(schedules):
                fs = schedules.get(name)
                if fs is not None:
                    self._report.missed(name, self._missed_before(fs, now_ns, counted), why=GAP)
                    self._track(name, fs, self._start_after(fs, now_ns), self._term_start_s)
                await slices.tick()

    def _missed_before(self, fs: FollowedSchedule, now_ns: int, counted: dict[tuple[str, int, int], int]) -> int:
        """Slots no leader fired that are out of this term's reach: after a previous ajc-gitops
        leader's recorded progress (so nobody fired them since) and before the window."""
        handled = self._handled_through(fs.revision)
        if handled is None:
            return 0  # nobody recorded how far they fired: a Go leader or an older history
        before_s = (now_ns - self._window_ns(fs)) // NANOS_PER_SECOND
        task = fs.task
        return missed_between(task.schedule, fs.schedule, task.created_at, handled, self._floor_s, before_s, counted)

    def _track(self, name: str, fs: FollowedSchedule, after_s: int, since_s: int) -> None:
        self._gen += 1
        self._max_revision = max(self._max_revision, fs.revision)
        track = _Track(fs, after_s, self._gen, self._window_ns(fs), since_s)
        self._tracks[name] = track
        slot = next_slot(fs.schedule, fs.task.created_at, after_s)
        self._report.tracked(name, slot)
        if slot is not None:
            heapq.heappush(self._heap, (slot, track.gen, name))

    def _apply_changes(self, now_ns: int) -> None:
        changes, self._changes = self._changes, {}
        for name, fs in changes.items():
            old = self._tracks.pop(name, None)
            if fs is None:
                self._report.untracked(name)
                continue  # removed: its heap entries are stale now
            after = self._start_after(fs, now_ns) if old is None else max(old.after_s, now_ns // NANOS_PER_SECOND)
            self._track(name, fs, after, now_ns // NANOS_PER_SECOND)

    def _pop_due(self, now_s: int, now_ns: int) -> list[_Due]:
        due: list[_Due] = []
        while self._retries and self._retries[0][0] <= now_ns and len(due) < self._chunk:
            _, slot, gen, name = heapq.heappop(self._retries)
            track = self._tracks.get(name)
            if track is None or track.gen != gen:
                continue
            if slot * NANOS_PER_SECOND > now_ns - track.window_ns - LATE_GRACE_NS:
                due.append(_Due(slot, name, True))
            else:
                self._report.missed(name, 1, why="not stored before it left the catch-up window")
        while self._heap and self._heap[0][0] <= now_s and len(due) < self._chunk:
            slot, gen, name = heapq.heappop(self._heap)
            track = self._tracks.get(name)
            if track is None or track.gen != gen:
                continue
            oldest_s = (now_ns - track.window_ns - LATE_GRACE_NS) // NANOS_PER_SECOND
            if slot <= oldest_s:
                # Out of the window (the wall clock jumped, or the loop stalled): never fire
                # it; resume at the window's edge instead of walking every skipped slot.
                fs = track.schedule
                skipped = 1 + count_between(fs.schedule, fs.task.created_at, slot, oldest_s, cap=MISSED_COUNT_CAP)
                self._report.missed(name, skipped, why="it left the catch-up window before it could fire")
                track.after_s = oldest_s
                nxt = next_slot(track.schedule.schedule, track.schedule.task.created_at, oldest_s)
                self._report.tracked(name, nxt)
                if nxt is not None:
                    heapq.heappush(self._heap, (nxt, gen, name))
                continue
            track.after_s = slot
            nxt = next_slot(track.schedule.schedule, track.schedule.task.created_at, slot)
            self._report.tracked(name, nxt, period_s=None if nxt is None else nxt - slot)
            if nxt is not None:
                heapq.heappush(self._heap, (nxt, gen, name))
            due.append(_Due(slot, name, slot < track.since_s))
        return due

    def _next_wake_ns(self, now_ns: int) -> int:
        candidates = []
        if self._heap:
            candidates.append(self._heap[0][0] * NANOS_PER_SECOND - now_ns)
        if self._retries:
            candidates.append(self._retries[0][0] - now_ns)
        return max(0, min(candidates)) if candidates else int(MAX_SLEEP_S * NANOS_PER_SECOND)

    # -- firing -------------------------------------------------------------------------

    async def _fire(self, due: list[_Due], term: int) -> bool:
        """Build and enqueue one chunk; False when leadership ended first."""
        if not self._leading(term):  # contract §5: act only while leader, checked per batch
            return False
        created = GoTime(self._clock())
        tasks: list[Task] = []
        dues: list[_Due] = []
        slices = Slices()
        for d in due:
            await slices.tick()  # a chunk of 1,024 tasks is ~0.1 s to build here
            fs = self._tracks[d.name].schedule
            try:
                tasks.append(build_slot_task(fs.task, d.slot_s, created=created))
            except (InvalidTaskError, GoTimeRangeError) as exc:
                self._invalid(fs, str(exc))
                continue
            dues.append(d)
        if not tasks:
            return True
        if not self._leading(term):  # lost while building: the build gives the loop away
            return False
        outcomes = await enqueue_many(self._store, tasks, max_in_flight=self._max_in_flight, clock=self._clock)
        for d, task, outcome in zip(dues, tasks, outcomes, strict=True):
            self._account(d, task, outcome)
        return True

    def _invalid(self, fs: FollowedSchedule, reason: str) -> None:
        # Go's NewTask fails at fire time (contract §2.4); log once per record revision.
        self._metrics.schedule_error(fs.task.task_type, fs.task.queue)
        if (fs.name, fs.revision) not in self._warned:
            self._warned.add((fs.name, fs.revision))
            _log.warning("schedule %s cannot fire: %s", fs.name, reason)

    def _account(self, d: _Due, task: Task, outcome: EnqueueOutcome) -> None:
        m = self._metrics
        if outcome.status in ("enqueued", "queue_error", "duplicate"):
            # A duplicate was fired before, by whoever: the slot has its task all the same.
            self._report.fired(d.name, d.slot_s, catchup=d.catchup and outcome.status != "duplicate")
        if outcome.status in ("enqueued", "queue_error"):
            self.fired += 1
            m.task_stored("new")
            if d.catchup:
                m.catchup_fire()
            elif outcome.stored_ns is not None:
                m.fire_lag((outcome.stored_ns - d.slot_s * NANOS_PER_SECOND) / NANOS_PER_SECOND)
        if outcome.status == "enqueued":
            m.task_scheduled(task.type, task.queue)
            m.enqueued(task.queue)
        elif outcome.status == "queue_error":
            m.enqueue_error(task.queue)
            m.schedule_error(task.type, task.queue)
            if outcome.state_error is None:
                m.task_stored("queue_error")
            else:
                m.task_store_error()
            _log.warning("schedule %s: task %s in queue_error: %s", d.name, task.id, outcome.error)
            if outcome.requeue and self._stranded is not None:
                self._stranded(task, d.name, outcome.stored_ns or task.created.unix_ns, outcome.error or "")
        elif outcome.status == "duplicate":
            m.duplicate_suppressed()
            # One line per refused slot, so a fault run can tell which slots were tried twice.
            _log.info("refused re-fire: schedule %s slot %s (unix %d): task %s already stored",
                      d.name, from_unix(d.slot_s).isoformat(), d.slot_s, task.id)  # fmt: skip
            if outcome.repaired:
                m.enqueued(task.queue)
        else:  # error: nothing stored; retry while the slot is inside its window
            m.task_store_error()
            m.schedule_error(task.type, task.queue)
            track = self._tracks.get(d.name)
            _log.warning("schedule %s: slot %s not stored: %s", d.name, from_unix(d.slot_s).isoformat(), outcome.error)
            if track is not None:
                retry_at = self._clock() + int(RETRY_S * NANOS_PER_SECOND)
                heapq.heappush(self._retries, (retry_at, d.slot_s, track.gen, d.name))

"""Stranded tasks: stored, but left in ``queue_error`` because their work item was refused
for a cause that may pass (a timeout, no responders while a queue stream's leader moved;
``EnqueueOutcome.requeue``). Go leaves them there for ever (contract §4.4); a worker would
never run them.

A work item carries ``Nats-Msg-Id`` = task ID, so resending it is safe while the queue
stream still remembers that ID: inside its duplicate window (2 min as Go creates a queue),
counted from the task's store, less a margin for a request in flight and clock skew
between hosts. Inside the window and before the task's deadline, ``Requeuer`` resends with
a growing delay; a success moves the record back to ``new`` (``store.requeue_task``). Past
the window or the deadline it gives up: a warning naming the task and ``ajc task retry``,
and ``ajc_gitops_scheduler_requeue_abandoned_total``. The record stays ``queue_error``.

Requeueing does not create tasks, so it goes on after leadership moves (contract §5 gates
creation only): each attempt is idempotent (the message ID, the revision-guarded update).
What is pending lives in memory: a member that stops leaves those tasks as Go would.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ajc_gitops.errors import AjcError
from ajc_gitops.model import NANOS_PER_SECOND, Task
from ajc_gitops.store import Store, queue_duplicate_window, requeue_task

__all__ = ["FIRST_DELAY_S", "MAX_DELAY_S", "RequeueMetrics", "Requeuer", "Verdict", "next_attempt"]

_log = logging.getLogger(__name__)
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 8.0
SKEW_S = 5.0  # between the scheduler's clock and the server's, on top of a request timeout
DEFAULT_WINDOW_NS = 120 * NANOS_PER_SECOND  # the server's default (contract §1), until read


@dataclass(frozen=True, slots=True)
class Verdict:
    """Try again at ``at_ns``, or (``at_ns`` None) give up for ``reason``."""

    at_ns: int | None
    reason: str = ""


def next_attempt(
    *, now_ns: int, stored_ns: int, attempts: int, window_ns: int, deadline_ns: int | None, margin_ns: int
) -> Verdict:
    """When to resend the work item of a task stored at ``stored_ns`` after ``attempts``
    tries, given the queue's duplicate window and the task's deadline (None: none).

    The attempt must start by ``stored_ns + window_ns - margin_ns``, when a copy that landed
    before could still be refused as a duplicate, and before the deadline (a worker would
    only expire it). The delay doubles from ``FIRST_DELAY_S`` up to ``MAX_DELAY_S``."""
    delay_ns = int(min(FIRST_DELAY_S * 2 ** min(attempts, 16), MAX_DELAY_S) * NANOS_PER_SECOND)
    at = now_ns + delay_ns
    last_safe = stored_ns + window_ns - margin_ns
    if deadline_ns is not None and at >= deadline_ns:
        return Verdict(None, "its deadline passes before another attempt")
    if at > last_safe:
        if now_ns < last_safe:
            return Verdict(last_safe)  # one last attempt, still inside the window
        return Verdict(None, f"outside the queue's {window_ns / NANOS_PER_SECOND:g}s duplicate window")
    return Verdict(at)


class RequeueMetrics(Protocol):
    """``metrics.SchedulerMetrics``."""

    def requeued(self, queue: str) -> None: ...
    def requeue_abandoned(self, queue: str) -> None: ...
    def requeue_pending(self, count: int) -> None: ...


@dataclass(slots=True)
class _Stranded:
    task: Task
    schedule: str
    stored_ns: int
    attempts: int = 0
    last_err: str = ""


class Requeuer:
    """``add`` a stranded task; ``run`` (until cancelled) resends the due ones."""

    def __init__(self, store: Store, metrics: RequeueMetrics, *, clock: Callable[[], int]) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._heap: list[tuple[int, int, _Stranded]] = []  # (due ns, tie-breaker, task)
        self._count = 0
        self._windows: dict[str, int] = {}  # queue -> duplicate window ns, as last read
        self._wake = asyncio.Event()
        self._margin_ns = int((store.timeout + SKEW_S) * NANOS_PER_SECOND)

    @property
    def pending(self) -> int:
        return len(self._heap)

    def add(self, task: Task, schedule: str, stored_ns: int, last_err: str) -> None:
        item = _Stranded(task, schedule, stored_ns, last_err=last_err)
        self._schedule(item, self._clock())
        self._wake.set()

    def _schedule(self, item: _Stranded, now_ns: int) -> None:
        window = self._windows.get(item.task.queue, DEFAULT_WINDOW_NS)
        deadline = None if item.task.deadline is None else item.task.deadline.unix_ns
        verdict = next_attempt(
            now_ns=now_ns,
            stored_ns=item.stored_ns,
            attempts=item.attempts,
            window_ns=window,
            deadline_ns=deadline,
            margin_ns=self._margin_ns,
        )
        if verdict.at_ns is None:
            self._abandon(item, verdict.reason)
        else:
            self._count += 1
            heapq.heappush(self._heap, (verdict.at_ns, self._count, item))
        self._metrics.requeue_pending(len(self._heap))

    def _abandon(self, item: _Stranded, reason: str) -> None:
        self._metrics.requeue_abandoned(item.task.queue)
        _log.warning(
            "schedule %s: task %s stays in queue_error after %d requeue attempt(s), %s (last: %s); "
            "run `ajc task retry %s -q %s` once the queue is healthy",
            item.schedule, item.task.id, item.attempts, reason, item.last_err, item.task.id, item.task.queue,
        )  # fmt: skip

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                now = self._clock()
                if self._heap and self._heap[0][0] <= now:
                    _, _, item = heapq.heappop(self._heap)
                    await self._attempt(item)
                    continue
                delay = (self._heap[0][0] - now) / NANOS_PER_SECOND if self._heap else None
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                except TimeoutError:
                    pass
        finally:
            if self._heap:
                _log.warning("stopping with %d stranded task(s) still in queue_error", len(self._heap))

    async def _attempt(self, item: _Stranded) -> None:
        item.attempts += 1
        queue = item.task.queue
        try:
            window = await queue_duplicate_window(self._store, queue)
        except AjcError as exc:
            item.last_err = str(exc)
            self._schedule(item, self._clock())
            return
        if window is None:
            self._abandon(item, f"its queue stream for {queue!r} no longer exists")
            self._metrics.requeue_pending(len(self._heap))
            return
        self._windows[queue] = window
        now = self._clock()
        if now > item.stored_ns + window - self._margin_ns:  # the window as read now, not guessed
            self._abandon(item, f"outside the queue's {window / NANOS_PER_SECOND:g}s duplicate window")
            self._metrics.requeue_pending(len(self._heap))
            return
        outcome = await requeue_task(self._store, item.task, clock_ns=now)
        if outcome.status == "failed":
            item.last_err = outcome.error or "failed"
            self._schedule(item, self._clock())
            return
        if outcome.status == "requeued":
            self._metrics.requeued(queue)
            _log.info("schedule %s: task %s requeued after %d attempt(s)", item.schedule, item.task.id, item.attempts)
        else:
            _log.info("schedule %s: task %s is %s now; not requeued", item.schedule, item.task.id, outcome.state)
        self._metrics.requeue_pending(len(self._heap))

"""What a leader tells about its fires (issue 12 items 3 and 6): per schedule the slot of its
last fire, its next slot and the slots it missed, as metrics; and once per term a log line
saying what the catch-up fired, of which schedules, how far back and what bounded it.

A slot counts as missed only when this leader knows nobody fired it: it left the catch-up
window before any leader reached it (after a stall, a clock jump, or while nobody led since a
previous ajc-gitops leader's recorded progress), or it could not be stored until it left the
window. A slot before the group's Go floor is never counted: a Go leader may have fired it.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass, field
from typing import Protocol

from ajc_gitops.gowire.durations import format_duration
from ajc_gitops.gowire.godate import from_unix

__all__ = ["GAP", "FireMetrics", "FireReport", "LeaderView"]

_log = logging.getLogger("ajc_gitops.scheduler.fire")
_SHOWN_NAMES = 10
GAP = "nobody fired them since a previous leader's recorded progress, and they are past the catch-up window"


class FireMetrics(Protocol):
    """``metrics.SchedulerMetrics`` (contract §6 names plus ours)."""

    def task_scheduled(self, task_type: str, queue: str) -> None: ...
    def schedule_error(self, task_type: str, queue: str) -> None: ...
    def enqueued(self, queue: str) -> None: ...
    def enqueue_error(self, queue: str) -> None: ...
    def task_stored(self, state: str) -> None: ...
    def task_store_error(self) -> None: ...
    def fire_lag(self, seconds: float) -> None: ...
    def catchup_fire(self) -> None: ...
    def duplicate_suppressed(self) -> None: ...
    def schedule_fired(self, name: str, slot_s: int) -> None: ...
    def schedule_next(self, name: str, slot_s: int | None, period_s: int | None) -> None: ...
    def schedule_missed(self, name: str, count: int) -> None: ...
    def schedules_cleared(self) -> None: ...


@dataclass(slots=True)
class _Catchup:
    slots: int = 0
    names: dict[str, int] = field(default_factory=dict)  # name -> catch-up fires
    earliest_s: int | None = None
    logged: bool = False


class FireReport:
    """Per-schedule metrics and the term's catch-up line, for ``fire.FireLoop``."""

    def __init__(self, metrics: FireMetrics) -> None:
        self._metrics = metrics
        self._catchup = _Catchup(logged=True)
        self._bounds = ""

    def term_started(self, window: datetime.timedelta | None, floor_s: int | None) -> None:
        """A new term; ``window`` (``--catchup-window``) and the group floor bound its catch-up."""
        self._catchup = _Catchup()
        if window is None:
            text = "window: each schedule's deadline, else 5m"
        else:
            text = f"window: --catchup-window {format_duration(int(window.total_seconds() * 1e9))}"
        if floor_s is not None:
            text += f", never before {from_unix(floor_s).isoformat()} (a Go leader may have fired until then)"
        self._bounds = text + ", never before a schedule's created_at or a previous leader's recorded progress"

    def term_ended(self) -> None:
        self._metrics.schedules_cleared()  # a follower shows no next fires of its own

    def tracked(self, name: str, next_s: int | None, *, period_s: int | None = None) -> None:
        """The schedule's next slot; ``period_s``: from the slot just taken to that one."""
        self._metrics.schedule_next(name, next_s, period_s)

    def untracked(self, name: str) -> None:
        self._metrics.schedule_next(name, None, None)

    def fired(self, name: str, slot_s: int, *, catchup: bool) -> None:
        """The slot has its task (stored now, or by whoever fired it before)."""
        self._metrics.schedule_fired(name, slot_s)
        if catchup:
            c = self._catchup
            c.slots += 1
            c.names[name] = c.names.get(name, 0) + 1
            c.earliest_s = slot_s if c.earliest_s is None else min(c.earliest_s, slot_s)

    def missed(self, name: str, count: int, *, why: str) -> None:
        if count <= 0:
            return
        self._metrics.schedule_missed(name, count)
        _log.warning("schedule %s: %d slot(s) missed: %s", name, count, why)

    def idle(self) -> None:
        """Nothing is due: the term's catch-up, if any, is over; say so once."""
        c = self._catchup
        if c.logged:
            return
        c.logged = True
        if not c.slots:
            return
        names = sorted(c.names, key=lambda n: (-c.names[n], n))
        shown = ", ".join(names[:_SHOWN_NAMES])
        if len(names) > _SHOWN_NAMES:
            shown += f" and {len(names) - _SHOWN_NAMES} more"
        back = from_unix(c.earliest_s).isoformat() if c.earliest_s is not None else "?"
        _log.info(
            "caught up %d missed slot(s) of %d schedule(s) (%s), back to %s; %s",
            c.slots,
            len(names),
            shown,
            back,
            self._bounds,
        )


class LeaderView(Protocol):
    """What the fire loop needs from ``election.Elector``."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def term(self) -> int: ...

"""Which fire instants ("slots") a schedule has in a time range, and which are due now.
Pure: no clock, no I/O; every instant is passed in.

Cron specs use robfig/cron's ``Next`` (``ajc_gitops.cron``), so time zones and DST behave
exactly as in Go and in ``validate``/``plan``. ``@every`` is different on purpose: Go counts it
from when the entry is registered, so its phase changes at every restart and failover
(contract §2.5, §8 item 12) and two members never agree on the instants. Here its slots are a
lattice anchored to the record's ``created_at`` truncated to the second:
``anchor + k·delay`` for k ≥ 1. Every member reads the same record, so every member computes
the same slots, and with the deterministic task ID (``tasks.py``) the same tasks.

Catch-up: a member that becomes leader (or resumes after a stall) fires every slot it missed,
but only inside a window (default: the schedule's deadline, since a task past its deadline is
never run, else 5 minutes; issue 4 item 5). ``due_slots`` never returns a slot at or before
``last_checked``, so consecutive calls with ``last_checked`` = the previous ``now`` never
return a slot twice; a repeat attempt anyway (another member, a restart) is rejected by the
tasks stream through the deterministic ID.
"""

from __future__ import annotations

import datetime
import functools

from ajc_gitops.gowire.cron import EverySchedule, SpecSchedule
from ajc_gitops.gowire.godate import GoTimeRangeError, from_unix, to_unix
from ajc_gitops.model import NANOS_PER_SECOND, GoTime, ScheduledTask

__all__ = [
    "DEFAULT_CATCHUP_WINDOW",
    "MISSED_COUNT_CAP",
    "catchup_window",
    "count_between",
    "due_slots",
    "every_slots",
    "missed_between",
    "next_slot",
    "slots_between",
]

# Counting missed slots walks them; a leaderless week of a per-second schedule stops here.
MISSED_COUNT_CAP = 100_000

DEFAULT_CATCHUP_WINDOW = datetime.timedelta(minutes=5)
# A guard against a caller asking for years of 1-second slots; no real window comes close.
MAX_SLOTS = 1_000_000


def catchup_window(schedule: ScheduledTask, default: datetime.timedelta = DEFAULT_CATCHUP_WINDOW) -> datetime.timedelta:
    """The schedule's deadline when it has one (a fire later than that makes a task that is
    already past its deadline), else ``default`` (``--catchup-window``)."""
    if schedule.deadline_ns > 0:
        return datetime.timedelta(microseconds=schedule.deadline_ns // 1000)
    return default


def every_slots(
    delay_seconds: int,
    anchor: GoTime,
    start_exclusive: datetime.datetime,
    end_inclusive: datetime.datetime,
) -> list[datetime.datetime]:
    """``@every`` slots in ``(start_exclusive, end_inclusive]``: ``a + k·delay_seconds`` for
    k ≥ 1, where ``a`` is ``anchor`` truncated to the second (Go's ``Truncate(time.Second)``,
    which counts from Go's zero time, a whole number of seconds from the Unix epoch, so a
    floor on Unix nanoseconds agrees). k starts at 1 because Go never fires at registration."""
    if delay_seconds < 1:
        raise ValueError("@every delay must be at least 1 second (robfig/cron clamps to 1s)")
    a = anchor.unix_ns // NANOS_PER_SECOND
    # Slots are whole seconds: t > start ⇔ t ≥ floor(start) + 1, t ≤ end ⇔ t ≤ floor(end).
    lo = to_unix(start_exclusive) + 1
    hi = to_unix(end_inclusive)
    k_first = max(1, -(-(lo - a) // delay_seconds))
    k_last = (hi - a) // delay_seconds
    if k_last - k_first + 1 > MAX_SLOTS:
        raise ValueError(f"more than {MAX_SLOTS} @every slots requested; narrow the range")
    slots = []
    for k in range(k_first, k_last + 1):
        try:
            slots.append(from_unix(a + k * delay_seconds))
        except GoTimeRangeError:
            break  # past year 9999: Go's time goes on, ours cannot (never in practice)
    return slots


def slots_between(
    schedule: SpecSchedule | EverySchedule,
    start_exclusive: datetime.datetime,
    end_inclusive: datetime.datetime,
    *,
    anchor: GoTime | None = None,
) -> list[datetime.datetime]:
    """Every fire instant in ``(start_exclusive, end_inclusive]``, strictly increasing, as
    aware UTC datetimes. ``@every`` needs ``anchor`` (the record's ``created_at``)."""
    if isinstance(schedule, EverySchedule):
        if anchor is None:
            raise ValueError("@every slots need an anchor (the record's created_at)")
        return every_slots(schedule.delay_seconds, anchor, start_exclusive, end_inclusive)
    slots: list[datetime.datetime] = []
    current = start_exclusive
    while len(slots) < MAX_SLOTS:
        found = schedule.next(current)  # strictly after `current`, whole seconds
        if found is None or found > end_inclusive:
            return slots
        slots.append(found)
        current = found
    raise ValueError(f"more than {MAX_SLOTS} slots requested; narrow the range")


def due_slots(
    schedule: SpecSchedule | EverySchedule,
    *,
    last_checked: datetime.datetime | None,
    now: datetime.datetime,
    window: datetime.timedelta,
    anchor: GoTime | None = None,
) -> list[datetime.datetime]:
    """The slots to fire now: every slot in ``(max(last_checked, now - window), now]``.

    ``last_checked`` is the ``now`` of the previous call for this schedule on this member
    (``None`` right after becoming leader or registering the schedule). A slot older than
    ``window`` is never returned, however long nobody led."""
    if window < datetime.timedelta(0):
        raise ValueError("catch-up window must not be negative")
    try:
        start = now - window
    except OverflowError:  # a window reaching before year 1
        start = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    if last_checked is not None and last_checked > start:
        start = last_checked
    if start >= now:
        return []
    return slots_between(schedule, start, now, anchor=anchor)


def next_slot(schedule: SpecSchedule | EverySchedule, created_at: GoTime, after_s: int) -> int | None:
    """The schedule's first slot strictly after ``after_s`` (Unix seconds); None when it has
    none Go could reach."""
    try:
        if isinstance(schedule, EverySchedule):
            # Anchored on created_at (every_slots), so every member computes the same slots.
            delay = schedule.delay_seconds
            anchor_s = created_at.unix_ns // NANOS_PER_SECOND
            end = from_unix(max(after_s, anchor_s) + delay)
            found = every_slots(delay, created_at, from_unix(after_s), end)
            return to_unix(found[0]) if found else None
        return _spec_next(schedule, after_s)
    except (GoTimeRangeError, OverflowError, ValueError):
        return None


@functools.lru_cache(maxsize=1 << 16)
def _spec_next(schedule: SpecSchedule, after_s: int) -> int | None:
    # Pure and shared: schedules with one spec text share one parsed schedule (follow.py), and
    # at a term start or a common slot they all ask from the same second, so robfig's Next
    # (~100 us here) runs once per text instead of once per schedule.
    nxt = schedule.next(from_unix(after_s))
    return None if nxt is None else to_unix(nxt)


def count_between(
    schedule: SpecSchedule | EverySchedule, anchor: GoTime, after_s: int, through_s: int, *, cap: int
) -> int:
    """How many slots lie in ``(after_s, through_s]``, at most ``cap`` (a cron spec is walked
    slot by slot; ``@every`` is counted on its lattice)."""
    if through_s <= after_s:
        return 0
    if isinstance(schedule, EverySchedule):
        a, d = anchor.unix_ns // NANOS_PER_SECOND, schedule.delay_seconds
        first = max(1, (after_s - a) // d + 1)
        return max(0, min(cap, (through_s - a) // d - first + 1))
    count = 0
    slot = next_slot(schedule, anchor, after_s)
    while slot is not None and slot <= through_s and count < cap:
        count += 1
        slot = next_slot(schedule, anchor, slot)
    return count


def missed_between(
    spec: str,
    schedule: SpecSchedule | EverySchedule,
    created_at: GoTime,
    handled_s: int,
    floor_s: int | None,
    before_s: int,
    counted: dict[tuple[str, int, int], int],
) -> int:
    """Slots after ``handled_s`` (how far a previous leader recorded firing), the Go floor and
    ``created_at``, and up to ``before_s``; ``counted`` shares the count between schedules with
    one spec text and one range (``@every`` is anchored per schedule, so never shared)."""
    lo = max(handled_s, floor_s if floor_s is not None else handled_s)
    if not created_at.is_zero:
        lo = max(lo, created_at.unix_ns // NANOS_PER_SECOND)
    key = (spec, lo, before_s)
    if key not in counted or isinstance(schedule, EverySchedule):
        counted[key] = count_between(schedule, created_at, lo, before_s, cap=MISSED_COUNT_CAP)
    return counted[key]

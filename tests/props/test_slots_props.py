"""Properties of the catch-up slots (scheduler/slots.py): across any sequence of checks, no
slot comes back twice, none is older than the window, all are strictly increasing, and when
no gap between checks exceeds the window, nothing is missed.

Runs under the suite's ``ci`` hypothesis profile (tests/conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import example, given
from hypothesis import strategies as st

from ajc_gitops.gowire.cron import EverySchedule, SpecSchedule, parse_standard
from ajc_gitops.model import NANOS_PER_SECOND, GoTime
from ajc_gitops.scheduler.slots import due_slots, every_slots, slots_between

SPECS = [
    "* * * * *", "*/5 * * * *", "0 * * * *", "30 2 * * *", "0 0 * * 0", "0 0 30 2 *",
    "TZ=Europe/Berlin 30 2 * * *", "TZ=America/New_York 0,30 1 * * *", "CRON_TZ=Asia/Kolkata */7 * * * *",
    "@hourly", "@every 1s", "@every 7s", "@every 1m30s", "@every 1h",
]  # fmt: skip
BASE = datetime(2026, 3, 28, 23, 0, tzinfo=UTC)  # just before Europe's spring-forward night

schedules = st.sampled_from(SPECS).map(parse_standard)
# Anchors (a record's created_at) with arbitrary nanoseconds, before the first check.
anchors = st.integers(min_value=-86_400 * NANOS_PER_SECOND, max_value=0).map(
    lambda ns: GoTime(int(BASE.timestamp()) * NANOS_PER_SECOND + ns)
)
# Check intervals in microseconds: sub-second jitter up to long outages.
steps = st.lists(
    st.one_of(st.integers(0, 2_000_000), st.integers(0, 7_200_000_000)).map(lambda us: timedelta(microseconds=us)),
    min_size=1,
    max_size=25,
)
windows = st.sampled_from([timedelta(seconds=s) for s in (0, 1, 30, 60, 300, 3600, 43200)])


def run_checks(
    schedule: SpecSchedule | EverySchedule, anchor: GoTime, intervals: list[timedelta], window: timedelta
) -> list[tuple[datetime | None, datetime, list[datetime]]]:
    """Calls ``due_slots`` as a leader's loop would: ``last_checked`` = the previous ``now``
    (``None`` on the first check after winning)."""
    calls = []
    last: datetime | None = None
    now = BASE
    for interval in intervals:
        now += interval
        calls.append((last, now, due_slots(schedule, last_checked=last, now=now, window=window, anchor=anchor)))
        last = now
    return calls


@given(schedules, anchors, steps, windows)
@example(parse_standard("@every 1s"), GoTime(int(BASE.timestamp()) * NANOS_PER_SECOND), [timedelta(0)] * 3,
         timedelta(seconds=1))  # fmt: skip
def test_no_slot_twice_none_outside_the_window_all_increasing(
    schedule: SpecSchedule | EverySchedule, anchor: GoTime, intervals: list[timedelta], window: timedelta
) -> None:
    returned: list[datetime] = []
    for last, now, due in run_checks(schedule, anchor, intervals, window):
        for slot in due:
            assert now - window < slot <= now  # never older than the window, never in the future
            assert last is None or slot > last  # never what an earlier check covered
            assert slot.microsecond == 0 and slot.tzinfo is not None
        returned.extend(due)
    assert returned == sorted(set(returned))  # strictly increasing across all calls: no repeats


@given(schedules, anchors, steps, windows)
def test_nothing_missed_when_gaps_stay_inside_the_window(
    schedule: SpecSchedule | EverySchedule, anchor: GoTime, intervals: list[timedelta], window: timedelta
) -> None:
    calls = run_checks(schedule, anchor, intervals, window)
    if any(interval > window for interval in intervals[1:]):
        return  # an outage longer than the window loses slots by design
    first_now, last_now = calls[0][1], calls[-1][1]
    returned = [slot for _, _, due in calls for slot in due]
    assert returned == slots_between(schedule, first_now - window, last_now, anchor=anchor)


@given(st.integers(1, 10_000), anchors, st.integers(0, 10**6), st.integers(0, 10**6))
def test_every_slots_are_on_the_anchor_lattice(delay: int, anchor: GoTime, start_s: int, length_s: int) -> None:
    start = BASE + timedelta(seconds=start_s, microseconds=start_s % 997)
    end = start + timedelta(seconds=length_s % 50_000)
    slots = every_slots(delay, anchor, start, end)
    anchor_s = anchor.unix_ns // NANOS_PER_SECOND
    for slot in slots:
        k, rem = divmod(int(slot.timestamp()) - anchor_s, delay)
        assert rem == 0 and k >= 1
        assert start < slot <= end
    assert slots == sorted(set(slots))
    # Complete: the slot before the first and after the last fall outside the range.
    if slots:
        assert slots[0] - timedelta(seconds=delay) <= start or int(slots[0].timestamp()) - delay == anchor_s
        assert slots[-1] + timedelta(seconds=delay) > end


@given(schedules, st.integers(0, 10**6), st.integers(0, 3 * 86_400))
def test_cron_slots_are_consecutive_nexts(schedule: SpecSchedule | EverySchedule, start_s: int, length_s: int) -> None:
    if isinstance(schedule, EverySchedule):
        return  # anchored: covered above
    start = BASE + timedelta(seconds=start_s)
    end = start + timedelta(seconds=length_s)
    slots = slots_between(schedule, start, end)
    previous = start
    for slot in slots:
        assert schedule.next(previous) == slot
        previous = slot
    following = schedule.next(previous)
    assert following is None or following > end

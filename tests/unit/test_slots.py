"""Fire slots: cron ranges, anchored @every, the catch-up window (scheduler/slots.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ajc_gitops.gowire.cron import parse_standard
from ajc_gitops.gowire.gotime import parse_rfc3339
from ajc_gitops.model import NANOS_PER_SECOND, ScheduledTask
from ajc_gitops.scheduler.slots import DEFAULT_CATCHUP_WINDOW, catchup_window, due_slots, every_slots, slots_between

T0 = datetime(2026, 8, 1, 12, 0, tzinfo=UTC)
ANCHOR = parse_rfc3339("2026-08-01T11:59:58.75Z")  # truncates to 11:59:58


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def record(deadline_s: int = 0) -> ScheduledTask:
    return ScheduledTask("s", "* * * * *", "Q", "t", deadline_ns=deadline_s * NANOS_PER_SECOND)


def test_cron_slots_in_a_half_open_range() -> None:
    slots = slots_between(parse_standard("*/5 * * * *"), T0, T0 + timedelta(minutes=15))
    assert slots == [T0 + timedelta(minutes=m) for m in (5, 10, 15)]  # start excluded, end included


def test_cron_slots_follow_dst_in_the_schedules_zone() -> None:
    # 2026-03-29 02:30 does not exist in Berlin: robfig/cron skips that day (as Go does),
    # and the offset changes from +01:00 to +02:00 around it.
    schedule = parse_standard("TZ=Europe/Berlin 30 2 * * *")
    slots = slots_between(schedule, utc("2026-03-27T12:00:00"), utc("2026-03-30T12:00:00"))
    assert slots == [utc("2026-03-28T01:30:00"), utc("2026-03-30T00:30:00")]


def test_never_firing_spec_has_no_slots() -> None:
    assert slots_between(parse_standard("0 0 30 2 *"), T0, T0 + timedelta(days=400)) == []


def test_every_is_anchored_to_created_at_truncated() -> None:
    slots = every_slots(10, ANCHOR, T0, T0 + timedelta(seconds=30))
    assert slots == [utc("2026-08-01T12:00:08"), utc("2026-08-01T12:00:18"), utc("2026-08-01T12:00:28")]
    # Same answer through slots_between, and from any member at any time.
    assert slots_between(parse_standard("@every 10s"), T0, T0 + timedelta(seconds=30), anchor=ANCHOR) == slots


def test_every_never_fires_at_or_before_the_anchor() -> None:
    slots = every_slots(60, ANCHOR, utc("2026-08-01T11:00:00"), utc("2026-08-01T12:02:00"))
    assert slots == [utc("2026-08-01T12:00:58"), utc("2026-08-01T12:01:58")]


def test_every_range_bounds_with_fractions() -> None:
    start = utc("2026-08-01T12:00:08.5")
    assert every_slots(10, ANCHOR, start, utc("2026-08-01T12:00:18.9")) == [utc("2026-08-01T12:00:18")]
    assert every_slots(10, ANCHOR, utc("2026-08-01T12:00:08"), utc("2026-08-01T12:00:17.999")) == []


def test_every_needs_an_anchor() -> None:
    with pytest.raises(ValueError, match="anchor"):
        slots_between(parse_standard("@every 1m"), T0, T0 + timedelta(minutes=5))


def test_catchup_window_is_the_deadline_or_the_default() -> None:
    assert catchup_window(record()) == DEFAULT_CATCHUP_WINDOW == timedelta(minutes=5)
    assert catchup_window(record(deadline_s=3600)) == timedelta(hours=1)
    assert catchup_window(record(), default=timedelta(seconds=30)) == timedelta(seconds=30)


def test_due_slots_catch_up_inside_the_window_only() -> None:
    every_minute = parse_standard("* * * * *")
    now = T0 + timedelta(seconds=30)
    # Nobody led for an hour: only the last 5 minutes come back.
    due = due_slots(every_minute, last_checked=T0 - timedelta(hours=1), now=now, window=timedelta(minutes=5))
    assert due == [T0 - timedelta(minutes=m) for m in (4, 3, 2, 1, 0)]
    assert due_slots(every_minute, last_checked=None, now=now, window=timedelta(minutes=5)) == due


def test_due_slots_never_repeat_what_last_checked_covered() -> None:
    every_minute = parse_standard("* * * * *")
    assert due_slots(every_minute, last_checked=T0, now=T0 + timedelta(seconds=59), window=timedelta(minutes=5)) == []
    assert due_slots(every_minute, last_checked=T0, now=T0 + timedelta(minutes=1), window=timedelta(minutes=5)) == [
        T0 + timedelta(minutes=1)
    ]
    assert due_slots(every_minute, last_checked=T0, now=T0, window=timedelta(minutes=5)) == []


def test_zero_window_fires_nothing_and_negative_is_refused() -> None:
    every_minute = parse_standard("* * * * *")
    assert due_slots(every_minute, last_checked=None, now=T0, window=timedelta(0)) == []
    with pytest.raises(ValueError, match="negative"):
        due_slots(every_minute, last_checked=None, now=T0, window=timedelta(seconds=-1))


def test_huge_window_does_not_overflow() -> None:
    due = due_slots(parse_standard("0 0 1 1 *"), last_checked=T0 - timedelta(days=10), now=T0,
                    window=timedelta(days=10**6))  # fmt: skip
    assert due == []

"""robfig/cron v3.0.1 ``Schedule.Next`` for the two schedule kinds ``ParseStandard`` returns
(spec.go, constantdelay.go at bc59245), with ``time.Local`` = UTC. Section numbers in comments
refer to shared/conformance/cron_semantics.md.

Nothing here reads the clock: ``next()`` takes the instant to search from.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Protocol

from ajc_gitops.gowire.cron.fields import DOM, DOW, HOURS, MINUTES, MONTHS, SECONDS, STAR_BIT, valid_bits
from ajc_gitops.gowire.godate import GoTimeRangeError, Wall, add_date, from_unix, go_date, to_unix, wall

__all__ = ["EverySchedule", "Schedule", "SpecSchedule", "next_times"]


class Schedule(Protocol):
    """What ``parse_standard`` returns: a zone plus Go's ``Next``."""

    @property
    def location(self) -> datetime.tzinfo: ...

    def next(self, after: datetime.datetime) -> datetime.datetime | None:
        """The first activation strictly after ``after`` (aware), in UTC; None for Go's
        zero time."""
        ...


@dataclass(frozen=True, slots=True)
class SpecSchedule:
    """A parsed five-field expression: Go's bit sets (bit 63 = the star flag, §3)."""

    second: int
    minute: int
    hour: int
    dom: int
    month: int
    dow: int
    location: datetime.tzinfo

    def next(self, after: datetime.datetime) -> datetime.datetime | None:
        """Go's ``SpecSchedule.Next``; None where Go returns the zero time."""
        start = to_unix(after)
        if not self._can_match():
            return None
        try:
            found = self._next_unix(start)
            return None if found is None else from_unix(found)
        except GoTimeRangeError:
            # Go's time reaches far beyond year 9999; Python's does not.
            return None
        except _GoWouldHang:
            return None

    def _can_match(self) -> bool:
        # A field with no bit in range can never match, so Go would search out its full
        # 5 years and return zero; answer at once instead (`, * * * *` is 2.6M steps).
        if not (
            self.minute & valid_bits(MINUTES)
            and self.hour & valid_bits(HOURS)
            and self.month & valid_bits(MONTHS)
            and self.second & valid_bits(SECONDS)
        ):
            return False
        dom_any = bool(self.dom & valid_bits(DOM))
        dow_any = bool(self.dow & valid_bits(DOW))
        if (self.dom | self.dow) & STAR_BIT:
            return dom_any and dow_any
        return dom_any or dow_any

    def _day_matches(self, w: Wall) -> bool:
        dom_match = bool(1 << w.day & self.dom)
        dow_match = bool(1 << w.weekday & self.dow)
        if (self.dom | self.dow) & STAR_BIT:
            return dom_match and dow_match
        return dom_match or dow_match

    def _next_unix(self, start: int) -> int | None:
        loc = self.location
        t = start + 1  # Go: t.Add(1s - nsec); `start` already has the fraction dropped
        added = False
        year_limit = wall(t, loc).year + 5
        seen: set[tuple[int, int]] = set()
        while wall(t, loc).year <= year_limit:  # each pass starts at Go's WRAP label
            t, added, wrapped = self._search(t, added, seen)
            if not wrapped:
                return t
        return None

    def _search(self, t: int, added: bool, seen: set[tuple[int, int]]) -> tuple[int, bool, bool]:
        """One pass of spec.go Next from WRAP: ``(t, added, wrapped)``.

        Line-by-line transcription; ``t`` is whole Unix seconds read in the schedule's
        zone, and ``wrapped`` stands for Go's ``goto WRAP``.
        """
        loc = self.location
        w = wall(t, loc)
        while not (1 << w.month) & self.month:
            if not added:
                added = True
                t = go_date(w.year, w.month, 1, 0, 0, 0, loc)
            t = _step(seen, 0, add_date(t, loc, 1, 0))
            w = wall(t, loc)
            if w.month == 1:
                return t, added, True

        while not self._day_matches(w):
            if not added:
                added = True
                t = go_date(w.year, w.month, w.day, 0, 0, 0, loc)
            t = add_date(t, loc, 0, 1)
            w = wall(t, loc)
            # §1: a DST change at midnight leaves the day search off 00:00; Go nudges it
            # back by whole hours of real time.
            if w.hour != 0:
                t += (24 - w.hour) * 3600 if w.hour > 12 else -w.hour * 3600
                w = wall(t, loc)
            t = _step(seen, 1, t)
            if w.day == 1:
                return t, added, True

        fixed = isinstance(loc, datetime.timezone)
        while not (1 << w.hour) & self.hour:
            if not added:
                added = True
                t = go_date(w.year, w.month, w.day, w.hour, 0, 0, loc)
                w = wall(t, loc) if fixed else w
            t += 3600 * (_steps(w.hour, self.hour, 24) if fixed else 1)
            w = wall(t, loc)
            if w.hour == 0:
                return t, added, True

        while not (1 << w.minute) & self.minute:
            if not added:
                added = True
                t -= t % 60  # Truncate(Minute) works on absolute time, not the wall clock
                w = wall(t, loc) if fixed else w
            t += 60 * (_steps(w.minute, self.minute, 60) if fixed else 1)
            w = wall(t, loc)
            if w.minute == 0:
                return t, added, True

        while not (1 << w.second) & self.second:
            added = True
            t += _steps(w.second, self.second, 60) if fixed else 1
            w = wall(t, loc)
            if w.second == 0:
                return t, added, True
        return t, added, False


def _steps(at: int, bits: int, wrap: int) -> int:
    """How many of Go's one-unit steps (an hour, a minute, a second) from wall field ``at`` end its
    loop: at the first field value in ``bits``, or at 0 (Go's WRAP). Only for a zone of one
    fixed offset, where each step of real time moves the wall field by exactly one; in a
    zone with transitions the loop steps one unit at a time as Go does."""
    steps = 1
    while (at + steps) % wrap and not (1 << (at + steps)) & bits:
        steps += 1
    return steps


class _GoWouldHang(Exception):
    """Go's Next loop would never return for this input."""


def _step(seen: set[tuple[int, int]], loop: int, t: int) -> int:
    """Record a month or day step, raising _GoWouldHang on a repeat.

    Go's loop can spin forever where a calendar day is missing (Pacific/Apia skipped
    2011-12-30, so AddDate(0, 0, 1) from the 29th gives the 29th back). Each step is a
    function of ``t`` alone, so a repeat is a cycle; we answer None where Go never returns.
    Only month and day steps can go backwards (time.Date in a gap); hour, minute and
    second steps add real time.
    """
    key = (loop, t)
    if key in seen:
        raise _GoWouldHang
    seen.add(key)
    return t


@dataclass(frozen=True, slots=True)
class EverySchedule:
    """``@every <duration>``: Go's ConstantDelaySchedule. The zone is parsed but unused."""

    delay_seconds: int
    location: datetime.tzinfo

    def next(self, after: datetime.datetime) -> datetime.datetime | None:
        """``after`` with its fraction of a second dropped, plus the delay."""
        try:
            return from_unix(to_unix(after) + self.delay_seconds)
        except GoTimeRangeError:
            return None


def next_times(schedule: Schedule, after: datetime.datetime, count: int) -> list[datetime.datetime]:
    """Up to ``count`` successive activations after ``after``; stops early at None."""
    times: list[datetime.datetime] = []
    current = after
    while len(times) < count:
        found = schedule.next(current)
        if found is None:
            break
        times.append(found)
        current = found
    return times

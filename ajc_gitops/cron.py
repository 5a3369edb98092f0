"""robfig/cron v3.0.1 ``ParseStandard`` and ``Schedule.Next``, ported from Go.

asyncjobs evaluates a schedule with robfig/cron (parser.go, spec.go, constantdelay.go at
bc59245), with ``time.Local`` = UTC. This is a transcription of that code, not a wrapper
around croniter: croniter disagrees with Go on 206 of the 522 conformance vectors (TZ=/CRON_TZ=
prefixes, ``?`` in every field, the ``*/1`` star rule, DST gaps and overlaps, the 5-year
limit, error texts). See shared/conformance/cron_semantics.md for every rule; the section
numbers in comments below refer to it.

Nothing here reads the clock: ``next()`` takes the instant to search from.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Protocol

from ajc_gitops.durations import SECOND, DurationError, parse_duration
from ajc_gitops.gotime_date import (
    GoTimeRangeError,
    LocationError,
    Wall,
    add_date,
    from_unix,
    go_date,
    load_location,
    to_unix,
    wall,
)

__all__ = [
    "CronError",
    "EverySchedule",
    "Schedule",
    "SpecSchedule",
    "next_times",
    "parse_standard",
]

STAR_BIT = 1 << 63
_PANIC_TEXT = "panic: runtime error: slice bounds out of range [:-1]"
_INT64_MAX = (1 << 63) - 1
_UINT64_MAX = (1 << 64) - 1

# unicode.IsSpace, used by Go's strings.Fields and strings.TrimSpace (§16). Python's
# str.split() also splits on \x1c-\x1f, which Go does not.
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_GO_SPACE_SET = frozenset(_GO_SPACE)


class CronError(ValueError):
    """An expression robfig/cron rejects; ``str()`` is Go's error text.

    ``panics`` is True where Go does not return an error but panics (§2: a TZ prefix with
    no ASCII space); asyncjobs does not recover, so we reject those too.
    """

    def __init__(self, message: str, *, panics: bool = False) -> None:
        super().__init__(message)
        self.panics = panics


class Schedule(Protocol):
    """What ``parse_standard`` returns: a zone plus Go's ``Next``."""

    @property
    def location(self) -> datetime.tzinfo: ...

    def next(self, after: datetime.datetime) -> datetime.datetime | None:
        """The first activation strictly after ``after`` (aware), in UTC; None for Go's
        zero time."""
        ...


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


_MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DOW_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

_SECONDS = _Bounds(0, 59)
_MINUTES = _Bounds(0, 59)
_HOURS = _Bounds(0, 23)
_DOM = _Bounds(1, 31)
_MONTHS = _Bounds(1, 12, {name: i + 1 for i, name in enumerate(_MONTH_NAMES)})
_DOW = _Bounds(0, 6, {name: i for i, name in enumerate(_DOW_NAMES)})


def _get_bits(low: int, high: int, step: int) -> int:
    if step == 1:
        return ((1 << (high + 1)) - 1) & ~((1 << low) - 1) & _UINT64_MAX
    bits = 0
    for i in range(low, high + 1, step):
        bits |= 1 << i
    return bits


def _all(bounds: _Bounds) -> int:
    return _get_bits(bounds.low, bounds.high, 1) | STAR_BIT


def _valid_bits(bounds: _Bounds) -> int:
    return _get_bits(bounds.low, bounds.high, 1)


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
            self.minute & _valid_bits(_MINUTES)
            and self.hour & _valid_bits(_HOURS)
            and self.month & _valid_bits(_MONTHS)
            and self.second & _valid_bits(_SECONDS)
        ):
            return False
        dom_any = bool(self.dom & _valid_bits(_DOM))
        dow_any = bool(self.dow & _valid_bits(_DOW))
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

        while not (1 << w.hour) & self.hour:
            if not added:
                added = True
                t = go_date(w.year, w.month, w.day, w.hour, 0, 0, loc)
            t += 3600
            w = wall(t, loc)
            if w.hour == 0:
                return t, added, True

        while not (1 << w.minute) & self.minute:
            if not added:
                added = True
                t -= t % 60  # Truncate(Minute) works on absolute time, not the wall clock
            t += 60
            w = wall(t, loc)
            if w.minute == 0:
                return t, added, True

        while not (1 << w.second) & self.second:
            added = True
            t += 1
            w = wall(t, loc)
            if w.second == 0:
                return t, added, True
        return t, added, False


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


def _go_fields(text: str) -> list[str]:
    fields: list[str] = []
    current: list[str] = []
    for ch in text:
        if ch in _GO_SPACE_SET:
            if current:
                fields.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        fields.append("".join(current))
    return fields


def _go_lower(text: str) -> str:
    # Go's strings.ToLower maps rune by rune (simple case mapping): U+0130 becomes "i",
    # where Python's full mapping gives "i" plus a combining dot (§13).
    return text.replace("\u0130", "i").lower()


def _strconv_quote(text: str) -> str:
    """Go's strconv.Quote for a Python str (surrogate-escaped bytes count as invalid UTF-8)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            raw = bytes([code - 0xDC00]) if code >= 0xDC80 else ch.encode("utf-8", "surrogatepass")
            out.extend(f"\\x{b:02x}" for b in raw)
        elif ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append("\\" + "abfnrtv"["\a\b\f\n\r\t\v".index(ch)])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _atoi(expr: str) -> int:
    """Go's strconv.Atoi on 64-bit: optional sign, ASCII digits, int64 range (§12)."""
    digits = expr[1:] if expr[:1] in ("+", "-") else expr
    reason = ""
    if not digits:
        reason = "invalid syntax"
    else:
        value = 0
        for ch in digits:
            if not "0" <= ch <= "9":
                reason = "invalid syntax"
                break
            value = value * 10 + ord(ch) - 48
            if value > _UINT64_MAX:
                # ParseUint stops at the first overflow, before seeing later bad bytes.
                reason = "value out of range"
                break
        if not reason:
            limit = 1 << 63 if expr[0] == "-" else _INT64_MAX
            if value > limit:
                reason = "value out of range"
            else:
                return -value if expr[0] == "-" else value
    raise CronError(f"failed to parse int from {expr}: strconv.Atoi: parsing {_strconv_quote(expr)}: {reason}")


def _must_parse_int(expr: str) -> int:
    num = _atoi(expr)
    if num < 0:
        raise CronError(f"negative number ({num}) not allowed: {expr}")
    return num


def _parse_int_or_name(expr: str, names: dict[str, int] | None) -> int:
    if names is not None:
        named = names.get(_go_lower(expr))
        if named is not None:
            return named
    return _must_parse_int(expr)


def _get_range(expr: str, bounds: _Bounds) -> int:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    extra = 0
    if low_and_high[0] in ("*", "?"):
        # Go never looks past `*-` here (§5), so `*-foo` is just `*`.
        start, end, extra = bounds.low, bounds.high, STAR_BIT
    else:
        start = _parse_int_or_name(low_and_high[0], bounds.names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _parse_int_or_name(low_and_high[1], bounds.names)
        else:
            raise CronError(f"too many hyphens: {expr}")

    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _must_parse_int(range_and_step[1])
        if single:
            end = bounds.high  # "N/step" means "N-max/step"
        if step > 1:
            extra = 0
    else:
        raise CronError(f"too many slashes: {expr}")

    if start < bounds.low:
        raise CronError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise CronError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise CronError(f"step of range should be a positive number: {expr}")
    return _get_bits(start, end, step) | extra


def _get_field(field: str, bounds: _Bounds) -> int:
    bits = 0
    for item in field.split(","):
        if item:  # strings.FieldsFunc drops empty items (§7)
            bits |= _get_range(item, bounds)
    return bits


# Go builds these bit sets by hand; parsing the equivalent fields gives the same bits,
# star flags included.
_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _descriptor(spec: str, loc: datetime.tzinfo) -> SpecSchedule | EverySchedule:
    fields = _DESCRIPTORS.get(spec)
    if fields is not None:
        return _spec_schedule(fields.split(), loc)
    if spec.startswith("@every "):
        try:
            delay = parse_duration(spec[len("@every ") :])
        except DurationError as exc:
            raise CronError(f"failed to parse duration {spec}: {exc}") from None
        # §8: below one second becomes one second; otherwise the fraction is dropped.
        return EverySchedule(delay_seconds=max(delay, SECOND) // SECOND, location=loc)
    raise CronError(f"unrecognized descriptor: {spec}")


def _spec_schedule(fields: list[str], loc: datetime.tzinfo) -> SpecSchedule:
    return SpecSchedule(
        second=_get_field("0", _SECONDS),
        minute=_get_field(fields[0], _MINUTES),
        hour=_get_field(fields[1], _HOURS),
        dom=_get_field(fields[2], _DOM),
        month=_get_field(fields[3], _MONTHS),
        dow=_get_field(fields[4], _DOW),
        location=loc,
    )


def parse_standard(spec: str, local: datetime.tzinfo = datetime.UTC) -> SpecSchedule | EverySchedule:
    """robfig/cron ``ParseStandard(spec)`` with ``time.Local`` = ``local``.

    Raises CronError carrying Go's exact error text.
    """
    if not spec:
        raise CronError("empty spec string")
    loc = local
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        if space < 0:
            # Go slices spec[eq+1:-1] and panics (§2).
            raise CronError(_PANIC_TEXT, panics=True)
        name = spec[spec.find("=") + 1 : space]
        try:
            loc = load_location(name, local)
        except LocationError as exc:
            raise CronError(f"provided bad location {name}: {exc}") from None
        spec = spec[space:].strip(_GO_SPACE)

    if spec.startswith("@"):
        return _descriptor(spec, loc)

    fields = _go_fields(spec)
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    return _spec_schedule(fields, loc)

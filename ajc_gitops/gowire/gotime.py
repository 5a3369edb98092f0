"""Go ``time`` formatting and parsing, as far as the asyncjobs record needs them (Go 1.19.8).

Hand-written because ``datetime`` stops at microseconds and at years 1..9999, while a Go
record carries nanoseconds, offsets up to ``+99:99`` and years -1..10000 after an offset is
applied. The civil-date arithmetic is therefore done on plain integers (proleptic Gregorian
with a year 0, as Go's). Parsing follows Go 1.19's ``time.Parse`` (go_vectors.md point 6)
step by step, including its error texts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from ajc_gitops.model import NANOS_PER_SECOND, GoTime

RFC3339 = "2006-01-02T15:04:05Z07:00"
# time.Time.UnmarshalJSON parses the raw JSON token, quotes included, with this layout.
_JSON_LAYOUT = '"' + RFC3339 + '"'
_SECONDS_PER_DAY = 86_400
_UNIX_EPOCH_DAYS = 719_468  # days from 0000-03-01 to 1970-01-01 in the civil algorithm below


class GoTimeParseError(ValueError):
    """``time.Parse`` failed; ``str()`` is Go 1.19's ``*time.ParseError`` text."""


def days_from_civil(year: int, month: int, day: int) -> int:
    # Howard Hinnant's days_from_civil: exact for every year, negative ones included.
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - _UNIX_EPOCH_DAYS


def civil_from_days(days: int) -> tuple[int, int, int]:
    z = days + _UNIX_EPOCH_DAYS
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _append_int(x: int, width: int) -> str:
    # Go's appendInt: the sign first, then zero padding to `width` digits.
    return ("-" if x < 0 else "") + str(abs(x)).rjust(width, "0")


def format_rfc3339nano(t: GoTime, *, for_json: bool = True) -> str:
    """``t.Format(time.RFC3339Nano)``. With ``for_json`` (the default) this is what
    ``Time.MarshalJSON`` writes inside the quotes, and it raises ``ValueError`` with Go's
    message where MarshalJSON fails (a year outside 0..9999 in the time's own offset)."""
    secs, nsec = divmod(t.unix_ns, NANOS_PER_SECOND)
    days, sod = divmod(secs + t.offset_s, _SECONDS_PER_DAY)
    year, month, day = civil_from_days(days)
    if for_json and not 0 <= year <= 9999:
        raise ValueError("Time.MarshalJSON: year outside of range [0,9999]")
    out = (
        f"{_append_int(year, 4)}-{month:02d}-{day:02d}"
        f"T{sod // 3600:02d}:{sod // 60 % 60:02d}:{sod % 60:02d}"
    )
    if nsec:
        out += "." + f"{nsec:09d}".rstrip("0")
    if t.offset_s == 0:
        return out + "Z"  # Go writes Z for any zero offset, whatever the zone's name
    # Go divides with truncation toward zero and drops the seconds: -59s is "+00:00".
    zone = abs(t.offset_s) // 60 * (1 if t.offset_s > 0 else -1)
    sign = "-" if zone < 0 else "+"
    zone = abs(zone)
    return out + f"{sign}{_append_int(zone // 60, 2)}:{zone % 60:02d}"


def go_quote(value: bytes) -> str:
    """``time``'s private ``quote``: every non-ASCII or control byte becomes ``\\xNN``."""
    out = ['"']
    for b in value:
        if b >= 0x80 or b < 0x20:
            out.append(f"\\x{b:02x}")
        else:
            ch = chr(b)
            out.append("\\" + ch if ch in '"\\' else ch)
    out.append('"')
    return "".join(out)


def _getnum(value: bytes, fixed: bool) -> tuple[int, bytes, bool]:
    # Go's getnum: one or two digits (two when fixed); returns (n, rest, ok).
    if not value[:1].isdigit():
        return 0, value, False
    if not value[1:2].isdigit():
        if fixed:
            return 0, value, False
        return value[0] - 48, value[1:], True
    return (value[0] - 48) * 10 + value[1] - 48, value[2:], True


def _atoi(text: bytes) -> tuple[int, bool]:
    # Go's time.atoi: an optional sign, then only digits (none at all reads as 0).
    sign = -1 if text[:1] == b"-" else 1
    digits = text[1:] if text[:1] in (b"-", b"+") else text
    if digits and not (digits.isdigit() and digits.isascii()):
        return 0, False
    return sign * int(digits or b"0"), True


def _parse(layout: str, value: bytes) -> GoTime:
    """Go 1.19 ``time.parse`` specialised to RFC 3339, optionally wrapped in quotes."""
    quoted = layout.startswith('"')
    avalue = value

    def fail(elem_layout: str, elem_value: bytes) -> GoTimeParseError:
        return GoTimeParseError(
            f"parsing time {go_quote(avalue)} as {go_quote(layout.encode())}: "
            f"cannot parse {go_quote(elem_value)} as {go_quote(elem_layout.encode())}"
        )

    def fail_msg(message: str) -> GoTimeParseError:
        return GoTimeParseError(f"parsing time {go_quote(avalue)}{message}")

    # (prefix, std) pairs exactly as Go's nextStdChunk splits the layout; None ends it.
    chunks: list[tuple[str, str | None]] = [
        ('"' if quoted else "", "2006"), ("-", "01"), ("-", "02"), ("T", "15"),
        (":", "04"), (":", "05"), ("", "Z07:00"), ('"' if quoted else "", None),
    ]  # fmt: skip
    year = month = day = hour = minute = sec = nsec = 0
    utc = False
    zone_offset = 0
    for prefix, std in chunks:
        if prefix:
            if value[:1] != prefix.encode():
                raise fail(prefix, value)
            value = value[1:]
        if std is None:
            if value:
                raise fail_msg(": extra text: " + go_quote(value))
            break
        ok = True
        range_err = ""
        if std == "2006":
            if len(value) < 4 or not value[:1].isdigit():
                ok = False
            else:
                digits, value = value[:4], value[4:]
                ok = digits.isdigit() and digits.isascii()
                year = int(digits) if ok else 0
        elif std == "01":
            month, value, ok = _getnum(value, True)
            if ok and not 1 <= month <= 12:
                range_err = "month"
        elif std == "02":
            day, value, ok = _getnum(value, True)
        elif std == "15":
            hour, value, ok = _getnum(value, False)  # 1.19 takes a one-digit hour
            if hour >= 24:
                range_err = "hour"
        elif std == "04":
            minute, value, ok = _getnum(value, True)
            if minute >= 60:
                range_err = "minute"
        elif std == "05":
            sec, value, ok = _getnum(value, True)
            if sec >= 60:
                range_err = "second"
            elif len(value) >= 2 and value[:1] in (b".", b",") and value[1:2].isdigit():
                # A fraction the layout does not mention: any number of digits, cut to 9.
                # 1.19 does not check getnum's error first, so "04:.5" passes as second 0.
                ok = True
                n = 2
                while n < len(value) and value[n : n + 1].isdigit():
                    n += 1
                frac = value[1 : min(n, 10)]
                nsec = int(frac) * 10 ** (9 - len(frac))
                value = value[n:]
        elif value[:1] == b"Z":  # std == "Z07:00"
            value = value[1:]
            utc = True
        elif len(value) < 6 or value[3:4] != b":":
            ok = False
        else:
            sign, hh, mm, value = value[:1], value[1:3], value[4:6], value[6:]
            # 1.19 reads both parts with atoi, so a sign passes ("+01:-5"), and it has no
            # range check: +99:99 is an offset of 100h39m.
            hr, ok = _atoi(hh)
            mins = 0
            if ok:
                mins, ok = _atoi(mm)
            if ok and sign in (b"+", b"-"):
                zone_offset = (hr * 60 + mins) * 60 * (-1 if sign == b"-" else 1)
            else:
                ok = False
        if range_err:
            raise fail_msg(f": {range_err} out of range")
        if not ok:
            raise fail(std, value)  # 1.19 shows what is left *after* the element was cut
    if not 1 <= day <= _days_in(month, year):
        raise fail_msg(": day out of range")
    local = (days_from_civil(year, month, day) * _SECONDS_PER_DAY
             + hour * 3600 + minute * 60 + sec)  # fmt: skip
    offset = 0 if utc else zone_offset
    return GoTime(unix_ns=(local - offset) * NANOS_PER_SECOND + nsec, offset_s=offset)


def parse_rfc3339(text: str) -> GoTime:
    """``time.Parse(time.RFC3339, text)`` as Go 1.19 does it; ``GoTimeParseError`` on failure."""
    return _parse(RFC3339, text.encode("utf-8", "surrogateescape"))


def parse_json_time(raw_token: bytes) -> GoTime:
    """``Time.UnmarshalJSON`` in Go 1.19: the raw token (quotes and escapes untouched)
    parsed with the layout ``"RFC3339"``. The caller handles ``null`` (a no-op)."""
    plain = _plain_utc(raw_token)
    return plain if plain is not None else _parse(_JSON_LAYOUT, raw_token)


# What Go itself writes for a UTC time (RFC 3339, 0-9 fraction digits, "Z"), quoted.
_PLAIN_UTC = re.compile(rb'"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?Z"')


def _plain_utc(raw_token: bytes) -> GoTime | None:
    """The common case of ``parse_json_time`` in a few microseconds (a scheduler loads a
    million of them); None for anything else, out-of-range fields included, which ``_parse``
    then decides with Go's error text."""
    m = _PLAIN_UTC.fullmatch(raw_token)
    if m is None:
        return None
    year, month, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    if not (1 <= month <= 12 and hour < 24 and minute < 60 and sec < 60 and 1 <= day <= _days_in(month, year)):
        return None
    frac = m.group(7) or b""
    nsec = int(frac) * 10 ** (9 - len(frac)) if frac else 0
    local = days_from_civil(year, month, day) * _SECONDS_PER_DAY + hour * 3600 + minute * 60 + sec
    return GoTime(unix_ns=local * NANOS_PER_SECOND + nsec, offset_s=0)


def from_datetime(dt: datetime) -> GoTime:
    """An aware ``datetime`` as a GoTime (microsecond precision, its own offset kept)."""
    offset = dt.utcoffset()
    if offset is None:
        raise ValueError("naive datetime: give it a timezone")
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    micros = (delta.days * _SECONDS_PER_DAY + delta.seconds) * 1_000_000 + delta.microseconds
    return GoTime(unix_ns=micros * 1000, offset_s=int(offset.total_seconds()))


def to_datetime(t: GoTime) -> datetime:
    """The GoTime as an aware ``datetime`` in UTC, nanoseconds truncated to microseconds."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + timedelta(microseconds=t.unix_ns // 1000)

"""Go's ``time.ParseDuration`` and ``time.Duration.String()``, ported byte for byte.

asyncjobs stores task deadlines and ``@every`` delays as Go durations, so what we accept,
the value we compute and the error text a user sees must be Go's (go1.19, time/format.go
and time/time.go). Durations are ``int`` nanoseconds with int64 range.
"""

from __future__ import annotations

__all__ = ["DurationError", "format_duration", "go_quote", "parse_duration"]

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_LIMIT = 1 << 63  # Go accumulates in uint64 and allows exactly 2**63 for the negative case

NANOSECOND = 1
MICROSECOND = 1000 * NANOSECOND
MILLISECOND = 1000 * MICROSECOND
SECOND = 1000 * MILLISECOND
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE

_UNITS: dict[str, int] = {
    "ns": NANOSECOND,
    "us": MICROSECOND,
    "\u00b5s": MICROSECOND,  # micro sign
    "\u03bcs": MICROSECOND,  # Greek small letter mu
    "ms": MILLISECOND,
    "s": SECOND,
    "m": MINUTE,
    "h": HOUR,
}

_HEX = "0123456789abcdef"
_DIGITS = frozenset("0123456789")


class DurationError(ValueError):
    """A duration Go's ``time.ParseDuration`` rejects; ``str()`` is Go's error text."""


def _utf8_bytes(ch: str) -> bytes:
    # A str that came from undecodable bytes (surrogateescape) must show the original
    # byte, as Go does for invalid UTF-8; other lone surrogates show their WTF-8 bytes.
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:
        return bytes([code - 0xDC00])
    return ch.encode("utf-8", "surrogatepass")


def go_quote(text: str) -> str:
    """Quote like time/format.go ``quote``: non-ASCII and control bytes become ``\\xNN``."""
    out = ['"']
    for ch in text:
        if ch >= "\x80" or ch < " ":
            out.extend("\\x" + _HEX[b >> 4] + _HEX[b & 0xF] for b in _utf8_bytes(ch))
        else:
            if ch in '"\\':
                out.append("\\")
            out.append(ch)
    out.append('"')
    return "".join(out)


def _invalid(orig: str) -> DurationError:
    return DurationError("time: invalid duration " + go_quote(orig))


def _leading_int(s: str) -> tuple[int, str] | None:
    """Consume ``[0-9]*``; ``None`` when the value passes 2**63 (Go's errLeadingInt)."""
    x = 0
    i = 0
    while i < len(s) and s[i] in _DIGITS:
        if x > _LIMIT // 10:
            return None
        x = x * 10 + ord(s[i]) - 48
        if x > _LIMIT:
            return None
        i += 1
    return x, s[i:]


def _leading_fraction(s: str) -> tuple[int, float, str]:
    """Consume ``[0-9]*`` after the dot; past 2**63 further digits are read but ignored."""
    x = 0
    scale = 1.0
    overflow = False
    i = 0
    while i < len(s) and s[i] in _DIGITS:
        if not overflow:
            if x > _INT64_MAX // 10:
                overflow = True
            else:
                y = x * 10 + ord(s[i]) - 48
                if y > _LIMIT:
                    overflow = True
                else:
                    x = y
                    scale *= 10
        i += 1
    return x, scale, s[i:]


def parse_duration(text: str) -> int:
    """Return the nanoseconds Go's ``time.ParseDuration(text)`` gives, or raise DurationError."""
    orig = text
    s = text
    neg = False
    if s and s[0] in "-+":
        neg = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise _invalid(orig)
    total = 0
    while s:
        if not (s[0] == "." or s[0] in _DIGITS):
            raise _invalid(orig)
        before = len(s)
        lead = _leading_int(s)
        if lead is None:
            raise _invalid(orig)
        value, s = lead
        pre = before != len(s)

        frac, scale, post = 0, 1.0, False
        if s and s[0] == ".":
            s = s[1:]
            before = len(s)
            frac, scale, s = _leading_fraction(s)
            post = before != len(s)
        if not pre and not post:
            raise _invalid(orig)

        i = 0
        while i < len(s) and not (s[i] == "." or s[i] in _DIGITS):
            i += 1
        if i == 0:
            raise DurationError("time: missing unit in duration " + go_quote(orig))
        unit_text, s = s[:i], s[i:]
        unit = _UNITS.get(unit_text)
        if unit is None:
            raise DurationError(f"time: unknown unit {go_quote(unit_text)} in duration {go_quote(orig)}")
        if value > _LIMIT // unit:
            raise _invalid(orig)
        value *= unit
        if frac > 0:
            # Go computes the fraction in float64 (both IEEE doubles, so the result is
            # the same); int() truncates like Go's uint64 conversion of a positive float.
            value += int(float(frac) * (float(unit) / scale))
            if value > _LIMIT:
                raise _invalid(orig)
        total += value
        if total > _LIMIT:
            raise _invalid(orig)
    if neg:
        return -total
    if total > _INT64_MAX:
        raise _invalid(orig)
    return total


def _fmt_frac(v: int, prec: int) -> tuple[str, int]:
    """Digits of ``v / 10**prec`` after the point, trailing zeros (and the point) dropped."""
    digits: list[str] = []
    printing = False
    for _ in range(prec):
        digit = v % 10
        printing = printing or digit != 0
        if printing:
            digits.append(chr(48 + digit))
        v //= 10
    if not printing:
        return "", v
    return "." + "".join(reversed(digits)), v


def format_duration(ns: int) -> str:
    """Go's ``Duration.String()``: ``0s``, ``1.5µs`` (U+00B5), ``1h0m0s``, ``-1ns``."""
    if not _INT64_MIN <= ns <= _INT64_MAX:
        raise OverflowError(f"duration {ns} is outside Go's int64 range")
    u = -ns if ns < 0 else ns
    sign = "-" if ns < 0 else ""
    if u == 0:
        return "0s"
    if u < SECOND:
        if u < MICROSECOND:
            prec, unit = 0, "ns"
        elif u < MILLISECOND:
            prec, unit = 3, "\u00b5s"
        else:
            prec, unit = 6, "ms"
        frac, whole = _fmt_frac(u, prec)
        return f"{sign}{whole}{frac}{unit}"
    frac, u = _fmt_frac(u, 9)
    text = f"{u % 60}{frac}s"
    u //= 60
    if u > 0:
        text = f"{u % 60}m{text}"
        u //= 60
        if u > 0:
            text = f"{u}h{text}"
    return sign + text

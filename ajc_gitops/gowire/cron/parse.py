"""robfig/cron v3.0.1 ``ParseStandard`` (parser.go at bc59245), ported from Go with its exact
error texts. asyncjobs evaluates a schedule with ``time.Local`` = UTC. Section numbers in
comments refer to shared/conformance/cron_semantics.md.
"""

from __future__ import annotations

import datetime

from ajc_gitops.gowire.cron.fields import DOM, DOW, HOURS, MINUTES, MONTHS, SECONDS, STAR_BIT, Bounds, get_bits
from ajc_gitops.gowire.cron.schedule import EverySchedule, SpecSchedule
from ajc_gitops.gowire.durations import SECOND, DurationError, parse_duration
from ajc_gitops.gowire.godate import LocationError, load_location

__all__ = ["CronError", "parse_standard"]

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


def _get_range(expr: str, bounds: Bounds) -> int:
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
    return get_bits(start, end, step) | extra


def _get_field(field: str, bounds: Bounds) -> int:
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
        second=_get_field("0", SECONDS),
        minute=_get_field(fields[0], MINUTES),
        hour=_get_field(fields[1], HOURS),
        dom=_get_field(fields[2], DOM),
        month=_get_field(fields[3], MONTHS),
        dow=_get_field(fields[4], DOW),
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

"""Properties of the robfig/cron port: any text gives a schedule or CronError, never another
exception; Next moves strictly forward, lands on second 0 and keeps to the 5-year limit.

Runs under the suite's ``ci`` hypothesis profile (tests/conftest.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from hypothesis import example, given
from hypothesis import strategies as st

from ajc_gitops.gowire.cron import CronError, EverySchedule, SpecSchedule, next_times, parse_standard

ZONES = [
    "UTC", "America/New_York", "Europe/Berlin", "America/Havana", "Australia/Lord_Howe",
    "Pacific/Kiritimati", "America/Santiago", "Africa/Cairo", "Pacific/Apia", "Asia/Kolkata",
    "Europe/Dublin", "Pacific/Chatham",
]  # fmt: skip
CRON_CHARS = "0123456789*?,-/ \t@+LW#"
PIECES = st.sampled_from(
    ["TZ=", "CRON_TZ=", "UTC", "Europe/Berlin", "America", "..", "@every ", "@daily", "jan",
     "FR\u0130", "sun", "\u00a0", "\u3000", "\x1c", "\ufeff", "\u0663", "1h", "\u00b5s", "\x00",
     "99999999999999999999", "9223372036854775808"]
)  # fmt: skip
ANY_SPEC = (
    st.text()
    | st.text(alphabet=CRON_CHARS)
    | st.lists(PIECES | st.text(alphabet=CRON_CHARS, max_size=3), max_size=8).map("".join)
)

MINUTE_BOUNDS, HOUR_BOUNDS, DOM_BOUNDS, MONTH_BOUNDS, DOW_BOUNDS = (0, 59), (0, 23), (1, 31), (1, 12), (0, 6)
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]


@st.composite
def range_item(draw: st.DrawFn, bounds: tuple[int, int], names: list[str] | None) -> str:
    low, high = bounds

    def value(n: int) -> str:
        if names and draw(st.booleans()):
            name = names[n - low]
            return draw(st.sampled_from([name, name.upper(), name.title()]))
        return str(n)

    kind = draw(st.sampled_from(["star", "one", "range"]))
    if kind == "star":
        text = draw(st.sampled_from(["*", "?"]))
    elif kind == "one":
        text = value(draw(st.integers(low, high)))
    else:
        a = draw(st.integers(low, high))
        b = draw(st.integers(a, high))
        text = f"{value(a)}-{value(b)}"
    if draw(st.booleans()):
        text += f"/{draw(st.integers(1, high + 1))}"
    return text


def field(bounds: tuple[int, int], names: list[str] | None = None) -> st.SearchStrategy[str]:
    return st.lists(range_item(bounds, names), min_size=1, max_size=3).map(",".join)


VALID_FIELDS = st.tuples(
    field(MINUTE_BOUNDS), field(HOUR_BOUNDS), field(DOM_BOUNDS),
    field(MONTH_BOUNDS, MONTHS), field(DOW_BOUNDS, DAYS),
).map(" ".join)  # fmt: skip
VALID_SPEC = st.one_of(
    VALID_FIELDS,
    st.sampled_from(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"]),
    st.integers(-(10**12), 10**12).map(lambda ms: f"@every {ms}ms"),
)
PREFIX = st.sampled_from(["", *(f"{p}{z} " for z in ZONES for p in ("TZ=", "CRON_TZ="))])
STARTS = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 12, 31), timezones=st.just(UTC))
OFFSETS = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))


@given(ANY_SPEC)
@example("TZ=UTC")
@example("CRON_TZ=")
@example("0 0 * * FR\u0130")
@example("TZ=a\x00b 0 0 * * *")
@example("TZ=" + "x" * 300 + " * * * * *")
@example(", * * * *")
def test_any_text_gives_schedule_or_cron_error(spec: str) -> None:
    try:
        schedule = parse_standard(spec)
    except CronError as exc:
        assert str(exc)
        assert exc.panics == str(exc).startswith("panic: ")
        return
    assert isinstance(schedule, SpecSchedule | EverySchedule)
    got = schedule.next(datetime(2026, 11, 27, 7, 45, 22, tzinfo=UTC))
    assert got is None or got.tzinfo is UTC


@given(PREFIX, VALID_FIELDS)
def test_grammar_expressions_parse(prefix: str, spec: str) -> None:
    schedule = parse_standard(prefix + spec)
    assert isinstance(schedule, SpecSchedule)
    assert schedule.second == 1


@given(PREFIX, VALID_SPEC, STARTS, OFFSETS)
def test_next_moves_forward_on_whole_minutes_within_five_years(
    prefix: str, spec: str, start: datetime, offset: timezone
) -> None:
    schedule = parse_standard(prefix + spec)
    after = start.astimezone(offset)
    times = next_times(schedule, after, 4)
    previous = after
    for got in times:
        assert got.tzinfo is UTC
        assert got > previous
        previous = got
    if isinstance(schedule, EverySchedule):
        whole = after.replace(microsecond=0)
        assert times[0] == whole + timedelta(seconds=schedule.delay_seconds)
        return
    zone = schedule.location
    if times:
        first_local_year = (after.replace(microsecond=0) + timedelta(seconds=1)).astimezone(zone).year
        assert times[0].astimezone(zone).year <= first_local_year + 5
    for got in times:
        assert got.astimezone(zone).second == 0


class _SteppedOffset(tzinfo):
    """A fixed offset that is no ``datetime.timezone``: Next steps it one unit at a time, as
    Go does, where a ``timezone`` lets it jump to the unit its loop would stop at."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return self.offset

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "stepped"


@given(
    VALID_FIELDS,
    STARTS,
    st.integers(-14 * 3600, 14 * 3600),  # seconds: some offsets are not whole minutes
    st.integers(1, 2**60 - 1),  # second bits: ParseStandard fixes second 0, Go's loop does not
)
@example("0 0 * * *", datetime(2026, 1, 1, 0, 0, 59, tzinfo=UTC), 30, 1)
def test_next_jumps_in_a_fixed_zone_land_where_unit_steps_land(
    spec: str, start: datetime, offset_s: int, second_bits: int
) -> None:
    parsed = parse_standard(spec)
    assert isinstance(parsed, SpecSchedule)
    offset = timedelta(seconds=offset_s)
    for seconds in (parsed.second, second_bits):
        fast = dataclasses.replace(parsed, second=seconds, location=timezone(offset))
        stepped = dataclasses.replace(parsed, second=seconds, location=_SteppedOffset(offset))
        assert next_times(fast, start, 3) == next_times(stepped, start, 3)


def test_zones_in_props_exist() -> None:
    for name in ZONES:
        ZoneInfo(name)

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ajc_gitops.gowire.cron import CronError, EverySchedule, SpecSchedule, next_times, parse_standard
from ajc_gitops.gowire.godate import from_unix, go_date

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "cron_vectors.json").read_text("utf-8"))["cases"]

_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})\Z")


def parse_rfc3339(text: str) -> datetime:
    """RFC 3339 with up to 9 fractional digits (fromisoformat in 3.11 stops at 6).

    Digits past microseconds are cut: Next only looks at the whole second.
    """
    m = _RFC3339.match(text)
    assert m, text
    year, month, day, hour, minute, sec = (int(g) for g in m.groups()[:6])
    micros = int((m.group(7) or "0").ljust(9, "0")[:6])
    zone = m.group(8)
    if zone == "Z":
        tz: timezone = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    return datetime(year, month, day, hour, minute, sec, micros, tzinfo=tz)


def test_parse_rfc3339_keeps_offset_and_cuts_nanoseconds():
    got = parse_rfc3339("2026-11-01T01:50:00.123456789-04:00")
    assert got == datetime(2026, 11, 1, 5, 50, 0, 123456, tzinfo=UTC)


@pytest.mark.parametrize("case", VECTORS, ids=[repr(c["expr"]) for c in VECTORS])
def test_go_vector(case):
    start = parse_rfc3339(case["start"])
    if not case["valid"]:
        with pytest.raises(CronError) as info:
            parse_standard(case["expr"])
        assert str(info.value) == case["error"]
        assert info.value.panics == case["error"].startswith("panic: ")
        return
    schedule = parse_standard(case["expr"])
    expected = case["next"]
    want = [parse_rfc3339(t) for t in expected if t is not None]
    got = next_times(schedule, start, case["n"])
    assert [t.isoformat() for t in got] == [t.isoformat() for t in want]
    assert all(t.tzinfo is UTC for t in got)
    if expected and expected[-1] is None:
        assert len(got) < case["n"]
        after = got[-1] if got else start
        assert schedule.next(after) is None


def test_local_zone_is_used_without_prefix():
    berlin = ZoneInfo("Europe/Berlin")
    schedule = parse_standard("0 9 * * *", local=berlin)
    assert schedule.location is berlin
    got = schedule.next(datetime(2026, 7, 1, 12, tzinfo=UTC))
    assert got == datetime(2026, 7, 2, 7, tzinfo=UTC)


def test_tz_local_prefix_resolves_to_local():
    tokyo = ZoneInfo("Asia/Tokyo")
    assert parse_standard("TZ=Local 0 0 * * *", local=tokyo).location is tokyo


def test_every_keeps_zone_but_ignores_it():
    schedule = parse_standard("CRON_TZ=Asia/Tokyo @every 1h30m0.9s")
    assert isinstance(schedule, EverySchedule)
    assert schedule.delay_seconds == 5400
    assert str(schedule.location) == "Asia/Tokyo"


@pytest.mark.parametrize(
    ("expr", "error"),
    [
        ("TZ=../etc/passwd 0 0 * * *", "provided bad location ../etc/passwd: time: invalid location name"),
        ("TZ=/etc/localtime 0 0 * * *", "provided bad location /etc/localtime: time: invalid location name"),
        ("TZ=\\x 0 0 * * *", "provided bad location \\x: time: invalid location name"),
        ("TZ=Europe 0 0 * * *", "provided bad location Europe: is a directory"),
        ("TZ=UTC/x 0 0 * * *", "provided bad location UTC/x: not a directory"),
        ("TZ=a\x00b 0 0 * * *", "provided bad location a\x00b: invalid argument"),
        ("CRON_TZ=", "panic: runtime error: slice bounds out of range [:-1]"),
        ("0 0 * * FRİ", None),
        ("*/-1 * * * *", "negative number (-1) not allowed: -1"),
        ("*/-0 * * * *", "step of range should be a positive number: */-0"),
        ("60/5 * * * *", "beginning of range (60) beyond end of range (59): 60/5"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("1/2/3 * * * *", "too many slashes: 1/2/3"),
        ("*/jan * * * *", 'failed to parse int from jan: strconv.Atoi: parsing "jan": invalid syntax'),
        (
            "99999999999999999999x * * * *",
            "failed to parse int from 99999999999999999999x: strconv.Atoi: "
            'parsing "99999999999999999999x": value out of range',
        ),
        (
            "9223372036854775808 * * * *",
            "failed to parse int from 9223372036854775808: strconv.Atoi: "
            'parsing "9223372036854775808": value out of range',
        ),
        ("9223372036854775807 * * * *", "end of range (9223372036854775807) above maximum (59): 9223372036854775807"),
        ("\ufeff0 * * * *", 'failed to parse int from \ufeff0: strconv.Atoi: parsing "\\ufeff0": invalid syntax'),
        ("0\x1c0 * * *", "expected exactly 5 fields, found 4: [0\x1c0 * * *]"),
        ("@every\t1h", "unrecognized descriptor: @every\t1h"),
        ("@daily ", "unrecognized descriptor: @daily "),
        (" @daily", "expected exactly 5 fields, found 1: [@daily]"),
    ],
    ids=repr,
)
def test_parse_edge_cases(expr, error):
    if error is None:
        parse_standard(expr)
        return
    with pytest.raises(CronError) as info:
        parse_standard(expr)
    assert str(info.value) == error


def test_star_flag_rules():
    def star(expr: str) -> bool:
        s = parse_standard(f"0 0 {expr} * *")
        assert isinstance(s, SpecSchedule)
        return bool(s.dom >> 63)

    assert [star(e) for e in ("*", "?", "*/1", "?/1", "*,5", "*-5")] == [True] * 6
    assert [star(e) for e in ("*/2", "1/1", "1-31")] == [False] * 3


def test_naive_datetime_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_standard("* * * * *").next(datetime(2026, 1, 1))


@pytest.mark.parametrize("expr", ["@yearly", "* * * * *", "CRON_TZ=Pacific/Kiritimati 0 0 * * *", "@every 2562047h"])
def test_end_of_python_time_gives_none(expr):
    schedule = parse_standard(expr)
    end = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert schedule.next(end) is None
    assert next_times(schedule, datetime(9999, 12, 31, 23, 57, tzinfo=UTC), 10) == next_times(
        schedule, datetime(9999, 12, 31, 23, 57, tzinfo=UTC), 10
    )


def test_fixed_offset_start_is_converted_first():
    schedule = parse_standard("0 12 * * *")
    start = datetime(2026, 6, 15, 12, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    assert schedule.next(start) == datetime(2026, 6, 15, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "wall_time", "expected_utc"),
    [
        # cron_semantics.md §1: time.Date in a gap or overlap depends on the offset's sign.
        ("America/New_York", (2026, 3, 8, 2, 30), datetime(2026, 3, 8, 6, 30, tzinfo=UTC)),  # 01:30 EST
        ("America/New_York", (2026, 11, 1, 1, 30), datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),  # first, EDT
        ("Europe/Berlin", (2026, 3, 29, 2, 30), datetime(2026, 3, 29, 1, 30, tzinfo=UTC)),  # 03:30 CEST
        ("Europe/Berlin", (2026, 10, 25, 2, 30), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)),  # second, CET
        ("America/Havana", (2026, 3, 8, 0, 0), datetime(2026, 3, 8, 4, 0, tzinfo=UTC)),  # 23:00 the day before
        ("UTC", (2026, 13, 32, 25, 61), datetime(2027, 2, 2, 2, 1, tzinfo=UTC)),  # fields carry over
    ],
)
def test_go_date_resolves_gaps_and_overlaps_like_go(zone, wall_time, expected_utc):
    year, month, day, hour, minute = wall_time
    assert from_unix(go_date(year, month, day, hour, minute, 0, ZoneInfo(zone))) == expected_utc


@pytest.mark.parametrize(
    ("expr", "start"),
    [
        # Go never returns here: AddDate(0, 0, 1) from 2011-12-29 in Apia gives the 29th back.
        ("CRON_TZ=Pacific/Apia 30 18 5 8-12 *", datetime(2011, 12, 27, tzinfo=UTC)),
        ("CRON_TZ=Pacific/Kanton 0 0 1-7 * 1", datetime(1994, 12, 30, 7, 55, 4, tzinfo=UTC)),
    ],
)
def test_where_go_would_hang_next_is_none(expr, start):
    assert parse_standard(expr).next(start) is None

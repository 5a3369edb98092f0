"""Go time formatting and parsing (category ``rfc3339nano`` of go_vectors.json, plus the
parse rules of go_vectors.md point 6)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from ajc_gitops.gowire.gotime import (
    GoTimeParseError,
    format_rfc3339nano,
    from_datetime,
    parse_json_time,
    parse_rfc3339,
    to_datetime,
)
from ajc_gitops.model import NANOS_PER_SECOND, ZERO_TIME, GoTime

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "go_vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["rfc3339nano"], ids=lambda v: v["id"])
def test_rfc3339nano_vector(vector: dict[str, Any]) -> None:
    t = GoTime(unix_ns=vector["unix_ns"], offset_s=vector["zone_offset_s"])
    assert format_rfc3339nano(t) == vector["formatted"]


def test_zero_time_formats_as_go_zero() -> None:
    assert format_rfc3339nano(ZERO_TIME) == "0001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("t", "text"),
    [
        (GoTime(unix_ns=253_402_300_800 * NANOS_PER_SECOND), "10000-01-01T00:00:00Z"),
        (GoTime(unix_ns=-62_198_755_200 * NANOS_PER_SECOND), "-0001-01-01T00:00:00Z"),
    ],
)
def test_marshal_refuses_years_outside_0_9999(t: GoTime, text: str) -> None:
    with pytest.raises(ValueError, match=r"year outside of range \[0,9999\]"):
        format_rfc3339nano(t)
    assert format_rfc3339nano(t, for_json=False) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z"),
        ("2024-01-02T3:04:05Z", "2024-01-02T03:04:05Z"),  # one-digit hour
        ("2024-01-02T03:04:05,5Z", "2024-01-02T03:04:05.5Z"),  # comma fraction
        ("2024-01-02T03:04:05.1234567899Z", "2024-01-02T03:04:05.123456789Z"),  # cut
        ("2024-01-02T03:04:05+99:99", "2024-01-02T03:04:05+100:39"),
        ("2024-01-02T03:04:05-00:00", "2024-01-02T03:04:05Z"),
        ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"),
    ],
)
def test_parse_accepts_what_go_1_19_accepts(text: str, expected: str) -> None:
    assert format_rfc3339nano(parse_rfc3339(text)) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-01-02t03:04:05Z", 'cannot parse "t03:04:05Z" as "T"'),
        ("2024-01-02T03:04:05z", 'cannot parse "z" as "Z07:00"'),
        ("2024-01-02T03:04:60Z", ": second out of range"),
        ("2024-01-02 03:04:05Z", 'cannot parse " 03:04:05Z" as "T"'),
        ("2024-01-02T03:04Z", 'cannot parse "Z" as ":"'),
        ("2024-01-02T03:04:05+0530", 'cannot parse "+0530" as "Z07:00"'),
        ("10000-01-01T00:00:00Z", 'cannot parse "0-01-01T00:00:00Z" as "-"'),
        ("2023-02-29T00:00:00Z", ": day out of range"),
        ("2024-13-01T00:00:00Z", ": month out of range"),
        ("2024-01-01T24:00:00Z", ": hour out of range"),
        ("2024-01-01T00:00:00Zx", ': extra text: "x"'),
        ("2024-01-01T00:00:00\u00e9", 'parsing time "2024-01-01T00:00:00\\xc3\\xa9"'),
    ],
)
def test_parse_rejects_what_go_1_19_rejects(text: str, message: str) -> None:
    with pytest.raises(GoTimeParseError) as info:
        parse_rfc3339(text)
    assert message in str(info.value)
    assert str(info.value).startswith("parsing time ")


def test_json_time_keeps_escapes_raw() -> None:
    with pytest.raises(GoTimeParseError):
        parse_json_time(b'"2024-01-02T03:04:05\\u005a"')
    assert parse_json_time(b'"2024-01-02T03:04:05Z"') == parse_rfc3339("2024-01-02T03:04:05Z")


def test_datetime_conveniences() -> None:
    dt = datetime(2026, 7, 22, 10, 39, 24, 123456, tzinfo=timezone(timedelta(hours=2)))
    t = from_datetime(dt)
    assert format_rfc3339nano(t) == "2026-07-22T10:39:24.123456+02:00"
    assert to_datetime(t) == dt.astimezone(UTC)
    with pytest.raises(ValueError):
        from_datetime(datetime(2026, 1, 1))

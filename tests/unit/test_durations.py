from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from ajc_gitops.gowire.durations import DurationError, format_duration, parse_duration

_GO = json.loads((Path(__file__).resolve().parents[1] / "data" / "go_vectors.json").read_text("utf-8"))
DURATIONS = _GO["durations"]
DURATION_STRINGS = _GO["duration_strings"]


def _input(case) -> str:
    if case["input"] is not None:
        return case["input"]
    # Non-UTF-8 input: surrogateescape keeps each raw byte for Go-style \xNN quoting.
    return base64.b64decode(case["input_b64"]).decode("utf-8", "surrogateescape")


@pytest.mark.parametrize("case", DURATIONS, ids=[c["id"] for c in DURATIONS])
def test_parse_duration_matches_go(case):
    text = _input(case)
    if not case["ok"]:
        with pytest.raises(DurationError) as info:
            parse_duration(text)
        if not case.get("version_sensitive"):
            assert str(info.value) == case["error"]
        return
    ns = parse_duration(text)
    if not case.get("version_sensitive"):
        assert ns == case["ns"]
        assert format_duration(ns) == case["string"]


@pytest.mark.parametrize("case", DURATION_STRINGS, ids=[c["id"] for c in DURATION_STRINGS])
def test_format_duration_matches_go(case):
    assert format_duration(case["ns"]) == case["string"]


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1500, "1.5\u00b5s"),
        (-(1 << 63), "-2562047h47m16.854775808s"),
        (-1, "-1ns"),
        (3600 * 10**9, "1h0m0s"),
        (61 * 10**9 + 1, "1m1.000000001s"),
    ],
)
def test_format_duration_edges(ns, text):
    assert format_duration(ns) == text


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("-9223372036854775808ns", -(1 << 63)),
        ("1\u03bcs", 1000),
        (".5m", 30 * 10**9),
        ("5.m", 300 * 10**9),
        ("1h.5m", 3630 * 10**9),
        ("+0", 0),
    ],
)
def test_parse_duration_accepts(text, ns):
    assert parse_duration(text) == ns


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("1", 'time: missing unit in duration "1"'),
        ("1d", 'time: unknown unit "d" in duration "1d"'),
        (".", 'time: invalid duration "."'),
        ("9223372036854775808ns", 'time: invalid duration "9223372036854775808ns"'),
        ('1"', 'time: unknown unit "\\"" in duration "1\\""'),
        ("1\x7f", 'time: unknown unit "\x7f" in duration "1\x7f"'),
    ],
)
def test_parse_duration_errors(text, error):
    with pytest.raises(DurationError) as info:
        parse_duration(text)
    assert str(info.value) == error


def test_format_duration_rejects_beyond_int64():
    with pytest.raises(OverflowError):
        format_duration(1 << 63)

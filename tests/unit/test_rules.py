from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ajc_gitops import rules
from ajc_gitops.gowire import cron

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "cron_vectors.json").read_text())["cases"]
VALID = [case for case in VECTORS if case["valid"]]


@pytest.mark.parametrize("case", VALID, ids=[repr(c["expr"]) for c in VALID])
def test_surely_fires_never_contradicts_next(case):
    schedule = cron.parse_standard(case["expr"])
    if rules.surely_fires(schedule):
        assert case["next"] and case["next"][0] is not None


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("0 0 30 2 *", False), ("0 0 31 4,6,9,11 *", False), ("0 0 , * *", False), ("0 0 13 * 5", True),
     ("@every 1h", True), ("0 0 * * *", True), ("0 0 */1 * 1", True)],
)
def test_surely_fires_examples(spec, expected):
    assert rules.surely_fires(cron.parse_standard(spec)) is expected


@pytest.mark.parametrize(
    ("text", "stored"),
    [("monthly", "@monthly"), ("every 10m", "@every 10m"), ("dailyx", "@dailyx"), ("Monthly", "Monthly"),
     ("0 0 1 * *", "0 0 1 * *"), ("@daily", "@daily")],
)
def test_cli_shortcut_normalisation_matches_ajc(text, stored):
    assert rules.normalize_schedule(text) == stored


def test_deadline_rounds_like_go_before_the_30s_check():
    # Go stores time.Until(now + d).Round(time.Second): an exact half rounds down (checked
    # against the real ajc in tests/gopeer/test_we_write.py).
    assert rules.parse_deadline("29.6s") == (30_000_000_000, None)
    assert rules.parse_deadline("90.5s") == (90_000_000_000, None)
    assert rules.parse_deadline("90.51s") == (91_000_000_000, None)
    assert "too short" in (rules.parse_deadline("29.5s")[1] or "")
    assert "too short" in (rules.parse_deadline("29.4s")[1] or "")
    assert "too short" in (rules.parse_deadline("-1h")[1] or "")


def test_never_fires_is_a_warning_only_where_next_gives_up():
    now = datetime(2026, 11, 27, tzinfo=UTC)
    assert cron.parse_standard("0 0 30 2 *").next(now) is None

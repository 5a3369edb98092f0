"""Why ajc-gitops carries a port of robfig/cron instead of using croniter: croniter (a test
dependency only, kept as this oracle) disagrees with Go's own cron vectors, which the port
matches one by one (test_cron.py). If a croniter release ever matched Go everywhere, this test
says so, and README "Why a port of robfig/cron" must be revisited."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from croniter import croniter

from tests.unit.test_cron import parse_rfc3339

VECTORS: list[dict[str, Any]] = json.loads((Path(__file__).parents[1] / "data" / "cron_vectors.json").read_text())[
    "cases"
]


def _utc(t: datetime.datetime) -> str:
    return t.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _croniter_says(case: dict[str, Any]) -> tuple[bool, list[str] | None]:
    try:
        it = croniter(case["expr"], parse_rfc3339(case["start"]))
        return True, [_utc(it.get_next(datetime.datetime)) for _ in range(case["n"])]
    except Exception:  # croniter's errors have no common base; any of them is "rejected"
        return False, None


def _agrees(case: dict[str, Any], verdict: tuple[bool, list[str] | None]) -> bool:
    valid, times = verdict
    if valid != case["valid"]:
        return False
    if not valid or case["next"] is None or times is None:
        return True
    return times[: len(case["next"])] == case["next"][: len(times)]


def test_croniter_disagrees_with_go() -> None:
    # The port agrees with every one of these vectors (test_cron.py::test_go_vector).
    croniter_wrong = [c["expr"] for c in VECTORS if not _agrees(c, _croniter_says(c))]
    # 79 of these 174 vectors with croniter 6-7 (206 of the 522 of the full conformance set,
    # shared/conformance/cron_semantics.md): TZ prefixes, @every, `?`, `*/1`, day 7, ...
    assert len(croniter_wrong) >= 60, croniter_wrong
    for documented in ("0 0 * * 7", "@every 1h", "CRON_TZ=America/New_York 0 0 * * *", "0 0 L * *"):
        if any(c["expr"] == documented for c in VECTORS):
            assert documented in croniter_wrong

"""Every cron vector driven through `ajc-gitops next` (in-process), as the issue asks: the
command must print exactly Go's fire times, or fail with Go's error text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ajc_gitops.cli.app import main
from ajc_gitops.rules import normalize_schedule

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "data" / "cron_vectors.json").read_text("utf-8"))["cases"]


def run_next(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["next", *args])
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


@pytest.mark.parametrize("case", VECTORS, ids=[repr(c["expr"]) for c in VECTORS])
def test_vector_through_next_command(capsys, case):
    # None of the vectors starts with an ajc CLI shortcut word, so the text reaches robfig as is.
    assert normalize_schedule(case["expr"]) == case["expr"]
    # "--" so that expressions such as "-1 * * * *" are not read as options.
    code, out, err = run_next(capsys, "--from", case["start"], "-n", str(case["n"]), "-o", "json", "--", case["expr"])
    if not case["valid"]:
        assert code == 1 and out == ""
        if case["error"].startswith("panic: "):
            assert "would crash every Go scheduler" in err
        else:
            assert err == f"error: invalid cron schedule: {case['error']}\n"
        return
    assert code == 0, err
    expected = [t for t in case["next"] if t is not None]
    assert json.loads(out) == {"schedule": case["expr"], "next": expected}


def test_next_applies_the_ajc_shortcut(capsys):
    code, out, _ = run_next(capsys, "monthly", "--from", "2026-11-27T00:00:00Z", "-n", "1", "--format", "json")
    assert code == 0
    assert json.loads(out) == {"schedule": "@monthly", "next": ["2026-12-01T00:00:00Z"]}


def test_count_must_be_positive(capsys):
    code, _, err = run_next(capsys, "@daily", "-n", "0")
    assert code == 2 and "--count must be between 1 and 10000" in err

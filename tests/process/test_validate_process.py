"""`ajc-gitops validate` and `next` as real processes: exit codes, formats, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "schedules"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "ajc_gitops", *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env
    )
    assert "Traceback" not in done.stderr + done.stdout
    return done


def test_examples_validate_with_exit_0():
    done = run("validate", str(EXAMPLES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("ok: 3 files, 8 valid schedules")


def test_invalid_manifest_exits_1_with_file_line_col(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("schedules:\n  - name: a\n    schedule: '0 0 * * 7'\n    task_type: t\n")
    done = run("validate", str(bad))
    assert done.returncode == 1
    assert f"{bad}:3:15: error: invalid cron schedule: end of range (7) above maximum (6): 7" in done.stdout


def test_github_format(tmp_path):
    bad = tmp_path / "bad,1.yaml"
    bad.write_text("schedules:\n  - name: a\n    schedule: '@daily'\n    task_type: t\n    tries: 3\n")
    done = run("validate", "--format", "github", str(bad))
    assert done.returncode == 1
    escaped = str(bad).replace(",", "%2C")
    assert (
        f"::error file={escaped},line=5,col=5::schedules.0.tries: unknown key 'tries'; did you mean 'max_tries'?"
    ) in done.stdout.splitlines()


def test_json_format_lists_every_problem(tmp_path):
    (tmp_path / "a.yaml").write_text(
        "schedules:\n"
        "  - {name: a, schedule: 'x', task_type: t}\n"
        "  - {name: b, schedule: '@daily', task_type: t, deadline: 5s}\n"
    )
    done = run("validate", "-o", "json", str(tmp_path))
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["format_version"] == 1 and report["valid"] is False and report["errors"] == 2
    assert [(p["line"], p["severity"]) for p in report["problems"]] == [(2, "error"), (3, "error")]


def test_missing_path_is_a_usage_error():
    done = run("validate", "/nonexistent/dir")
    assert done.returncode == 2
    assert "/nonexistent/dir: error: no such file or directory" in done.stdout


def test_unknown_option_is_a_usage_error():
    done = run("validate", "--formt", "json")
    assert done.returncode == 2
    assert "No such option" in done.stderr


@pytest.mark.parametrize("content", [b"\x00\x01\x02junk", b"\xff" * 100, b"a: [", b""])
def test_junk_never_gives_a_traceback(tmp_path, content):
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(content)
    done = run("validate", str(junk))
    assert done.returncode == 1
    assert sum(": error: " in line for line in done.stdout.splitlines()) == 1


def test_next_json_in_utc():
    done = run("next", "0 0 1 * *", "--from", "2026-11-27T07:45:22.123456789Z", "-n", "2", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "schedule": "0 0 1 * *",
        "next": ["2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"],
    }


def test_next_text_shows_the_schedule_zone():
    done = run("next", "CRON_TZ=Europe/Berlin 0 9 * * mon-fri", "--from", "2026-11-27T00:00:00Z", "-n", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "2026-11-27T08:00:00Z  2026-11-27T09:00:00+01:00 Europe/Berlin\n"


def test_next_invalid_exits_1_with_gos_error():
    done = run("next", "0 0 * * 7")
    assert done.returncode == 1
    assert done.stderr == "error: invalid cron schedule: end of range (7) above maximum (6): 7\n"


def test_next_bad_from_is_usage_error():
    done = run("next", "@daily", "--from", "yesterday")
    assert done.returncode == 2
    assert "not an RFC3339 time" in done.stderr


def test_validate_never_imports_nats_or_jsonschema():
    # The pre-commit cold-start budget depends on it (docs/benchmarks.md).
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "ajc_gitops", "validate", str(EXAMPLES)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    heavy = {name for name in imported if name.split(".")[0] in {"nats", "jsonschema", "asyncio", "pydantic"}}
    assert heavy == set()

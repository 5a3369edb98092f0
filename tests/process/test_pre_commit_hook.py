"""The real pre-commit runs our hook with try-repo against a throwaway git repository."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GOOD = "schedules:\n  - name: nightly\n    schedule: '0 3 * * *'\n    task_type: ops:cleanup\n"
BAD = "schedules:\n  - name: broken\n    schedule: '0 0 * * 7'\n    task_type: ops:cleanup\n"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, timeout=60)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "schedules-repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "config", "user.email", "ci@example.invalid")
    git(repo, "config", "user.name", "ci")
    (repo / "good.yaml").write_text(GOOD)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "good")
    return repo


@pytest.mark.timeout(600)
def test_try_repo_passes_good_and_fails_bad(repo: Path, tmp_path: Path):
    exe = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    assert exe, "pre-commit missing: install the project with its [test] extra"
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "NO_COLOR": "1"}

    def try_repo() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [exe, "try-repo", str(ROOT), "ajc-gitops-validate", "--all-files", "--color", "never"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    passed = try_repo()
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "Passed" in passed.stdout

    (repo / "bad.yaml").write_text(BAD)
    git(repo, "add", "bad.yaml")
    failed = try_repo()
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Failed" in failed.stdout
    assert "bad.yaml:3:15: error: invalid cron schedule: end of range (7) above maximum (6): 7" in failed.stdout
    assert "Traceback" not in failed.stdout

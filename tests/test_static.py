"""ruff and mypy --strict are part of the suite, so the one test command checks them too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    exe = Path(sys.executable).parent / name
    assert exe.exists(), f"{name} missing: install the project with its [test] extra"
    return str(exe)


def test_ruff_is_clean():
    done = subprocess.run(
        [_tool("ruff"), "check", "ajc_gitops", "tests", "bench"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(600)
def test_mypy_strict_is_clean():
    done = subprocess.run(
        [_tool("mypy"), "--strict", "ajc_gitops"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr

"""The Go-peer fixture itself: the pinned ajc talks to our server, and a machine without Go
skips with one reason, or fails when ``AJC_GITOPS_REQUIRE_GO_PEER=1``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.gopeer import gobuild
from tests.gopeer.peer import Ajc

ROOT = Path(__file__).parents[2]
SMOKE = "test_pinned_ajc_reaches_the_server"


def test_pinned_ajc_reaches_the_server(ajc: Ajc) -> None:
    done = ajc.run("queue", "add", "GOPEER_SMOKE")
    assert done.code == 0
    assert "GOPEER_SMOKE" in ajc.run("queue", "ls").stdout


def _pytest_without_go(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AJC_GITOPS_REQUIRE")}
    # A PATH holding only the interpreter's directory and an empty cache: no Go, nothing built.
    env.update(PATH=str(Path(sys.executable).parent), XDG_CACHE_HOME=str(tmp_path / "cache"), **extra)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", f"{__file__}::{SMOKE}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_without_go_the_tests_skip_with_one_reason(tmp_path: Path) -> None:
    done = _pytest_without_go(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout, done.stdout
    assert "Go-peer tests need the Go ajc: no Go toolchain on PATH" in done.stdout, done.stdout


def test_required_go_peer_turns_the_skip_into_a_failure(tmp_path: Path) -> None:
    done = _pytest_without_go(tmp_path, AJC_GITOPS_REQUIRE_GO_PEER="1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 error" in done.stdout, done.stdout
    assert "AJC_GITOPS_REQUIRE_GO_PEER=1 forbids skipping" in done.stdout, done.stdout


def test_the_cache_is_keyed_by_version_outside_the_tree() -> None:
    path = gobuild.binary_path(gobuild.AJC)
    assert f"@{gobuild.AJC.version}" in str(path)
    assert ROOT not in path.parents
    # A pin the go.mod does not hold is refused rather than cached under a lying key.
    wrong = gobuild.GoTool(gobuild.AJC.module, "v0.0.1", "./ajc", "ajc", gobuild.AJC.pins)
    try:
        gobuild.binary_path(wrong)
    except gobuild.GoUnavailable as exc:
        assert "does not require" in str(exc)
    else:
        raise AssertionError("a version go.mod does not pin was accepted")

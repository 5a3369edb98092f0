"""Build a pinned Go command once and reuse it: the Go peers of the suite and the benchmarks.

Each tool has its own directory under ``tests/gopeer/go/`` (a ``tools.go`` importing the
package, with ``go.mod``/``go.sum``): one shared ``go.mod`` would let Go's minimal version
selection lift a peer's dependencies to the other tool's (natscli v0.5.0 lifts nats.go and
jsm.go under asyncjobs v0.3.0), and the ``ajc`` we test would not be the released one.

Binaries live outside the git tree, keyed by module, version and the pinned ``go.sum``, so a
clean clone rebuilds only when a pin changes. A file lock makes parallel workers build once.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

GO_DIR = Path(__file__).parent / "go"
BUILD_TIMEOUT_S = 900.0


@dataclass(frozen=True, slots=True)
class GoTool:
    module: str  # github.com/choria-io/asyncjobs
    version: str  # v0.3.0
    package: str  # ./ajc, relative to the module root
    binary: str  # ajc
    pins: Path  # directory holding the go.mod/go.sum that pin it

    @property
    def import_path(self) -> str:
        return f"{self.module}/{self.package.removeprefix('./')}".rstrip("/")


AJC = GoTool("github.com/choria-io/asyncjobs", "v0.3.0", "./ajc", "ajc", GO_DIR / "ajc")
NATSCLI = GoTool("github.com/nats-io/natscli", "v0.5.0", "./nats", "nats", GO_DIR / "natscli")


class GoUnavailable(Exception):
    """No usable Go toolchain, or the build failed: the message says which and what to do."""


@dataclass(frozen=True, slots=True)
class Built:
    path: Path
    seconds: float  # time spent building now; 0.0 when the cache held it
    cached: bool


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ajc-gitops" / "go-peer"


def go_binary() -> str:
    found = shutil.which("go")
    if found is None:
        raise GoUnavailable("no Go toolchain on PATH (the Go-peer tests need Go >= 1.25 and the module proxy)")
    return found


def _check_pin(tool: GoTool) -> bytes:
    """The go.mod must require exactly ``tool.version``, so the cache key cannot lie."""
    go_mod = (tool.pins / "go.mod").read_text(encoding="utf-8")
    if not re.search(rf"^\s*(require\s+)?{re.escape(tool.module)}\s+{re.escape(tool.version)}\s*$", go_mod, re.M):
        raise GoUnavailable(f"{tool.pins / 'go.mod'}: does not require {tool.module} {tool.version}")
    return go_mod.encode() + (tool.pins / "go.sum").read_bytes()


def binary_path(tool: GoTool) -> Path:
    pins = hashlib.sha256(_check_pin(tool)).hexdigest()[:12]
    return cache_root() / f"{tool.module.replace('/', '_')}@{tool.version}" / pins / tool.binary


def build(tool: GoTool) -> Built:
    """The cached binary, building it (once, under a lock) when absent."""
    target = binary_path(tool)
    if target.is_file():
        return Built(target, 0.0, True)
    go = go_binary()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.is_file():  # another worker built it while we waited
            return Built(target, 0.0, True)
        started = time.monotonic()
        tmp = Path(tempfile.mkdtemp(dir=target.parent)) / tool.binary
        # -mod=readonly: the checksums in the repository are the ones used, or the build fails.
        cmd = [go, "build", "-mod=readonly", "-trimpath", "-o", str(tmp), tool.import_path]
        done = subprocess.run(
            cmd, cwd=tool.pins, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=_build_env()
        )
        if done.returncode != 0:
            shutil.rmtree(tmp.parent, ignore_errors=True)
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise GoUnavailable(f"go build {tool.import_path}@{tool.version} failed in {tool.pins}: {last}")
        os.replace(tmp, target)
        shutil.rmtree(tmp.parent, ignore_errors=True)
        return Built(target, time.monotonic() - started, False)


def _build_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CGO_ENABLED", "0")
    return env

"""Fixtures for the security suite: key material made once per session, the CLI as a real
process with a clean environment, and NATS CLI context files in a temp ``XDG_CONFIG_HOME``.

Every test file here sets ``pytestmark = pytest.mark.integration``: they all start real
nats-servers through the suite-wide ``nats_server_factory``.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.security.pki import JwtChain, NkeyUser, Pki, make_jwt_chain, make_nkey_user, make_pki

# -- key material -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Material:
    """Everything a server or a client of these tests needs; secrets are distinctive strings so
    a grep of any output for them is meaningful."""

    pki: Pki
    jwt: JwtChain
    nkey: NkeyUser
    stranger_nkey: NkeyUser  # valid NKey, unknown to every server
    user: str
    password: str
    token: str

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.password, self.token, self.jwt.user_seed)


@pytest.fixture(scope="session")
def material(tmp_path_factory: pytest.TempPathFactory) -> Material:
    base = tmp_path_factory.mktemp("security-material")
    return Material(
        pki=make_pki(base / "pki"),
        jwt=make_jwt_chain(base / "jwt"),
        nkey=make_nkey_user(base / "user.nk"),
        stranger_nkey=make_nkey_user(base / "stranger.nk"),
        user="alice",
        # URL-safe so they can stand in nats://user:password@host as written.
        password=f"pw-{secrets.token_hex(8)}",
        token=f"tok-{secrets.token_hex(8)}",
    )


# -- manifests ----------------------------------------------------------------------------

MANIFEST = """\
schedules:
  - name: SEC_REPORT
    schedule: "0 6 * * *"
    queue: REPORTS
    task_type: report:daily
    payload: {kind: daily}
  - name: SEC_CLEANUP
    schedule: "@every 10m"
    queue: DEFAULT
    task_type: cleanup
"""
MANIFEST_NAMES = ("SEC_CLEANUP", "SEC_REPORT")


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    directory = tmp_path / "manifests"
    directory.mkdir()
    (directory / "schedules.yaml").write_text(MANIFEST)
    return directory


# -- the CLI as a process -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CliResult:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err

    def error_line(self) -> str:
        """The one line a failed run prints on stderr (asserted to be exactly one)."""
        lines = [line for line in self.err.splitlines() if line.strip()]
        assert len(lines) == 1, f"expected one error line, got:\n{self.err}"
        return lines[0]


def _clean_env(config_home: Path, extra: Mapping[str, str]) -> dict[str, str]:
    # Nothing from the developer's shell may choose a server, credentials or a context.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "AJC_GITOPS_"))}
    env.update({"NO_COLOR": "1", "XDG_CONFIG_HOME": str(config_home), "HOME": str(config_home.parent)})
    env.update(extra)
    return env


RunCli = Callable[..., CliResult]


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    """An empty ``$XDG_CONFIG_HOME`` for this test: contexts go in ``nats/context/``."""
    path = tmp_path / "home" / ".config"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def run_cli(config_home: Path) -> RunCli:
    """``python -m ajc_gitops ARGS`` with a clean environment; asserts no traceback."""

    def run(*args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0) -> CliResult:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "ajc_gitops", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_clean_env(config_home, env or {}),
            stdin=subprocess.DEVNULL,
        )
        result = CliResult(done.returncode, done.stdout, done.stderr, time.monotonic() - started)
        assert "Traceback" not in result.text, result.text
        return result

    return run


WriteContext = Callable[..., Path]


@pytest.fixture
def write_context(config_home: Path) -> WriteContext:
    """Write ``nats/context/NAME.json`` as ``nats context add`` does; ``select`` also writes
    ``nats/context.txt`` (what ``nats context select NAME`` leaves behind)."""

    def write(name: str, fields: Mapping[str, object], *, select: bool = False) -> Path:
        directory = config_home / "nats" / "context"
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{name}.json"
        path.write_text(json.dumps({"description": "ajc-gitops security test", **fields}, indent=2))
        if select:
            (config_home / "nats" / "context.txt").write_text(name)
        return path

    return write

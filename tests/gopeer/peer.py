"""The real Go ``ajc`` as a test peer: one-shot verbs and long-running processes.

``ajc`` connects through a NATS context (``--context NAME``); :class:`Ajc` writes that context
into a private config dir (``XDG_CONFIG_HOME``) so the user's own contexts are never read.
Long-running peers (the Go scheduler, the Go worker) are started by PID and stopped by PID.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

RUN_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0


@dataclass(frozen=True, slots=True)
class Finished:
    code: int
    stdout: str
    stderr: str


class GoProcess:
    """A long-running ``ajc`` process; output goes to files (a full pipe would stall it)."""

    def __init__(self, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="ajc-", suffix=".log", dir=log_dir)
        self.log_path = Path(name)
        self.argv = argv
        with os.fdopen(fd, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        if self.running:
            os.kill(self.pid, sig)

    def stop(self, grace: float = STOP_GRACE_S) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.wait()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait()


class Ajc:
    """``ajc --context NAME ...`` against one server URL."""

    def __init__(self, binary: Path, url: str, work_dir: Path, context: str = "ajc-gitops-test") -> None:
        self.binary = binary
        self.url = url
        self.context = context
        self.work_dir = work_dir
        self.config_home = work_dir / "config"
        context_dir = self.config_home / "nats" / "context"
        context_dir.mkdir(parents=True, exist_ok=True)
        # natscontext's file: <XDG_CONFIG_HOME>/nats/context/<name>.json; only the URL matters.
        (context_dir / f"{context}.json").write_text(json.dumps({"url": url}), encoding="utf-8")
        self.started: list[GoProcess] = []

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "AJC_")) and k != "CONTEXT"}
        env["XDG_CONFIG_HOME"] = str(self.config_home)
        return env

    def argv(self, *args: str) -> list[str]:
        return [str(self.binary), "--context", self.context, *args]

    def run(self, *args: str, timeout: float = RUN_TIMEOUT_S, check: bool = True) -> Finished:
        try:
            done = subprocess.run(
                self.argv(*args),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=self.env(),
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"ajc {' '.join(args)} still running after {timeout}s")
        result = Finished(done.returncode, done.stdout, done.stderr)
        if check and result.code != 0:
            pytest.fail(f"ajc {' '.join(args)} exited {result.code}:\n{result.stdout}{result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)

    def start(self, *args: str) -> GoProcess:
        proc = GoProcess(self.argv(*args), self.env(), self.work_dir / "logs")
        self.started.append(proc)
        return proc

    def scheduler(self, name: str) -> GoProcess:
        """The Go scheduler (``ajc task cron scheduler NAME``)."""
        return self.start("task", "cron", "scheduler", name)

    def worker(self, task_type: str, queue: str, concurrency: int, command: Path, *flags: str) -> GoProcess:
        """A Go worker running ``command`` per task (``ajc task process``)."""
        return self.start("task", "process", task_type, queue, str(concurrency), str(command), *flags)

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.running:
                proc.stop()
        self.started.clear()


def wait_for_log(proc: GoProcess, text: str, timeout: float = 20.0) -> None:
    """Until ``text`` appears in the process output; fails early if the process exits."""
    deadline = time.monotonic() + timeout
    while text not in proc.log():
        if not proc.running:
            pytest.fail(f"{proc.argv} exited {proc.proc.returncode} before logging {text!r}:\n{proc.log()[-2000:]}")
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {text!r} from {proc.argv}:\n{proc.log()[-2000:]}")
        time.sleep(0.05)


def cron_fields(
    schedule: str,
    task_type: str,
    queue: str = "DEFAULT",
    deadline_s: int = 0,
    max_tries: int = 10,
    payload: bytes | None = None,
) -> dict[str, Any]:
    """A schedule's fields as the tests compare them: what `ajc task cron view --json` shows,
    and what our decoder reads, with Go's defaults."""
    return {
        "schedule": schedule,
        "queue": queue,
        "task_type": task_type,
        "deadline_s": deadline_s,
        "max_tries": max_tries,
        "payload": payload,
    }

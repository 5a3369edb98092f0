"""Helpers for the fault suite (fixtures are in conftest.py): the CLI as a real process (started
without waiting, so a test can break the server while it runs), manifest generators, and a
complete decode of the bucket.

Repetitions: ``AJC_FAULT_REPEAT`` (default 1) multiplies the loop counts of every repeated
fault; the ``slow`` variants use their own larger counts times this factor. Each test is bounded
by pytest-timeout and by explicit deadlines on every process it starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from ajc_gitops import codec
from ajc_gitops.codec import decode_marker, record_digest
from ajc_gitops.connect import ConnectOptions
from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.gowire.gotime import parse_rfc3339
from ajc_gitops.model import ZERO_TIME, ScheduledTask
from ajc_gitops.names import CONFIG_BUCKET, MARKER_PREFIX, SCHEDULE_PREFIX
from ajc_gitops.store import Store

PROCESS_TIMEOUT_S = 60.0


def repeat(default: int) -> int:
    """``default`` times ``AJC_FAULT_REPEAT`` (the README's long run sets it)."""
    return default * max(1, int(os.environ.get("AJC_FAULT_REPEAT", "1")))


# -- the CLI as a process -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finished:
    code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


class CliProcess:
    """``python -m ajc_gitops ARGS`` started now; ``finish()`` waits with a deadline."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "NO_COLOR": "1"}
        for name in ("NATS_URL", "NATS_CONTEXT", "AJC_GITOPS_DEBUG"):
            env.pop(name, None)
        # Files, not pipes: a plan of thousands of schedules fills a pipe buffer, and a process
        # blocked on a write nobody reads would look like a hang.
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _read once it exits)
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        self.args = list(args)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ajc_gitops", *args],
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=self._err,
            env=env,
        )

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def _read(self) -> tuple[str, str]:
        texts = []
        for handle in (self._out, self._err):
            handle.seek(0)
            texts.append(handle.read().decode("utf-8", "replace"))
            handle.close()
        return texts[0], texts[1]

    def finish(self, timeout: float = PROCESS_TIMEOUT_S) -> Finished:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            _, err = self._read()
            pytest.fail(f"ajc-gitops {self.args} still running after {timeout}s:\n{err[-2000:]}")
        seconds = time.monotonic() - self.started
        out, err = self._read()
        done = Finished(self.proc.returncode, out, err, seconds)
        # Whatever happened to the server, a user never sees a traceback.
        assert "Traceback" not in out + err, err
        return done

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_cli(*args: str, timeout: float = PROCESS_TIMEOUT_S) -> Finished:
    return CliProcess(*args).finish(timeout)


def assert_clean_failure(done: Finished, *, naming: str | None = None) -> str:
    """Exit 1 with exactly one ``error: ...`` line on stderr (optionally naming a server)."""
    assert done.code == 1, (done.code, done.stdout[-2000:], done.stderr)
    [line] = done.error_lines
    assert line.startswith("error: "), line
    if naming is not None:
        assert naming in line, line
    return line


# -- manifests ------------------------------------------------------------------------------


def manifest_text(count: int, *, variant: str = "a", prefix: str = "s") -> str:
    """``count`` schedules whose every field depends on ``variant``, so a record shows which
    manifest wrote it, field by field (a mix of two would be detected)."""
    lines = ["schedules:"]
    for i in range(count):
        lines += [
            f"  - name: {prefix}{i:05d}",
            f"    schedule: '{i % 60} {len(variant) % 24} * * *'",
            f"    queue: Q_{variant}",
            f"    task_type: t:{variant}",
            f"    payload: {{variant: {variant}, i: {i}}}",
            f"    max_tries: {len(variant) + 1}",
        ]
    return "\n".join(lines) + "\n"


def write_manifest(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "schedules.yaml").write_text(text, encoding="utf-8")
    return directory


def desired_tasks(directory: Path) -> dict[str, ScheduledTask]:
    from datetime import UTC, datetime

    from ajc_gitops.manifest.load import load_manifests

    loaded = load_manifests([directory], now=datetime.now(UTC))
    assert not loaded.errors, loaded.errors[:3]
    return {s.task.name: s.task for s in loaded.schedules}


# -- the live bucket ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveState:
    records: dict[str, bytes]  # schedule name -> record bytes
    markers: dict[str, bytes]  # schedule name -> marker bytes

    def tasks(self) -> dict[str, ScheduledTask]:
        """Every record decoded exactly as Go decodes it; an undecodable one fails the test."""
        out = {}
        for name, raw in self.records.items():
            result = codec.decode_scheduled_task(raw)
            assert result.error is None, (name, result.error, raw[:200])
            assert result.task.name == name, (name, raw[:200])
            out[name] = result.task
        return out


def opts(url: str, timeout_s: float = 5.0) -> ConnectOptions:
    return ConnectOptions(servers=tuple(url.split(",")), timeout_s=timeout_s)


async def read_live(url: str, bucket: str = CONFIG_BUCKET) -> LiveState:
    async with Store.open(opts(url)) as store:
        if not await store.bucket_exists(bucket):
            return LiveState({}, {})
        # The same read as plan's: one consumer, checked against the stream leader.
        records, markers = await store.snapshots((SCHEDULE_PREFIX, MARKER_PREFIX), bucket=bucket)
    return LiveState(
        {k.removeprefix(SCHEDULE_PREFIX): e.value or b"" for k, e in records.live.items()},
        {k.removeprefix(MARKER_PREFIX): e.value or b"" for k, e in markers.live.items()},
    )


def without_created_at(task: ScheduledTask) -> ScheduledTask:
    return replace(task, created_at=ZERO_TIME)


def same_task(a: ScheduledTask, b: ScheduledTask) -> bool:
    return without_created_at(a) == without_created_at(b)


def assert_exactly(state: LiveState, wanted: dict[str, ScheduledTask]) -> None:
    """The bucket holds exactly ``wanted`` (created_at aside), each with a marker for its bytes."""
    tasks = {n: without_created_at(t) for n, t in state.tasks().items()}
    assert sorted(tasks) == sorted(wanted), sorted(set(tasks) ^ set(wanted))[:10]
    wrong = [n for n, t in wanted.items() if tasks[n] != without_created_at(t)]
    assert not wrong, wrong[:10]
    assert sorted(state.markers) == sorted(wanted)
    stale = [n for n, raw in state.records.items() if decode_marker(state.markers[n]).sha256 != record_digest(raw)]
    assert not stale, stale[:10]


def stream_seqs(server: EmbeddedServer) -> dict[str, int]:
    """Every stream's last sequence, from the monitoring port (no client connection needed, so
    the test can watch the writes of another process without competing with it). An
    unreachable endpoint fails the test: "nothing was written" must never be 0 compared with 0."""
    try:
        with urllib.request.urlopen(f"{server.monitor_url}/jsz?streams=true", timeout=2.0) as resp:
            info = json.load(resp)
    except (OSError, ValueError) as exc:
        pytest.fail(f"cannot read the streams' last sequences from {server.monitor_url}/jsz: {exc}")
    return {
        detail["name"]: int(detail["state"]["last_seq"])
        for account in info.get("account_details") or []
        for detail in account.get("stream_detail") or []
    }


def stream_last_seq(server: EmbeddedServer, stream: str = f"KV_{CONFIG_BUCKET}", *, missing_ok: bool = False) -> int:
    """Last sequence of ``stream`` (it moves on every write, also a Delete that replaces a
    record). An absent stream fails the test too; ``missing_ok`` is for a test whose claim is
    that the stream was never created, and then it reads as 0."""
    seqs = stream_seqs(server)
    if stream in seqs:
        return seqs[stream]
    if missing_ok:
        return 0
    pytest.fail(f"stream {stream} is not on {server.monitor_url}/jsz")


@dataclass(frozen=True, slots=True)
class Connection:
    """A client connection as the server saw it (``/connz?state=all``), times in Unix ns."""

    name: str
    start_ns: int
    stop_ns: int | None  # None: still open


def connections(server: EmbeddedServer) -> list[Connection]:
    """Open and closed client connections, oldest first: which processes were connected when."""
    url = f"{server.monitor_url}/connz?state=all&sort=cid&limit=100000"
    try:
        with urllib.request.urlopen(url, timeout=2.0) as resp:
            info = json.load(resp)
    except (OSError, ValueError) as exc:
        pytest.fail(f"cannot read the connections from {url}: {exc}")
    return [
        Connection(
            c.get("name", ""),
            parse_rfc3339(c["start"]).unix_ns,
            parse_rfc3339(c["stop"]).unix_ns if c.get("stop") else None,
        )
        for c in info.get("connections") or []
    ]


def one_line_reasons(lines: Sequence[str]) -> list[str]:
    return [line for line in lines if line.startswith("error: ")]


def stream_leader(servers: Sequence[EmbeddedServer], stream: str) -> EmbeddedServer | None:
    """The running node that leads ``stream`` (its ``server_name`` as the cluster reports it),
    from the monitoring ports; None while no running node names a leader."""
    names = {s.server_name: s for s in servers}
    for server in servers:
        if not server.running:
            continue
        try:
            with urllib.request.urlopen(f"{server.monitor_url}/jsz?streams=true", timeout=1.0) as resp:
                info = json.load(resp)
        except OSError:
            continue
        for account in info.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                leader = (detail.get("cluster") or {}).get("leader")
                if detail.get("name") == stream and leader in names and names[leader].running:
                    return names[leader]
    return None

"""A real Go worker runs our tasks: ``ajc task process`` takes what ``ajc-gitops scheduler`` and
``ajc-gitops dev`` enqueue, gets the payload bytes a Go scheduler would give it, and ends each
task as Go ends it (issue #10, item 4).

One server for the module. Its elections bucket has the short test TTL, made before any Go
client connects (Go would make it with 10 s); only ajc-gitops schedulers campaign here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.js.errors
import pytest
import yaml

from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.scheduler.runner import SHORT_TTL_ENV
from tests.faults.support import read_live, run_cli
from tests.gopeer.peer import Ajc
from tests.scheduler_support import prepare, tasks_now
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

# One queue per task type: `ajc task process TYPE` fails (and retries) every other type it pulls.
QUEUE, FAIL_QUEUE, LATE_QUEUE = "GOW_Q", "GOW_FAIL", "GOW_LATE"
PAYLOADS: dict[str, dict[str, Any]] = {
    "GOW_OBJECT": {"payload": {"msg": "hi <&> grüße", "n": [1, 2.5, None]}},
    "GOW_STRING": {"payload": '{"a":1}'},  # the form `ajc task cron add --payload` stores
    "GOW_RAW": {"payload_base64": base64.b64encode(b"\x00\xff raw\n").decode()},
    "GOW_NONE": {},
}
# Go's backoff policy "1m" waits about 2-6 s before the second try and 3.5-10 s before the third.
FAIL_TRIES = 2

# Run by the Go worker for every task: the task JSON is in the file $CHORIA_AJ_TASK (asyncjobs
# mux.go ExternalProcess; the command gets no other environment). It records the payload bytes
# per try and fails for the type w:fail.
COMMAND = """#!{python}
import base64, json, os, sys
task = json.load(open(os.environ["CHORIA_AJ_TASK"]))
payload = task["payload"]
raw = b"" if payload is None else base64.b64decode(payload)
with open(os.path.join({out!r}, task["id"] + "." + str(task["tries"])), "wb") as f:
    f.write(raw)
sys.exit(1 if task["type"] == "w:fail" else 0)
"""


def go_task_payload(stored: bytes | None) -> bytes:
    """What a Go scheduler's task carries for a stored schedule payload (contract §4.2): the
    JSON encoding of the stored bytes, a quoted base64 string, or null."""
    return b"null" if stored is None else json.dumps(base64.b64encode(stored).decode()).encode()


@dataclass(frozen=True, slots=True)
class World:
    url: str
    ajc: Ajc
    runs: Path  # one file per command run: <task id>.<try>, holding the payload bytes
    command: Path
    stored: dict[str, bytes | None]  # schedule name -> stored payload bytes

    def tasks(self, task_type: str | None = None) -> list[dict[str, Any]]:
        return [t for t in tasks_now(self.url) if task_type is None or t["type"] == task_type]

    def runs_of(self, task_id: str) -> dict[int, bytes]:
        return {int(p.suffix[1:]): p.read_bytes() for p in self.runs.glob(f"{task_id}.*")}


def write_command(directory: Path, runs: Path) -> Path:
    command = directory / "record-task"
    command.write_text(COMMAND.format(python=sys.executable, out=str(runs)))
    command.chmod(0o755)
    return command


class OurScheduler:
    def __init__(self, url: str, log: Path) -> None:
        env = {**os.environ, SHORT_TTL_ENV: "1", "NO_COLOR": "1"}
        env.pop("NATS_URL", None)
        with log.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ajc_gitops", "scheduler", "gow-ours", "-s", url],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def world(ajc: Ajc, go_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url, base = go_server.url, tmp_path_factory.mktemp("go-worker")
    asyncio.run(prepare(url))
    for queue in (QUEUE, FAIL_QUEUE, LATE_QUEUE):
        ajc.run("queue", "add", queue)
    schedules = [
        {"name": name, "schedule": "@every 2s", "task_type": "w:ok", "queue": QUEUE, **extra}
        for name, extra in PAYLOADS.items()
    ]
    schedules += [
        {
            "name": "GOW_FAIL",
            "schedule": "@every 5s",
            "task_type": "w:fail",
            "queue": FAIL_QUEUE,
            "max_tries": FAIL_TRIES,
        },
        # Its tasks wait on a queue no worker reads until the 30 s deadline of the first passed.
        {"name": "GOW_LATE", "schedule": "@every 10s", "task_type": "w:late", "queue": LATE_QUEUE, "deadline": "30s"},
    ]
    (base / "m").mkdir()
    (base / "m" / "schedules.yaml").write_text(yaml.safe_dump({"schedules": schedules}, allow_unicode=True))
    done = run_cli("apply", str(base / "m"), "--auto-approve", "--server", url)
    assert done.code == 0, done.stderr
    live = asyncio.run(read_live(url)).tasks()
    # Twins made by Go itself, to compare how each ends.
    for task_type, queue, flag in (
        ("w:fail", FAIL_QUEUE, ("--tries", str(FAIL_TRIES))),
        ("w:late", LATE_QUEUE, ("--deadline", "30s")),
    ):
        ajc.run("task", "add", task_type, "go-twin", "-q", queue, *flag)
    runs = base / "runs"
    runs.mkdir()
    command = write_command(base, runs)
    scheduler = OurScheduler(url, base / "scheduler.log")
    ajc.worker("w:ok", QUEUE, 4, command, "--backoff", "1m")
    ajc.worker("w:fail", FAIL_QUEUE, 4, command, "--backoff", "1m")
    try:
        yield World(url, ajc, runs, command, {n: t.payload for n, t in live.items()})
    finally:
        scheduler.stop()
        ajc.stop_all()


def go_twin(world: World, task_type: str, state: str) -> dict[str, Any] | None:
    """The task ``ajc task add`` made in the fixture, once it reached ``state``."""
    twin = b'"go-twin"'
    found = [t for t in world.tasks(task_type) if base64.b64decode(t["payload"]) == twin and t["state"] == state]
    return found[0] if found else None


def ours(world: World, task_type: str) -> list[dict[str, Any]]:
    return [t for t in world.tasks(task_type) if base64.b64decode(t["payload"]) != b'"go-twin"']


def ending(task: dict[str, Any]) -> tuple[Any, ...]:
    return (task["state"], task["tries"], task["max_tries"], task.get("last_err"), "result" in task)


def view(world: World, task_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = world.ajc.json("task", "view", task_id, "--json")
    return shown


def stored(world: World, task_id: str) -> dict[str, Any]:
    [record] = [t for t in world.tasks() if t["id"] == task_id]
    return record


def test_go_worker_gets_the_payload_bytes_and_completes_our_tasks(world: World) -> None:
    def done_per_schedule() -> dict[str, dict[str, Any]] | None:
        found: dict[str, dict[str, Any]] = {}
        for task in world.tasks("w:ok"):
            if task["state"] == "complete":
                found.setdefault(_schedule_of(world, task), task)
        return found if set(found) >= set(PAYLOADS) else None

    done = wait_until(done_per_schedule, timeout=40, what="a completed task of every payload schedule")
    for name, task in done.items():
        runs = world.runs_of(task["id"])
        assert runs == {1: go_task_payload(world.stored[name])}, name
        assert task["tries"] == 1 and "last_err" not in task, task
        assert view(world, task["id"]) == task


def _schedule_of(world: World, task: dict[str, Any]) -> str:
    """The schedule whose fire made ``task``: its payload says it (every PAYLOADS one differs)."""
    payload = base64.b64decode(task["payload"])
    [name] = [n for n in PAYLOADS if go_task_payload(world.stored[n]) == payload]
    return name


def test_a_failing_command_is_retried_until_max_tries_and_expires_as_go_ends_it(world: World) -> None:
    def first_finished() -> dict[str, Any] | None:
        ended = [t for t in ours(world, "w:fail") if t["state"] == "expired"]
        return min(ended, key=lambda t: t["id"]) if ended else None

    task = wait_until(first_finished, timeout=60, what=f"a w:fail task expired after {FAIL_TRIES} tries")
    twin = wait_until(lambda: go_twin(world, "w:fail", "expired"), timeout=30, what="Go's own w:fail task expired")
    assert ending(task) == ending(twin)
    assert sorted(world.runs_of(task["id"])) == list(range(1, FAIL_TRIES + 1))
    assert task["tries"] == FAIL_TRIES and task["max_tries"] == FAIL_TRIES
    assert task["last_err"] == "execution failed: exit status 1"  # ErrExternalCommandFailed, task
    assert view(world, task["id"]) == task


def test_a_task_past_its_deadline_expires_unrun(world: World) -> None:
    def first_late() -> dict[str, Any] | None:
        late = ours(world, "w:late")
        return min(late, key=lambda t: t["created"]) if late else None

    first = wait_until(first_late, timeout=20, what="a w:late task")
    assert first["state"] == "new" and "deadline" in first
    assert abs(_seconds(first["deadline"]) - _seconds(first["created"]) - 30) < 1, first
    # The worker starts once the deadline has passed (plus 1 s of clock slack).
    deadline = re.sub(r"\.\d+Z$", "Z", first["deadline"])
    wait_until(lambda: _now_rfc3339() > deadline, timeout=45, interval=0.2, what="the first task's deadline")
    wait_until(lambda: _now_rfc3339() > _plus_seconds(deadline, 1), timeout=5, what="a second of slack")
    world.ajc.worker("w:late", LATE_QUEUE, 2, world.command, "--backoff", "1m")
    ended = wait_until(
        lambda: (t := stored(world, first["id"]))["state"] != "new" and t, timeout=20, what="the late task handled"
    )
    assert ended["state"] == "expired" and ended["tries"] == 0, ended
    twin = wait_until(lambda: go_twin(world, "w:late", "expired"), timeout=20, what="Go's own w:late task expired")
    assert ending(ended) == ending(twin)
    assert world.runs_of(first["id"]) == {}, "the command ran for a task past its deadline"
    assert view(world, first["id"]) == ended


def _seconds(stamp: str) -> float:
    from datetime import datetime

    whole, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole + "+00:00").timestamp() + float(f"0.{frac or 0}")


def _now_rfc3339() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _plus_seconds(stamp: str, seconds: int) -> str:
    from datetime import UTC, datetime, timedelta

    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def tasks_if_any(url: str) -> list[dict[str, Any]]:
    """The task records, or none while dev's scheduler has not yet made the tasks stream."""
    try:
        return tasks_now(url)
    except nats.js.errors.NotFoundError:
        return []


DEV_LINE = re.compile(r"nats-server pid \d+ listening on (nats://\S+)")


def test_go_worker_runs_the_tasks_of_ajc_gitops_dev(go_ajc: Path, tmp_path: Path) -> None:
    """`dev` runs its own server, applies, creates the queues and schedules: a Go worker pointed
    at it completes those tasks with the payload a Go scheduler would give."""
    (tmp_path / "m").mkdir()
    entry = {"name": "DEV_GO", "schedule": "@every 1s", "task_type": "w:dev", "queue": "DEVQ", "payload": [1, "<x>"]}
    (tmp_path / "m" / "s.yaml").write_text(yaml.safe_dump({"schedules": [entry]}))
    runs = tmp_path / "runs"
    runs.mkdir()
    command = write_command(tmp_path, runs)
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("NATS_URL", None)
    out = tmp_path / "dev.out"
    with out.open("w") as sink:
        dev = subprocess.Popen(
            [sys.executable, "-m", "ajc_gitops", "dev", "m"],
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
        )
    ajc: Ajc | None = None
    try:
        url = wait_until(lambda: (m := DEV_LINE.search(out.read_text())) and m.group(1), timeout=30, what="dev's URL")
        ajc = Ajc(go_ajc, url, tmp_path / "ajc")
        wait_until(lambda: "ajc-gitops scheduler" in out.read_text(), timeout=30, what="dev's scheduler step")
        ajc.worker("w:dev", "DEVQ", 2, command)
        done = wait_until(
            lambda: [t for t in tasks_if_any(url) if t["type"] == "w:dev" and t["state"] == "complete"],
            timeout=40,
            what="a dev task completed by the Go worker",
        )
        task = done[0]
        assert {p.name: p.read_bytes() for p in runs.glob(task["id"] + ".*")} == {
            task["id"] + ".1": go_task_payload(b'[1,"\\u003cx\\u003e"]')
        }
        assert ajc.json("task", "view", task["id"], "--json") == task
    finally:
        if ajc is not None:
            ajc.stop_all()
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(20)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait()

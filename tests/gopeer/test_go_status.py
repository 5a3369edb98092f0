"""``status`` and ``backfill`` on what a real Go scheduler fired and real Go workers ran
(issue #12: "where a Go peer is available in the suite, status and backfill are checked on
tasks a Go scheduler created and a Go worker processed").

Our ``apply`` defines four ``@every 1s`` schedules, each on a queue of its own (``ajc task
process TYPE`` fails every other type it pulls). A Go ``ajc task cron scheduler`` leads and
fires them for a few seconds, then is stopped; Go workers end the tasks as asyncjobs does:
``complete``, ``expired`` (the command fails, ``max_tries`` 1, a short backoff) and ``retry``
(the command fails, a backoff of minutes: it stays ``retry``). The fourth queue is read by the
counting worker of ``tests/deliveries.py``, so the backfill test sees every work item handed out.

Go's task IDs are random (contract §4.3) and its cron fires at whole seconds (robfig/cron's
``@every`` rounds down to the second), creating the task a few milliseconds later
(task_scheduler.go ``handlerFactory`` calls ``NewTask`` there). So the slot of a Go task is the
second of its ``created`` stamp: that is the truth the tests hold ``status`` and ``backfill``
to, read from the tasks stream, never hard-coded.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.gowire.godate import from_unix
from ajc_gitops.gowire.gotime import parse_rfc3339
from ajc_gitops.model import NANOS_PER_SECOND
from ajc_gitops.scheduler.tasks import task_id_for
from ajc_gitops.status.classify import PENDING_S
from tests.deliveries import Worker, items, slot_of
from tests.faults.support import Finished, read_live, run_cli
from tests.gopeer.peer import Ajc
from tests.gopeer.test_go_worker import tasks_if_any
from tests.scheduler_support import tasks_now
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

GO_NAME = "gs-go"
FIRES = 3  # slots the Go leader fires of every schedule before it is stopped
EXIT_ALERT = 3


@dataclass(frozen=True, slots=True)
class Sched:
    name: str
    task_type: str
    queue: str
    backoff: str | None  # the Go worker's --backoff; None: no Go worker, the counting worker reads it
    max_tries: int = 0


OK = Sched("GS_OK", "gs:ok", "GS_OKQ", "1m")
# The command fails for gs:fail and gs:retry (COMMAND of test_go_worker.py fails only w:fail,
# so these get a command of their own below).
FAIL = Sched("GS_FAIL", "gs:fail", "GS_FAILQ", "1m", max_tries=1)  # retry, then expired within seconds
RETRY = Sched("GS_RETRY", "gs:retry", "GS_RETRYQ", "1h", max_tries=1)  # retry for 9 min or more
BACKFILL = Sched("GS_BF", "gs:bf", "GS_BFQ", None)
SCHEDULES = (OK, FAIL, RETRY, BACKFILL)

COMMAND = """#!{python}
import json, os, sys
task = json.load(open(os.environ["CHORIA_AJ_TASK"]))
sys.exit(0 if task["type"] == "gs:ok" else 1)
"""


@dataclass(frozen=True, slots=True)
class Fired:
    url: str
    ajc: Ajc
    created_ns: dict[str, int]  # schedule name -> its record's created_at
    stopped_s: float  # when the Go scheduler had exited: it fired nothing after
    leading: dict[str, Any]  # `status --format json` while the Go scheduler led
    counter: Worker  # the counting worker on BACKFILL's queue


def _seconds(stamp: str) -> float:
    return parse_rfc3339(stamp).unix_ns / NANOS_PER_SECOND


def _rfc(seconds: int) -> str:
    return from_unix(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def of_type(url: str, sched: Sched) -> list[dict[str, Any]]:
    return [t for t in tasks_if_any(url) if t["type"] == sched.task_type]


def status_json(url: str, *args: str) -> tuple[Finished, dict[str, Any]]:
    done = run_cli("status", "--format", "json", "--server", url, *args)
    assert done.code in (0, EXIT_ALERT), done.stderr
    return done, json.loads(done.stdout)


def _settled(url: str) -> bool:
    """Every Go task ended as its worker ends it, so no record changes under the checks."""
    by_type: dict[str, list[str]] = {}
    for t in tasks_now(url):
        by_type.setdefault(t["type"], []).append(t["state"])
    wanted = {OK.task_type: "complete", FAIL.task_type: "expired", RETRY.task_type: "retry"}
    return all(by_type.get(tt) and set(by_type[tt]) == {state} for tt, state in wanted.items())


@pytest.fixture
def fired(ajc: Ajc, go_server: EmbeddedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fired]:
    url, base = go_server.url, tmp_path_factory.mktemp("go-status")
    for s in SCHEDULES:
        ajc.run("queue", "add", s.queue)
    entries = [
        {"name": s.name, "schedule": "@every 1s", "task_type": s.task_type, "queue": s.queue}
        | ({"max_tries": s.max_tries} if s.max_tries else {})
        for s in SCHEDULES
    ]
    (base / "m").mkdir()
    (base / "m" / "schedules.yaml").write_text(yaml.safe_dump({"schedules": entries}))
    done = run_cli("apply", str(base / "m"), "--auto-approve", "--server", url)
    assert done.code == 0, done.stderr
    live = asyncio.run(read_live(url)).tasks()
    created_ns = {name: t.created_at.unix_ns for name, t in live.items()}
    command = base / "fail-unless-ok"
    command.write_text(COMMAND.format(python=sys.executable))
    command.chmod(0o755)
    for s in SCHEDULES:
        if s.backoff is not None:
            ajc.worker(s.task_type, s.queue, 4, command, "--backoff", s.backoff)
    with Worker(url, [BACKFILL.queue]) as counter:
        go = ajc.scheduler(GO_NAME)
        wait_until(
            lambda: all(len(of_type(url, s)) >= FIRES for s in SCHEDULES),
            timeout=25,
            interval=0.2,
            what=f"the Go scheduler firing {FIRES} slots of every schedule",
        )
        _, leading = status_json(url, "--since", "1m")
        go.stop()  # Go's ajc exits on the signal itself, without releasing the key
        stopped_s = time.time()
        wait_until(lambda: _settled(url), timeout=30, interval=0.2, what="every Go task ended by its worker")
        # Slots younger than PENDING_S are "pending", not looked for: wait until the last
        # slot the Go leader fired is older than that, with two more slots to spare.
        wait_until(lambda: time.time() > stopped_s + PENDING_S + 3, timeout=PENDING_S + 5, interval=0.1)
        yield Fired(url, ajc, created_ns, stopped_s, leading, counter)


def _slots_with_tasks(doc: dict[str, Any], name: str) -> dict[int, dict[str, Any]]:
    [sched] = [s for s in doc["schedules"] if s["name"] == name]
    return {int(_seconds(slot["instant"])): slot for slot in sched["slots"] if "task" in slot}


def check_status(fired: Fired) -> None:
    lead = fired.leading["leader"]
    assert (lead["holder"], lead["kind"]) == (GO_NAME, "go"), lead

    done, doc = status_json(fired.url, "--since", "2m", "--fail-on", "failed")
    tasks = {t["id"]: t for t in tasks_now(fired.url)}
    # An expired task is a failed one: --fail-on failed says so in the exit code.
    assert done.code == EXIT_ALERT and "failed task(s)" in done.stderr, (done.code, done.stderr)
    assert doc["leader"]["kind"] in ("go", None)  # Go lets its key expire; it may be gone by now
    assert doc["totals"]["unknown"] == 0, doc["notes"]
    now_s = _seconds(doc["now"])
    for s in SCHEDULES:
        go_tasks = {i: t for i, t in tasks.items() if t["type"] == s.task_type}
        assert len(go_tasks) >= FIRES
        shown = _slots_with_tasks(doc, s.name)
        # Every task the Go leader created is shown, each at the slot Go fired it for: the
        # whole second of its creation.
        assert sorted(slot["task"]["id"] for slot in shown.values()) == sorted(go_tasks), s.name
        for instant, slot in shown.items():
            record = go_tasks[slot["task"]["id"]]
            assert instant == int(_seconds(record["created"])), (s.name, slot, record["created"])
            assert slot["kind"] == "fired" and slot["task"]["found_by"] == "scan", slot
            want = (record["state"], record["tries"], record.get("last_err", ""))
            assert (slot["task"]["state"], slot["task"]["tries"], slot["task"]["last_err"]) == want, slot
            assert slot["task"]["failed"] == (record["state"] == "expired")
        [sched] = [x for x in doc["schedules"] if x["name"] == s.name]
        for slot in sched["slots"]:
            if "task" not in slot:  # no Go task: missed when old enough to judge, else pending
                old = now_s - _seconds(slot["instant"]) >= PENDING_S
                assert slot["kind"] == ("missed" if old else "pending"), slot
        assert sched["counts"]["missed"] > 0  # before the Go leader, and after it was stopped
    # --read stream (one pass over the window, then lookups) reads the same slots the same way.
    _, streamed = status_json(fired.url, "--since", "2m", "--read", "stream")
    for s in SCHEDULES:
        shown, again = _slots_with_tasks(doc, s.name), _slots_with_tasks(streamed, s.name)
        both = shown.keys() & again.keys()  # the window moved on a little between the two reads
        assert len(both) >= FIRES - 1 and all(shown[i] == again[i] for i in both), s.name
    # The states as Go's own `ajc task view` shows them, one task of each schedule.
    for s in (OK, FAIL, RETRY):
        [slot, *_] = _slots_with_tasks(doc, s.name).values()
        view = fired.ajc.json("task", "view", slot["task"]["id"], "--json")
        assert (view["state"], view["tries"], view.get("last_err", "")) == (
            slot["task"]["state"],
            slot["task"]["tries"],
            slot["task"]["last_err"],
        )
    states = {s.name: {v["task"]["state"] for v in _slots_with_tasks(doc, s.name).values()} for s in SCHEDULES}
    assert states[OK.name] == {"complete"} and states[FAIL.name] == {"expired"} and states[RETRY.name] == {"retry"}


def _slot_of_item(job: str, record: dict[str, Any] | None, name: str) -> int:
    """The slot a work item is for: ours carry it in their deterministic ID (its KSUID time
    part); a Go task's is the second of its creation (module doc)."""
    assert record is not None, f"work item {job} has no task record"
    if task_id_for(name, from_unix(slot_of(job))) == job:
        return slot_of(job)
    return int(_seconds(record["created"]))


def _backfill(fired: Fired, name: str, start: int, end: int, *flags: str) -> Finished:
    return run_cli(
        "backfill", name, "--from", _rfc(start), "--to", _rfc(end), "--auto-approve", "--server", fired.url, *flags
    )


def check_backfill(fired: Fired) -> None:
    created_s = fired.created_ns[BACKFILL.name] / NANOS_PER_SECOND
    go = {t["id"]: int(_seconds(t["created"])) for t in of_type(fired.url, BACKFILL)}  # Go task -> its slot
    go_slots = set(go.values())
    start, end = int(created_s) - 5, int(fired.stopped_s) + 2
    # Every slot of the range: after the record was created (the lattice of @every), up to --to.
    expected = [s for s in range(start, end + 1) if s > created_s]
    assert len(go_slots) == len(go) and go_slots <= set(expected), (go, expected)
    before_go = [s for s in expected if s < min(go_slots)]
    assert before_go, "the Go scheduler fired the first slot after apply: nothing before it to backfill"

    def ours() -> set[str]:
        return {t["id"] for t in of_type(fired.url, BACKFILL)} - set(go)

    # Up to the slot before Go's first fire: that fire's task is its own slot's, past --to, and
    # must not hide the last slot of the range.
    done = _backfill(fired, BACKFILL.name, start, min(go_slots) - 1)
    assert done.code == 0, (done.stdout, done.stderr)
    assert ours() == {task_id_for(BACKFILL.name, from_unix(s)) for s in before_go}, done.stdout

    done = _backfill(fired, BACKFILL.name, start, end)
    assert done.code == 0, (done.stdout, done.stderr)
    assert ours() == {task_id_for(BACKFILL.name, from_unix(s)) for s in expected if s not in go_slots}, done.stdout
    counts = re.search(r"(\d+) to create, (\d+) already have their task", done.stdout)
    created_now = len(expected) - len(before_go) - len(go_slots)
    assert counts is not None and (int(counts[1]), int(counts[2])) == (created_now, len(before_go) + len(go)), (
        done.stdout
    )
    assert done.stdout.count("(Go-created, matched by type, queue and time)") == len(go), done.stdout

    again = _backfill(fired, BACKFILL.name, start, end)
    assert again.code == 0 and " 0 to create" in again.stdout, (again.stdout, again.stderr)
    after = {t["id"]: t for t in of_type(fired.url, BACKFILL)}
    assert len(after) == len(expected)

    # As a worker receives them: one work item per slot, none twice, none left out.
    wait_until(
        lambda: set(items(fired.counter.snapshot()).values()) >= set(after),
        timeout=15,
        what="the counting worker handed every gs:bf task",
    )
    handed = items(fired.counter.snapshot()).values()
    per_slot = Counter(_slot_of_item(job, after.get(job), BACKFILL.name) for job in handed)
    twice = {s: n for s, n in per_slot.items() if n > 1}
    assert not twice, f"slots handed out twice: {twice}"
    assert sorted(per_slot) == expected


def check_backfill_unknown(fired: Fired) -> None:
    """A scan cut short cannot tell a slot Go fired from a missed one: backfill creates none of
    them, names them, and exits 3."""
    created_s = fired.created_ns[OK.name] / NANOS_PER_SECOND
    start, end = int(created_s), int(fired.stopped_s) + 2
    before = {t["id"] for t in of_type(fired.url, OK)}
    done = _backfill(fired, OK.name, start, end, "--scan-limit", "1")
    assert done.code == EXIT_ALERT, (done.code, done.stdout, done.stderr)
    assert {t["id"] for t in of_type(fired.url, OK)} == before
    skipped = [line for line in done.stdout.splitlines() if re.match(r"  skip +\S+  unknown ", line)]
    slots = [s for s in range(start, end + 1) if s > created_s]
    assert len(skipped) == len(slots), done.stdout
    [warning] = done.stderr.splitlines()
    assert warning.startswith(f"warning: backfill {OK.name}: {len(slots)} slot(s) not created"), warning
    assert "raise --scan-limit" in warning, warning


def test_status_and_backfill_on_what_a_go_scheduler_fired(fired: Fired) -> None:
    """One test, not three: the suite runs in several xdist workers, and each would start its
    own Go scheduler and workers for a fixture shared by tests of this module."""
    check_status(fired)
    check_backfill(fired)
    check_backfill_unknown(fired)

"""Two `apply` processes started together on the same bucket with different manifests.

The bucket is pre-created exactly as asyncjobs makes it except that it keeps every revision of a
key (apply never alters an existing bucket), so after the race the whole write history of every
key can be read back. Proven, per round:

* no lost update: every record is one side's schedule as a whole (decoded, compared field by
  field), never a mix, and its ownership marker names exactly those bytes;
* never a Put over a live key (contract §3): in each key's history every record write follows
  nothing or a Delete, and no record ever written is neither side's (nor the baseline's);
* a side that lost a key exits 1 with one line saying the plan is stale or the key changed;
* a rerun of apply converges to "No changes" with exactly one manifest's schedules.

A round counts only when the race happened: both apply processes were connected to the server
at one instant while the round's writes were landing (their connections' start and stop times
from the server's ``/connz``, the writes' times from the stream). On a machine where one process
finished before the other had connected, the round is not a race; it is still checked, then
run again with fresh manifests (the injection is retried, never the verdict), up to a bound.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import nats
import nats.js.api
import pytest

from ajc_gitops import codec
from ajc_gitops.codec import decode_marker, record_digest
from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.gowire.gotime import parse_rfc3339
from ajc_gitops.model import ScheduledTask
from ajc_gitops.names import CONFIG_BUCKET, SCHEDULE_PREFIX
from ajc_gitops.store import Store
from tests.faults.support import (
    CliProcess,
    assert_exactly,
    connections,
    desired_tasks,
    manifest_text,
    read_live,
    repeat,
    run_cli,
    same_task,
    stream_last_seq,
    write_manifest,
)

pytestmark = pytest.mark.integration

KEYS = 3000  # per side; the first half exists before the race (updates), the rest is created
HISTORY = 10_000  # more than all rounds write to one key
_LOSER_WORDS = ("the plan is stale", "changed since the plan was made")
CLI_CONNECTION = "ajc-gitops"  # the name every CLI process gives its connection


async def _bucket_with_history(url: str) -> None:
    config = Store.bucket_config(CONFIG_BUCKET)
    config["max_msgs_per_subject"] = HISTORY
    nc = await nats.connect(url)
    try:
        reply = await nc.request(f"$JS.API.STREAM.CREATE.{config['name']}", json.dumps(config).encode(), timeout=5)
        assert "error" not in json.loads(reply.data), reply.data
    finally:
        await nc.close()


async def _history(url: str) -> dict[str, list[tuple[str, bytes]]]:
    """Every stored write to a schedule key, in stream order: key -> [(operation, value)]."""
    nc = await nats.connect(url)
    out: dict[str, list[tuple[str, bytes]]] = defaultdict(list)
    try:
        js = nc.jetstream()
        subject = f"$KV.{CONFIG_BUCKET}.{SCHEDULE_PREFIX}>"
        sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=nats.js.api.DeliverPolicy.ALL)
        while True:
            msg = await sub.next_msg(timeout=5)
            op = (msg.headers or {}).get("KV-Operation", "PUT")
            out[msg.subject.removeprefix(f"$KV.{CONFIG_BUCKET}.{SCHEDULE_PREFIX}")].append((op, msg.data))
            if msg.metadata.num_pending == 0:
                break
        await sub.unsubscribe()
    finally:
        await nc.close()
    return out


def _which(task: ScheduledTask, sides: dict[str, dict[str, ScheduledTask]]) -> str | None:
    return next(
        (label for label, tasks in sides.items() if task.name in tasks and same_task(task, tasks[task.name])), None
    )


def _check_history(history: dict[str, list[tuple[str, bytes]]], sides: dict[str, dict[str, ScheduledTask]]) -> None:
    for name, writes in history.items():
        previous = None
        for op, data in writes:
            if op == "PUT":
                # A Put right after a Put is what makes every Go scheduler fire both versions.
                assert previous in (None, "DEL", "PURGE"), f"{name}: Put over a live record: {writes}"
                result = codec.decode_scheduled_task(data)
                assert result.error is None and _which(result.task, sides), f"{name}: foreign record {data[:200]!r}"
            previous = op


async def _stored_at(url: str, seq: int) -> int:
    """When the bucket's stream stored message ``seq`` (Unix ns, server clock)."""
    nc = await nats.connect(url)
    try:
        body = json.dumps({"seq": seq}).encode()
        reply = await nc.request(f"$JS.API.STREAM.MSG.GET.KV_{CONFIG_BUCKET}", body, timeout=5)
    finally:
        await nc.close()
    return parse_rfc3339(json.loads(reply.data)["message"]["time"]).unix_ns


def _in_flight_together(server: EmbeddedServer, spawned_ns: int, first_seq: int, last_seq: int) -> bool:
    """Both racing processes were connected at one instant while the round's writes landed.
    Read right after both exited, before the test opens any connection of its own."""
    racers = [c for c in connections(server) if c.name == CLI_CONNECTION and c.start_ns >= spawned_ns]
    assert len(racers) == 2, racers  # one connection per apply process
    if last_seq < first_seq:
        return False  # nobody wrote: nothing to have raced over
    first_ns, last_ns = (asyncio.run(_stored_at(server.url, seq)) for seq in (first_seq, last_seq))
    stops = [c.stop_ns for c in racers]
    assert None not in stops, racers  # both processes exited
    opened = max(first_ns, *(c.start_ns for c in racers))
    closed = min(last_ns, *(stop for stop in stops if stop is not None))
    return opened < closed


def _race_round(
    server: EmbeddedServer, tmp_path: Path, cli: type[CliProcess], i: int, *, saved: bool
) -> tuple[tuple[str, str, str], bool]:
    """One race, checked; returns its outcome and whether the two applies were in flight together."""
    url = server.url
    a = write_manifest(tmp_path / f"a{i}", manifest_text(KEYS, variant=f"a{i}"))
    b = write_manifest(tmp_path / f"b{i}", manifest_text(KEYS, variant=f"bb{i}"))
    targets = {"a": a, "b": b}
    if saved:
        # Both plans made against the same state first (two CI pipelines), so both applies
        # pass their stale check at about the same moment and collide in the writes.
        for label, path in (("a", a), ("b", b)):
            targets[label] = tmp_path / f"{label}{i}.plan"
            made = run_cli("plan", str(path), "-s", url, "--out", str(targets[label]))
            assert made.code == 0, made.stderr
    before = stream_last_seq(server)
    spawned_ns = time.time_ns()
    procs = {
        label: cli("apply", str(path), "-s", url, "--auto-approve", "--timeout", "5") for label, path in targets.items()
    }
    finished = {label: proc.finish() for label, proc in procs.items()}
    raced = _in_flight_together(server, spawned_ns, before + 1, stream_last_seq(server))
    outcome = {}
    for label, done in finished.items():
        if done.code == 0:
            assert "Apply complete:" in done.stdout, done.stdout[-500:]
            outcome[label] = "applied"
        else:
            assert done.code == 1, (done.code, done.stderr)
            [line] = done.error_lines
            assert line.startswith("error: ") and any(w in line for w in _LOSER_WORDS), line
            outcome[label] = "stale plan" if "the plan is stale" in line else "conflict"
        print(f"  round {i} {label}: exit {done.code} in {done.seconds:.1f}s {(done.error_lines or [''])[-1][:120]}")
    sides = {"a": desired_tasks(a), "b": desired_tasks(b)}
    state = asyncio.run(read_live(url))
    tasks = state.tasks()
    assert sorted(tasks) == sorted(sides["a"]), "a schedule is missing after the race"
    owners: Counter[str] = Counter()
    for name, task in tasks.items():
        owner = _which(task, sides)
        assert owner is not None, f"{name}: a mix of both manifests or neither: {state.records[name][:200]!r}"
        assert decode_marker(state.markers[name]).sha256 == record_digest(state.records[name]), name
        owners[owner] += 1
    # A side that exited 0 applied all of its plan, so nobody can have won a key from it
    # afterwards unless it planned after that side finished (and then it also exited 0).
    winner_labels = [label for label, o in outcome.items() if o == "applied"]
    if len(winner_labels) == 1:
        assert owners[winner_labels[0]] > 0
    # Rerun converges: apply one side again, then nothing is left to do.
    again = run_cli("apply", str(a), "-s", url, "--auto-approve")
    assert again.code == 0, again.stderr
    planned = run_cli("plan", str(a), "-s", url, "--detailed-exitcode")
    assert planned.code == 0 and "No changes." in planned.stdout
    assert_exactly(asyncio.run(read_live(url)), sides["a"])
    if not raced:
        print(f"  round {i}: the applies did not overlap; run again")
    return (("saved plans" if saved else "manifests"), outcome["a"], outcome["b"]), raced


def _race(server: EmbeddedServer, tmp_path: Path, cli: type[CliProcess], rounds: int) -> None:
    url = server.url
    asyncio.run(_bucket_with_history(url))
    base = write_manifest(tmp_path / "base", manifest_text(KEYS // 2, variant="base"))
    assert run_cli("apply", str(base), "-s", url, "--auto-approve").code == 0
    seen: dict[str, dict[str, ScheduledTask]] = {"base": desired_tasks(base)}
    outcomes: Counter[tuple[str, str, str]] = Counter()
    attempts = 0
    while sum(outcomes.values()) < rounds:
        # A miss is timing on a busy machine; many in a row mean the race is not being made.
        assert attempts < rounds + 3, f"the applies overlapped in {sum(outcomes.values())} of {attempts} rounds"
        result, raced = _race_round(server, tmp_path, cli, attempts, saved=sum(outcomes.values()) % 2 == 0)
        seen[f"a{attempts}"] = desired_tasks(tmp_path / f"a{attempts}")
        seen[f"b{attempts}"] = desired_tasks(tmp_path / f"b{attempts}")
        attempts += 1
        if raced:
            outcomes[result] += 1
    # Over all rounds: no record ever stored was anybody else's, none was a Put over a live key.
    history = asyncio.run(_history(url))
    _check_history(history, seen)
    writes = sum(len(w) for w in history.values())
    print(
        f"racing applies: {rounds} rounds in flight together ({attempts} run), outcomes (mode, a, b) "
        f"{dict(outcomes)}, {writes} record writes checked"
    )


@pytest.mark.timeout(300)  # room for the retried rounds when the machine is busy
def test_two_racing_applies_lose_nothing(nats_server, tmp_path, cli):
    _race(nats_server, tmp_path, cli, repeat(2))


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_two_racing_applies_lose_nothing_repeatedly(nats_server, tmp_path, cli):
    _race(nats_server, tmp_path, cli, repeat(25))

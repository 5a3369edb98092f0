"""`ajc-gitops status` against a real nats-server: slots found by deterministic ID, a late
(catch-up) fire, a missed slot, a Go-created task matched by the bounded scan, the schedule
states, the leader, and --fail-on."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import timedelta

import pytest

from ajc_gitops.codec import encode_marker, encode_member, encode_task, record_digest
from ajc_gitops.commands.options import StatusOptions
from ajc_gitops.commands.status import EXIT_ALERT
from ajc_gitops.commands.status import run as status_run
from ajc_gitops.connect.options import ConnectFlags
from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.gowire.godate import from_unix
from ajc_gitops.gowire.ksuid import new_ksuid
from ajc_gitops.model import GoTime, Marker, MemberRecord, ScheduledTask, Task
from ajc_gitops.names import ELECTION_KEY, ELECTIONS_BUCKET, MARKER_PREFIX, SCHEDULE_PREFIX, TASK_SUBJECT, member_key
from ajc_gitops.plan.suspend import suspended_marker
from ajc_gitops.scheduler.status import StatusQuery, read_status
from ajc_gitops.scheduler.tasks import build_task, manual_task_id
from ajc_gitops.status.model import ScheduleState, SlotKind
from ajc_gitops.store import Store, enqueue_many
from tests.scheduler_support import options, prepare, record

NS = 1_000_000_000
HOURLY = "0 * * * *"


def _hours_back(now_s: int, n: int) -> int:
    """The n-th full hour at or before now (0 = the latest)."""
    return now_s - now_s % 3600 - n * 3600


async def _publish_raw(store: Store, task: Task) -> None:
    """A record as another writer (a Go scheduler, a Go worker) stores it."""
    await store.client.request(TASK_SUBJECT.format(task.id), encode_task(task), timeout=3)


async def _setup(url: str, now_s: int) -> dict[str, int]:
    await prepare(url)
    created = (now_s - 30 * 3600) * NS
    async with Store.open(options(url)) as store:
        managed = record("managed", HOURLY, created_ns=created)
        await store.put_raw(SCHEDULE_PREFIX + "managed", managed)
        await store.put_raw(MARKER_PREFIX + "managed", encode_marker(Marker("managed", record_digest(managed), "", "")))
        drifted = record("drifted", HOURLY, created_ns=created)
        await store.put_raw(SCHEDULE_PREFIX + "drifted", drifted)
        await store.put_raw(MARKER_PREFIX + "drifted", encode_marker(Marker("drifted", "0" * 64, "", "")))
        await store.put_raw(SCHEDULE_PREFIX + "gofired", record("gofired", HOURLY, created_ns=created))
        await store.put_raw(SCHEDULE_PREFIX + "broken", record("broken", "61 * * * *", created_ns=created))
        await store.put_raw(member_key("py-a"), encode_member(MemberRecord("py-a", 1, leading_since_ns=now_s * NS - 5)))
        await store.put_raw(ELECTION_KEY, b"py-a", bucket=ELECTIONS_BUCKET)

        st = ScheduledTask("managed", HOURLY, "DEFAULT", "t:managed", created_at=GoTime(created))
        slots = {"on_time": _hours_back(now_s, 1), "late": _hours_back(now_s, 2), "failed": _hours_back(now_s, 4)}
        fires = [
            build_task(st, from_unix(slots["on_time"]), created=GoTime(slots["on_time"] * NS + NS // 10)),
            build_task(st, from_unix(slots["late"]), created=GoTime((slots["late"] + 120) * NS)),
            build_task(st, from_unix(slots["failed"]), created=GoTime(slots["failed"] * NS)),
        ]
        outcomes = await enqueue_many(store, fires)
        assert [o.status for o in outcomes] == ["enqueued"] * 3
        # A Go worker ran two of them.
        await _publish_raw(store, dataclasses.replace(fires[0], state="complete", tries=1))
        await _publish_raw(store, dataclasses.replace(fires[2], state="terminated", tries=1, last_err="boom"))
        # A Go leader fired gofired's latest slot: a random KSUID, created at the instant.
        go_slot = _hours_back(now_s, 1)
        go_task = Task(new_ksuid(go_slot), "t:gofired", "DEFAULT", b"null", 10, GoTime(go_slot * NS + NS // 5))
        await _publish_raw(store, go_task)
    return slots | {"go": go_slot}


async def test_status_reports_each_slot(nats_server: EmbeddedServer) -> None:
    now_s = int(time.time())
    slots = await _setup(nats_server.url, now_s)
    async with Store.open(options(nats_server.url)) as store:
        report = await read_status(store, StatusQuery(since=timedelta(hours=6)), now_ns=now_s * NS)
    by_name = {s.name: s for s in report.schedules}
    assert {n: s.state for n, s in by_name.items()} == {
        "managed": ScheduleState.ACTIVE,
        "drifted": ScheduleState.DRIFTED,
        "gofired": ScheduleState.HAND_MADE,
        "broken": ScheduleState.INVALID,
    }
    assert report.leader.holder == "py-a" and report.leader.kind == "ajc-gitops"
    assert report.leader.since_ns == now_s * NS - 5

    managed = {slot.instant_s: slot for slot in by_name["managed"].slots}
    assert len(managed) == 6  # the 6 full hours in the window
    assert len(by_name["managed"].next_fires) == 3
    on_time, late, failed = managed[slots["on_time"]], managed[slots["late"]], managed[slots["failed"]]
    assert on_time.kind is SlotKind.FIRED and on_time.task is not None
    assert (on_time.task.state, on_time.task.tries, on_time.task.found_by) == ("complete", 1, "id")
    assert late.kind is SlotKind.LATE and late.catchup and late.lag_s == pytest.approx(120)
    assert failed.task is not None and failed.task.failed and failed.task.last_err == "boom"
    missed = [s for s in managed.values() if s.kind is SlotKind.MISSED]
    assert len(missed) == 3 and report.total(SlotKind.UNKNOWN) == 0

    go = {slot.instant_s: slot for slot in by_name["gofired"].slots}[slots["go"]]
    assert go.kind is SlotKind.FIRED and go.task is not None and go.task.found_by == "scan"
    assert by_name["broken"].slots == ()


@pytest.mark.parametrize("maker", ["trigger", "go"])
async def test_a_triggered_task_is_not_taken_for_a_missed_slots_fire(nats_server: EmbeddedServer, maker: str) -> None:
    """A task made by `trigger` a moment after a slot that never fired is the trigger's, not
    the slot's: the slot stays missed. The same task under a Go leader's random ID is the
    slot's fire."""
    now_s = int(time.time())
    await prepare(nats_server.url)
    created = (now_s - 30 * 3600) * NS
    slot = _hours_back(now_s, 2)
    made_ns = slot * NS + NS // 5
    task_id = manual_task_id(made_ns, b"\x07" * 8) if maker == "trigger" else new_ksuid(slot)
    async with Store.open(options(nats_server.url)) as store:
        value = record("nightly", HOURLY, created_ns=created)
        await store.put_raw(SCHEDULE_PREFIX + "nightly", value)
        await store.put_raw(MARKER_PREFIX + "nightly", encode_marker(Marker("nightly", record_digest(value), "", "")))
        await _publish_raw(store, Task(task_id, "t:nightly", "DEFAULT", b"null", 10, GoTime(made_ns)))
        report = await read_status(store, StatusQuery(since=timedelta(hours=4)), now_ns=now_s * NS)
    (status,) = report.schedules
    at_slot = {s.instant_s: s for s in status.slots}[slot]
    if maker == "trigger":
        assert at_slot.kind is SlotKind.MISSED and at_slot.task is None
    else:
        assert at_slot.kind is SlotKind.FIRED and at_slot.task is not None and at_slot.task.id == task_id


async def test_reading_the_window_in_one_pass_gives_the_lookups_report(nats_server: EmbeddedServer) -> None:
    """--read stream: the same report as a lookup per slot, fired, late, failed, missed and
    Go-created slots alike."""
    now_s = int(time.time())
    await _setup(nats_server.url, now_s)
    async with Store.open(options(nats_server.url)) as store:
        by_id = await read_status(store, StatusQuery(since=timedelta(hours=6)), now_ns=now_s * NS)
        in_one_pass = await read_status(store, StatusQuery(since=timedelta(hours=6), read="stream"), now_ns=now_s * NS)
    assert in_one_pass == by_id
    assert by_id.total(SlotKind.FIRED) and by_id.total(SlotKind.LATE) and by_id.total(SlotKind.MISSED)


async def test_a_short_scan_says_unknown_not_missed(nats_server: EmbeddedServer) -> None:
    now_s = int(time.time())
    await _setup(nats_server.url, now_s)
    async with Store.open(options(nats_server.url)) as store:
        report = await read_status(store, StatusQuery(since=timedelta(hours=6), scan_limit=1), now_ns=now_s * NS)
    assert report.total(SlotKind.MISSED) == 0
    assert report.total(SlotKind.UNKNOWN) > 0
    assert any("could not be told" in n for n in report.notes)


async def test_suspended_schedules_and_queues_without_a_stream_are_shown(nats_server: EmbeddedServer) -> None:
    now_s = int(time.time())
    await _setup(nats_server.url, now_s)
    created = (now_s - 3600) * NS
    async with Store.open(options(nats_server.url)) as store:
        await store.put_raw(SCHEDULE_PREFIX + "lost", record("lost", HOURLY, created_ns=created, queue="NOWHERE"))
        kept = record("paused", HOURLY, created_ns=created, queue="BATCH")
        held = suspended_marker(
            "paused", kept, "s.yaml:3:5", "2026-12-01T00:00:00Z", sensitive=False, reason="migration", since=None
        )
        await store.put_raw(MARKER_PREFIX + "paused", held)  # suspended: the marker keeps it, no record
        report = await read_status(store, StatusQuery(since=timedelta(hours=2)), now_ns=now_s * NS)
    by_name = {s.name: s for s in report.schedules}
    assert by_name["lost"].queue_missing
    assert not by_name["managed"].queue_missing  # DEFAULT has its stream (enqueue made it)
    paused = by_name["paused"]
    assert paused.state is ScheduleState.SUSPENDED
    assert paused.reason == "migration (since 2026-12-01T00:00:00Z)"
    assert (paused.queue, paused.slots) == ("BATCH", ())


def test_fail_on_gives_an_exit_code(nats_server: EmbeddedServer, capsys: pytest.CaptureFixture[str]) -> None:
    now_s = int(time.time())
    asyncio.run(_setup(nats_server.url, now_s))
    flags = ConnectFlags(server=nats_server.url)
    base = StatusOptions(names=("managed",), connect=flags, since="6h")
    assert status_run(base, now_ns=now_s * NS) == 0
    assert status_run(dataclasses.replace(base, fail_on=("missed",)), now_ns=now_s * NS) == EXIT_ALERT
    assert status_run(dataclasses.replace(base, fail_on=("failed",)), now_ns=now_s * NS) == EXIT_ALERT
    assert "1 failed task(s)" in capsys.readouterr().err
    # The failed task's slot (4 hours back) is outside a 90-minute window.
    assert status_run(dataclasses.replace(base, since="90m", fail_on=("failed",)), now_ns=now_s * NS) == 0
    json_out = dataclasses.replace(base, output_format="json")
    capsys.readouterr()
    assert status_run(json_out, now_ns=now_s * NS) == 0
    assert '"format_version": 1' in capsys.readouterr().out
    assert status_run(dataclasses.replace(base, names=("nope",)), now_ns=now_s * NS) == 1

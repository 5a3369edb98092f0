"""Slot verdicts and the pairing of Go-created tasks with slots (status/classify.py)."""

from __future__ import annotations

import datetime
import json

from ajc_gitops.codec import decode_task, encode_task
from ajc_gitops.gowire.godate import from_unix
from ajc_gitops.model import GoTime, ScheduledTask, Task
from ajc_gitops.render.status import STATUS_RENDERERS
from ajc_gitops.scheduler.tasks import slot_task_ids, task_id_for
from ajc_gitops.status.classify import PENDING_S, Candidate, found, match_scanned, not_found
from ajc_gitops.status.model import (
    LeaderStatus,
    ScheduleState,
    ScheduleStatus,
    SlotKind,
    StatusReport,
)

NS = 1_000_000_000
SLOT = 1_796_450_400  # a full hour


def task(created_s: float, *, type_: str = "t:a", queue: str = "Q", state: str = "new", tid: str = "x") -> Task:
    return Task(tid, type_, queue, b"null", 10, GoTime(int(created_s * NS)), state=state)  # type: ignore[arg-type]


def test_a_task_created_within_the_grace_is_on_time_and_later_is_a_catch_up() -> None:
    assert found(SLOT, task(SLOT + 0.3), "id").kind is SlotKind.FIRED
    late = found(SLOT, task(SLOT + 90), "id")
    assert late.kind is SlotKind.LATE and late.catchup and late.lag_s == 90


def test_failed_states_are_the_ones_that_end_without_success() -> None:
    for state, failed in [("terminated", True), ("expired", True), ("queue_error", True), ("complete", False)]:
        slot = found(SLOT, task(SLOT, state=state), "id")
        assert slot.task is not None and slot.task.failed is failed


def test_a_slot_without_task_is_pending_then_missed_or_unknown() -> None:
    assert not_found(SLOT, SLOT + PENDING_S - 1, scan_complete=True).kind is SlotKind.PENDING
    assert not_found(SLOT, SLOT + 3600, scan_complete=True).kind is SlotKind.MISSED
    assert not_found(SLOT, SLOT + 3600, scan_complete=False).kind is SlotKind.UNKNOWN
    assert not_found(SLOT, SLOT + 3600, scan_complete=True, ambiguous=True).kind is SlotKind.UNKNOWN


def test_a_go_task_matches_the_slot_of_its_type_queue_and_time() -> None:
    a = [Candidate("a", "t:a", "Q", SLOT), Candidate("a", "t:a", "Q", SLOT + 3600)]
    b = [Candidate("b", "t:b", "Q", SLOT)]
    matched, ambiguous = match_scanned(a + b, [task(SLOT + 0.2), task(SLOT + 3600 + 40), task(SLOT, queue="R")])
    assert set(matched) == {("a", SLOT)} and not ambiguous  # +40 s is past the tolerance


def test_two_schedules_alike_make_their_slots_unknown_not_guessed() -> None:
    cands = [Candidate("a", "t:a", "Q", SLOT), Candidate("b", "t:a", "Q", SLOT)]
    matched, ambiguous = match_scanned(cands, [task(SLOT + 1)])
    assert not matched and ambiguous == {("a", SLOT), ("b", SLOT)}


def test_a_per_second_go_task_is_the_slot_of_its_creation_second_not_the_next() -> None:
    cands = [Candidate("a", "t:a", "Q", SLOT + k) for k in range(4)]
    first, second = task(SLOT + 0.001, tid="t0"), task(SLOT + 1.002, tid="t1")
    matched, ambiguous = match_scanned(cands, [first, second])
    assert matched == {("a", SLOT): first, ("a", SLOT + 1): second} and not ambiguous


def test_a_task_before_a_slot_never_matches_it() -> None:
    matched, _ = match_scanned([Candidate("a", "t:a", "Q", SLOT)], [task(SLOT - 0.5)])
    assert not matched


def test_a_task_of_a_decided_slot_decides_no_earlier_candidate() -> None:
    """Its own slot found by ID, too recent, or past a backfill's --to: not the window's last slot's."""
    cands = [Candidate("a", "t:a", "Q", SLOT)]
    late = task(SLOT + 1.001)
    matched, ambiguous = match_scanned(cands, [late], decided=[Candidate("a", "t:a", "Q", SLOT + 1)])
    assert not matched and not ambiguous
    assert match_scanned(cands, [late])[0] == {("a", SLOT): late}  # without it, the slot before takes it


def test_an_every_schedules_go_task_is_the_slot_of_its_period() -> None:
    """Go runs ``@every 5m`` from its own start, so its fire lands anywhere in our lattice's
    period: the period's slot is its, and the fire is on time, at no lag that can be told."""
    every = [Candidate("e", "t:a", "Q", SLOT + k * 300, 300) for k in range(3)]
    go = task(SLOT + 300 + 217)
    matched, ambiguous = match_scanned(every, [go])
    assert matched == {("e", SLOT + 300): go} and not ambiguous
    slot = found(SLOT + 300, go, "scan", own_clock=True)
    assert slot.kind is SlotKind.FIRED and slot.lag_s is None and slot.note
    # A cron spec's slot keeps the 30 s window: the same task 217 s late is no fire of it.
    assert match_scanned([Candidate("c", "t:a", "Q", SLOT + 300)], [go]) == ({}, set())
    # Windows are per schedule: a spec slot nearby does not widen, or share, the @every match.
    spec = Candidate("c", "t:a", "Q", SLOT + 300 + 100)  # 117 s before the task
    matched, ambiguous = match_scanned([*every, spec], [go])
    assert matched == {("e", SLOT + 300): go} and not ambiguous


def test_batch_ids_are_the_scheduler_ids() -> None:
    seconds = [SLOT, SLOT + 3600, SLOT + 7200]
    assert slot_task_ids("nightly-export", seconds) == [task_id_for("nightly-export", from_unix(s)) for s in seconds]


def test_decode_task_reads_what_the_codec_writes_and_folds_key_case() -> None:
    st = ScheduledTask("a", "@hourly", "Q", "t:a")
    from ajc_gitops.scheduler.tasks import build_task

    t = build_task(st, from_unix(SLOT), created=GoTime(SLOT * NS + 123_456_789))
    back = decode_task(encode_task(t))
    assert back is not None and (back.id, back.state, back.created) == (t.id, "new", t.created)
    odd = json.dumps({"ID": "y", "State": "complete", "Tries": 2, "created": "2026-12-05T01:00:00.5Z"}).encode()
    folded = decode_task(odd)
    assert folded is not None and (folded.id, folded.state, folded.tries) == ("y", "complete", 2)
    assert (
        folded.created.unix_ns == int(datetime.datetime(2026, 12, 5, 1, tzinfo=datetime.UTC).timestamp()) * NS + NS // 2
    )
    assert decode_task(b"[]") is None and decode_task(b'{"tries":"x"}') is None


def _report() -> StatusReport:
    slots = (found(SLOT, task(SLOT, state="terminated"), "id"), not_found(SLOT + 3600, SLOT + 7200, scan_complete=True))
    schedule = ScheduleStatus("a", ScheduleState.ACTIVE, "", "0 * * * *", "Q", "t:a", (SLOT + 7200,), slots)
    return StatusReport("nats://x", SLOT + 7200, SLOT - 1, LeaderStatus("py-a", "ajc-gitops", SLOT * NS), (schedule,))


def test_renderers_show_the_problem_slots() -> None:
    text = STATUS_RENDERERS["text"](_report())
    assert "Leader: py-a (ajc-gitops)" in text and "missed" in text and "terminated" in text
    doc = json.loads(STATUS_RENDERERS["json"](_report()))
    assert doc["format_version"] == 1 and doc["totals"]["missed"] == 1 and doc["totals"]["failed"] == 1
    assert "| `a` | active |" in STATUS_RENDERERS["markdown"](_report())


def test_a_schedule_whose_queue_has_no_stream_says_how_to_create_it() -> None:
    import dataclasses

    report = _report()
    missing = dataclasses.replace(report, schedules=(dataclasses.replace(report.schedules[0], queue_missing=True),))
    assert "ajc queue add Q" in STATUS_RENDERERS["text"](missing)
    assert json.loads(STATUS_RENDERERS["json"](missing))["schedules"][0]["queue_missing"] is True
    assert "ajc queue add" not in STATUS_RENDERERS["text"](report)


def test_the_created_time_is_read_as_gos_parser_reads_it() -> None:
    import random

    from ajc_gitops.gowire.gotime import GoTimeParseError, format_rfc3339nano, parse_rfc3339

    def created(text: str) -> GoTime | None:
        got = decode_task(json.dumps({"id": "x", "created": text}).encode())
        assert got is not None
        return None if got.created.is_zero else got.created

    rng = random.Random(12)
    for _ in range(5000):
        text = format_rfc3339nano(GoTime(rng.randrange(-62_135_596_800 * NS + NS, 253_402_300_799 * NS)))
        assert created(text) == parse_rfc3339(text), text
    for odd in ["2026-02-31T00:00:00Z", "2026-01-01 00:00:00Z", "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+01:00"]:
        try:
            want: GoTime | None = parse_rfc3339(odd)
        except GoTimeParseError:
            want = None
        assert created(odd) == want, odd

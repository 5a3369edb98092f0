"""Deterministic task IDs and the Task a fire builds (scheduler/tasks.py, contract §4)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ajc_gitops.codec import encode_task
from ajc_gitops.gowire.gotime import parse_rfc3339
from ajc_gitops.gowire.ksuid import parse_ksuid
from ajc_gitops.model import NANOS_PER_SECOND, GoTime, ScheduledTask
from ajc_gitops.scheduler.tasks import InvalidTaskError, build_task, fire_record, task_id_for, task_state_event

SLOT = datetime(2026, 8, 1, tzinfo=UTC)
CREATED = parse_rfc3339("2026-08-01T00:00:00.000123456Z")


def schedule(**changes: object) -> ScheduledTask:
    fields: dict[str, object] = {
        "name": "EMAIL_MONTHLY_UPDATE",
        "schedule": "0 0 1 * *",
        "queue": "EMAIL",
        "task_type": "email:monthly",
        "payload": b'"{\\"a\\":1}"',
        "deadline_ns": 12 * 3600 * NANOS_PER_SECOND,
        "max_tries": 10,
        "created_at": parse_rfc3339("2026-07-22T08:39:24.1234567Z"),
    }
    fields.update(changes)
    return ScheduledTask(**fields)  # type: ignore[arg-type]


# -- IDs ---------------------------------------------------------------------------------------


def test_task_id_is_a_valid_ksuid_of_the_fire_second() -> None:
    task_id = task_id_for("EMAIL_MONTHLY_UPDATE", SLOT)
    assert len(task_id) == 27 and task_id.isalnum() and task_id.isascii()
    seconds, payload = parse_ksuid(task_id)
    assert seconds == int(SLOT.timestamp())
    assert len(payload) == 16


def test_task_id_recipe_is_pinned() -> None:
    # The recipe is a wire contract between scheduler versions (module docstring): this value
    # must never change, or a mixed-version group fires a slot twice.
    name = b"EMAIL_MONTHLY_UPDATE"
    instant_ns = int(SLOT.timestamp()) * NANOS_PER_SECOND
    digest = hashlib.sha256(
        b"ajc-gitops/task-id/v1\x00" + len(name).to_bytes(4, "big") + name + instant_ns.to_bytes(8, "big", signed=True)
    ).digest()
    assert parse_ksuid(task_id_for("EMAIL_MONTHLY_UPDATE", SLOT))[1] == digest[:16]
    assert task_id_for("EMAIL_MONTHLY_UPDATE", SLOT) == "3HI4la3bbA79WsZJ7qqcHwhC6j3"


def test_task_id_depends_on_name_and_instant_only() -> None:
    same = task_id_for("a", SLOT)
    assert task_id_for("a", SLOT.astimezone(timezone(timedelta(hours=5)))) == same  # same instant
    assert task_id_for("b", SLOT) != same
    assert task_id_for("a", SLOT + timedelta(seconds=1)) != same
    assert task_id_for("a", SLOT + timedelta(microseconds=1)) != same
    # Length prefix: no (name, instant) pair can collide with a longer name.
    assert task_id_for("a\x00", SLOT) != same


def test_task_ids_sort_by_slot_second() -> None:
    ids = [task_id_for("s", SLOT + timedelta(seconds=s)) for s in (0, 1, 60, 3600, 86400)]
    assert ids == sorted(ids)


def test_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        task_id_for("a", datetime(2026, 8, 1))


# -- the Task --------------------------------------------------------------------------------


def test_fire_builds_gos_task_with_deadline_from_the_slot() -> None:
    task = build_task(schedule(), SLOT, created=CREATED)
    assert task.id == task_id_for("EMAIL_MONTHLY_UPDATE", SLOT)
    assert (task.type, task.queue, task.state, task.tries, task.last_err) == ("email:monthly", "EMAIL", "new", 0, "")
    assert task.payload == b'"IntcImFcIjoxfSI="'
    assert task.deadline == GoTime(int(SLOT.timestamp()) * NANOS_PER_SECOND + 12 * 3600 * NANOS_PER_SECOND)
    assert task.created == CREATED
    record = json.loads(encode_task(task))
    assert record["deadline"] == "2026-08-01T12:00:00Z"
    assert record["created"] == "2026-08-01T00:00:00.000123456Z"


@pytest.mark.parametrize(("stored", "expected"), [(0, 10), (-3, 10), (1, 1), (25, 25)])
def test_max_tries_defaults_to_ten(stored: int, expected: int) -> None:
    assert build_task(schedule(max_tries=stored), SLOT, created=CREATED).max_tries == expected


@pytest.mark.parametrize("deadline_ns", [0, -NANOS_PER_SECOND])
def test_no_deadline_unless_positive(deadline_ns: int) -> None:
    task = build_task(schedule(deadline_ns=deadline_ns), SLOT, created=CREATED)
    assert task.deadline is None
    assert b'"deadline"' not in encode_task(task)


def test_nil_payload_becomes_null_bytes() -> None:
    assert build_task(schedule(payload=None), SLOT, created=CREATED).payload == b"null"


def test_invalid_task_type_fails_as_new_task_does() -> None:
    with pytest.raises(InvalidTaskError, match=r"^task type is invalid: must match \^\[a-zA-Z0-9_:-\]\+\$$"):
        build_task(schedule(task_type="bad type"), SLOT, created=CREATED)
    with pytest.raises(InvalidTaskError):
        build_task(schedule(task_type="x\n"), SLOT, created=CREATED)  # Go's $ is end of text


def test_same_slot_builds_the_same_record_apart_from_created() -> None:
    first, first_bytes = fire_record(schedule(), SLOT, created=CREATED)
    second, second_bytes = fire_record(schedule(), SLOT, created=GoTime(CREATED.unix_ns + 5 * NANOS_PER_SECOND))
    assert first.id == second.id and first.deadline == second.deadline
    assert first_bytes.replace(b"00:00:00.000123456Z", b"") == second_bytes.replace(b"00:00:05.000123456Z", b"")


def test_state_event_for_the_fire() -> None:
    task = build_task(schedule(), SLOT, created=CREATED)
    event = json.loads(task_state_event(task, event_id="3HI4lcrFYnZgRh15YfDnnI6UIfv", now_ns=CREATED.unix_ns + 10**6))
    assert event["task_id"] == task.id
    assert event["state"] == "new"
    assert event["queue"] == "EMAIL"
    assert event["task_age"] == CREATED.unix_ns + 10**6 - (CREATED.unix_ns // 10**6 * 10**6)


def test_manual_ids_are_ksuids_of_the_trigger_second_and_never_a_slots_id():
    from ajc_gitops.gowire.godate import from_unix
    from ajc_gitops.gowire.ksuid import new_ksuid, parse_ksuid
    from ajc_gitops.scheduler.tasks import is_manual_task_id, manual_task_id, slot_task_ids, task_id_for

    now_ns = 1_796_450_400 * 1_000_000_000
    one = manual_task_id(now_ns, b"\x01" * 8)
    assert one == manual_task_id(now_ns, b"\x01" * 8)  # the recipe is a function of its inputs
    assert one != manual_task_id(now_ns, b"\x02" * 8)  # the nonce tells two triggers apart
    assert parse_ksuid(one)[0] == 1_796_450_400
    assert one != task_id_for("nightly", from_unix(1_796_450_400))  # a different ID space from the slot's
    # Recognisable as a trigger's, unlike a slot's or a Go leader's (random) ID.
    assert is_manual_task_id(one) and is_manual_task_id(manual_task_id(now_ns + 7, bytes(range(8))))
    assert not any(map(is_manual_task_id, slot_task_ids("nightly", range(1_796_450_400, 1_796_460_400, 10))))
    assert not any(is_manual_task_id(new_ksuid(1_796_450_400)) for _ in range(1000))
    assert not is_manual_task_id("not-a-ksuid")
    with pytest.raises(ValueError, match="8 random bytes"):
        manual_task_id(now_ns, b"\x01" * 16)

"""From (schedule, fire instant) to the Task a fire creates: a deterministic ID and Go's
record (contract §4). Pure: no I/O and no clock; the caller passes the creation time.

Exactly once across failover rests on the ID. Go gives each task a random KSUID (§4.3), so a
second attempt at the same fire (a new leader catching up, a restarted one, a retry) would be
a second task. Here the ID is a function of the schedule name and the fire instant only, so
any second attempt targets the same subject ``CHORIA_AJ.T.<id>`` and the tasks stream rejects
it (``Nats-Expected-Last-Subject-Sequence: 0``, §4.4 step 1).

The ID is still a valid KSUID (segmentio/ksuid v1.0.4): its time part is the fire instant's
Unix second, so IDs sort by slot as Go's sort by creation second, and its 16-byte payload is

    SHA-256( b"ajc-gitops/task-id/v1" || 0x00
             || uint32_be(len(name)) || name            (UTF-8, as Go stores it)
             || int64_be(fire instant in Unix ns) )[:16]

This recipe is a wire contract between scheduler versions and processes: changing anything
in it (domain string, field order, widths) lets a mixed-version group fire a slot twice.
A new recipe needs a new domain string *and* a release note. The name is length-prefixed so
no (name, instant) pair can encode like another; the queue, type and spec are deliberately
left out: a schedule replaced by Delete + Create under the same name still fires a given
instant once.

Times: Go sets ``created`` and ``deadline`` from ``time.Now()`` at the fire (§4.1). We base
the ID *and the deadline* on the fire instant, so every attempt at a slot builds the same ID
and the same deadline (a catch-up fire is not given extra time past the slot's own deadline,
which is also why the catch-up window defaults to the deadline, see ``slots.py``), while
``created`` is the real creation time passed in by the caller: Go workers and ``ajc`` show it
as when the task was made, and ``task_age`` in events counts from it.

Manual tasks (``ajc-gitops trigger``) are the same Task with an ID from a second recipe,

    KSUID( time = the trigger's Unix second,
           payload = r || SHA-256( b"ajc-gitops/manual-task-id/v2" || 0x00 || r )[:8] )

with ``r`` 8 random bytes. The payload checks itself, so ``status`` and ``backfill`` tell a
trigger's task from one a Go leader fired (whose IDs are random, §4.3) and never take it for
a missed slot's fire (``is_manual_task_id``); a random KSUID passes the check with
probability 2**-64. A slot's ID looks manual, or equals a manual ID, only as rarely, and even
then the tasks stream refuses the second record, since every task is stored only onto an
empty subject (``Nats-Expected-Last-Subject-Sequence: 0``): a trigger can never replace, or
stand in for, a slot's task. (v1 IDs, a hash of the name, time and 16 random bytes, carried
no check; tasks triggered before v2 are matched like Go's.)
"""

from __future__ import annotations

import datetime
import hashlib
import re
from collections.abc import Sequence

from ajc_gitops.codec import encode_task, encode_task_state_event, task_payload_for_schedule
from ajc_gitops.gowire.godate import GoTimeRangeError, from_unix, to_unix
from ajc_gitops.gowire.gojson import go_bytes
from ajc_gitops.gowire.ksuid import PAYLOAD_LEN, ksuid_from_parts, parse_ksuid
from ajc_gitops.model import GoTime, ScheduledTask, Task

__all__ = [
    "DEFAULT_MAX_TRIES",
    "MANUAL_NONCE_LEN",
    "MANUAL_TASK_ID_DOMAIN",
    "TASK_ID_DOMAIN",
    "InvalidTaskError",
    "build_slot_task",
    "build_task",
    "fire_record",
    "is_manual_task_id",
    "manual_task_id",
    "slot_task_ids",
    "task_id_for",
    "task_state_event",
    "unix_ns",
]

TASK_ID_DOMAIN = b"ajc-gitops/task-id/v1"
MANUAL_TASK_ID_DOMAIN = b"ajc-gitops/manual-task-id/v2"
MANUAL_NONCE_LEN = 8
DEFAULT_MAX_TRIES = 10  # asyncjobs.go DefaultMaxTries
# asyncjobs.go validNameMatcher; Go's `$` is end of text, hence fullmatch.
_GO_VALID_NAME = re.compile(r"[a-zA-Z0-9_:-]+")
_GO_VALID_NAME_TEXT = "^[a-zA-Z0-9_:-]+$"
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MICROS_PER_SECOND = 1_000_000
_NANOS_PER_SECOND = 1_000_000_000


class InvalidTaskError(ValueError):
    """``NewTask`` would fail, so Go creates no task for this fire; ``str()`` is Go's text."""


def unix_ns(instant: datetime.datetime) -> int:
    """An aware datetime as integer Unix nanoseconds (exact: datetimes stop at microseconds)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    delta = instant - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * _MICROS_PER_SECOND + delta.microseconds
    return micros * 1000


def task_id_for(schedule_name: str, instant: datetime.datetime) -> str:
    """The one task ID of ``schedule_name`` firing at ``instant`` (recipe in the module doc)."""
    return _slot_id(_slot_hash(schedule_name), unix_ns(instant), to_unix(instant))


def slot_task_ids(schedule_name: str, instants_s: Sequence[int]) -> list[str]:
    """``task_id_for`` of many whole-second instants of one schedule, sharing the hash of the
    common prefix (``status`` computes hundreds of thousands). Same recipe, same IDs."""
    prefix = _slot_hash(schedule_name)
    return [_slot_id(prefix, second * _NANOS_PER_SECOND, second) for second in instants_s]


def _slot_hash(schedule_name: str) -> hashlib._Hash:
    """The slot recipe's hash over everything but the instant (the part a schedule's slots share)."""
    name = go_bytes(schedule_name)
    return hashlib.sha256(TASK_ID_DOMAIN + b"\x00" + len(name).to_bytes(4, "big") + name)


def _slot_id(prefix: hashlib._Hash, fire_ns: int, unix_s: int) -> str:
    try:
        instant = fire_ns.to_bytes(8, "big", signed=True)
    except OverflowError:  # after 2262-04-11 or before 1677-09-21: the recipe has no int64 for it
        raise GoTimeRangeError(f"fire instant {unix_s} is outside int64 Unix nanoseconds") from None
    h = prefix.copy()
    h.update(instant)
    return ksuid_from_parts(unix_s, h.digest()[:PAYLOAD_LEN])


def manual_task_id(now_ns: int, nonce: bytes) -> str:
    """A manual fire's ID (recipe in the module doc); ``nonce`` is 8 random bytes."""
    if len(nonce) != MANUAL_NONCE_LEN:
        raise ValueError(f"a manual task ID needs {MANUAL_NONCE_LEN} random bytes, not {len(nonce)}")
    return ksuid_from_parts(now_ns // _NANOS_PER_SECOND, nonce + _manual_check(nonce))


def is_manual_task_id(task_id: str) -> bool:
    """Whether ``task_id`` is a KSUID that ``manual_task_id`` made (any schedule, any time)."""
    try:
        _, payload = parse_ksuid(task_id)
    except ValueError:
        return False
    nonce = payload[:MANUAL_NONCE_LEN]
    return payload[MANUAL_NONCE_LEN:] == _manual_check(nonce)


def _manual_check(nonce: bytes) -> bytes:
    return hashlib.sha256(MANUAL_TASK_ID_DOMAIN + b"\x00" + nonce).digest()[: PAYLOAD_LEN - MANUAL_NONCE_LEN]


def build_task(
    schedule: ScheduledTask, instant: datetime.datetime, *, created: GoTime, task_id: str | None = None
) -> Task:
    """The Task Go's ``handlerFactory`` would create for this fire (§4.1), with our ID and a
    deadline counted from the fire instant; raises ``InvalidTaskError`` where ``NewTask`` fails
    (an invalid task type: Go's scheduler validates nothing earlier, §2.4)."""
    _check_task_type(schedule.task_type)
    task_id = task_id if task_id is not None else task_id_for(schedule.name, instant)
    return _task(schedule, task_id, unix_ns(instant), created)


_MIN_S = -62_135_596_800  # 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: what from_unix accepts
_MAX_S = 253_402_300_799
_VALID_TYPES: set[str] = set()  # task types that passed Go's check (a leader has a few)
_VALID_TYPES_MAX = 4096


def build_slot_task(schedule: ScheduledTask, slot_s: int, *, created: GoTime) -> Task:
    """``build_task(schedule, from_unix(slot_s), created=created)`` for a whole-second slot,
    without the datetime round trips: a burst builds 10,000 of these on the fire loop. The
    same Task (properties check it), the same errors."""
    if not _MIN_S <= slot_s <= _MAX_S:
        from_unix(slot_s)  # raises GoTimeRangeError, first, as build_task's caller would have
    _check_task_type(schedule.task_type)
    fire_ns = slot_s * _NANOS_PER_SECOND
    return _task(schedule, _slot_id(_slot_hash(schedule.name), fire_ns, slot_s), fire_ns, created)


def _check_task_type(task_type: str) -> None:
    """``NewTask``'s check of the type; the types that passed are remembered (a few per leader)."""
    if task_type in _VALID_TYPES:
        return
    if not _GO_VALID_NAME.fullmatch(task_type):
        raise InvalidTaskError(f"task type is invalid: must match {_GO_VALID_NAME_TEXT}")
    if len(_VALID_TYPES) < _VALID_TYPES_MAX:
        _VALID_TYPES.add(task_type)


def _task(schedule: ScheduledTask, task_id: str, fire_ns: int, created: GoTime) -> Task:
    return Task(
        id=task_id,
        type=schedule.task_type,
        queue=schedule.queue,
        payload=task_payload_for_schedule(schedule.payload),
        max_tries=schedule.max_tries if schedule.max_tries > 0 else DEFAULT_MAX_TRIES,
        created=created,
        deadline=GoTime(fire_ns + schedule.deadline_ns) if schedule.deadline_ns > 0 else None,
    )


def fire_record(schedule: ScheduledTask, instant: datetime.datetime, *, created: GoTime) -> tuple[Task, bytes]:
    """``build_task`` plus its stored bytes (the body published to ``CHORIA_AJ.T.<id>``)."""
    task = build_task(schedule, instant, created=created)
    return task, encode_task(task)


def task_state_event(task: Task, *, event_id: str, now_ns: int) -> bytes:
    """The task_state event for ``task`` as published right after storing it (§4.4 step 2);
    ``event_id`` is a fresh random KSUID (Go's are random too) of the current second."""
    return encode_task_state_event(task, event_id=event_id, now_ns=now_ns)

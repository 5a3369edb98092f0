"""Go-exact JSON for what a fire writes: the Task record (contract §4.2), the task_state and
leader_elected events (§4.4 step 2, §5) and the work-queue item (§4.4 step 3).

Split from :mod:`ajc_gitops.codec` only for size; ``codec`` re-exports everything here, so it
stays the one codec. Encoding only: nothing in ajc-gitops reads tasks back except tests.
This module must not import ``codec`` (``codec`` imports it at its end).
"""

from __future__ import annotations

import base64
import json
import re

from . import gojson
from .gotime import format_rfc3339nano
from .ksuid import parse_ksuid
from .model import NANOS_PER_SECOND, GoTime, Task

__all__ = [
    "LEADER_ELECTED_EVENT_TYPE",
    "TASK_STATE_EVENT_TYPE",
    "decode_task_progress",
    "encode_leader_elected_event",
    "encode_task",
    "encode_task_state_event",
    "encode_work_item",
    "go_round_ms",
    "task_payload_for_schedule",
]

# lifecycle.go
TASK_STATE_EVENT_TYPE = "io.choria.asyncjobs.v1.task_state"
LEADER_ELECTED_EVENT_TYPE = "io.choria.asyncjobs.v1.leader_elected"
_NANOS_PER_MS = 1_000_000
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


# Printable ASCII that Go's encoder writes as is (no quote, backslash or HTML escape): IDs,
# types, queues and states nearly always are, and skip the byte-by-byte encoder (a fire
# encodes eleven strings, so this matters at 10,000 fires a second).
_PLAIN = re.compile(r"[ !#-%'-;=?-\[\]-~]*")


def _string(value: str) -> bytes:
    if _PLAIN.fullmatch(value):
        return b'"' + value.encode() + b'"'
    return gojson.encode_string(gojson.go_bytes(value))


def _time(t: GoTime) -> bytes:
    # Time.MarshalJSON; only out-of-range years fail, and a fire is never near those.
    return b'"' + format_rfc3339nano(t).encode() + b'"'


def _int(value: int) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise ValueError(f"{value} does not fit Go's int")
    return str(value).encode()


def _bytes_field(value: bytes | None) -> bytes:
    # json.Marshal of a []byte: nil is null, anything else padded standard base64 in a string.
    return b"null" if value is None else b'"' + base64.b64encode(value) + b'"'


def task_payload_for_schedule(stored: bytes | None) -> bytes:
    """``Task.Payload`` of a fired schedule: Go passes the stored ``[]byte`` to ``NewTask`` as
    an ``any``, which ``json.Marshal``s it again (contract §4.2, §8 item 8). A nil slice in an
    interface is not a nil interface, so nil becomes the 4 bytes ``null``; ``b""`` becomes
    ``""`` (2 bytes); bytes B become ``"<base64(B)>"``. Never ``None``."""
    return _bytes_field(stored)


def encode_task(task: Task) -> bytes:
    """``json.Marshal(task)`` for a scheduler-made Task: Go's key order, ``deadline`` and
    ``last_err`` omitted when unset, the other omitempty keys never present (§4.2)."""
    parts = [
        b'{"id":', _string(task.id),
        b',"type":', _string(task.type),
        b',"queue":', _string(task.queue),
        b',"payload":', _bytes_field(task.payload),
    ]  # fmt: skip
    if task.deadline is not None:  # *time.Time, omitempty: a set pointer is always written
        parts += [b',"deadline":', _time(task.deadline)]
    parts += [
        b',"max_tries":', _int(task.max_tries),
        b',"state":', _string(task.state),
        b',"created":', _time(task.created),
        b',"tries":', _int(task.tries),
    ]  # fmt: skip
    if task.last_err:
        parts += [b',"last_err":', _string(task.last_err)]
    parts.append(b"}")
    return b"".join(parts)


def go_round_ms(unix_ns: int) -> int:
    """``Time.Round(time.Millisecond)``: halfway rounds up. Go measures from its zero time,
    which is a whole number of seconds from the Unix epoch, so the epoch gives the same
    remainder."""
    rem = unix_ns % _NANOS_PER_MS
    return unix_ns - rem if rem + rem < _NANOS_PER_MS else unix_ns + _NANOS_PER_MS - rem


def _event_head(event_id: str, event_type: str, seconds: int | None) -> list[bytes]:
    # BaseEvent: the timestamp is the event KSUID's own second (eid.Time().UTC()), §4.4.
    if seconds is None:
        seconds, _ = parse_ksuid(event_id)
    return [
        b'{"event_id":', _string(event_id),
        b',"type":', _string(event_type),
        b',"timestamp":', _time(GoTime(seconds * NANOS_PER_SECOND)),
    ]  # fmt: skip


def encode_task_state_event(task: Task, *, event_id: str, now_ns: int, event_second: int | None = None) -> bytes:
    """``json.Marshal(NewTaskStateChangeEvent(task))`` with the clock read at ``now_ns``.

    ``task_age`` is ``time.Since(created.Round(time.Millisecond))`` in nanoseconds, omitted
    when 0 or when ``created`` is Go's zero time; it can be slightly negative (§4.4).
    ``queue`` and ``last_error`` are omitempty. ``event_second``, when the caller made
    ``event_id`` and knows its second, saves decoding it again for ``timestamp``."""
    parts = _event_head(event_id, TASK_STATE_EVENT_TYPE, event_second)
    parts += [
        b',"task_id":', _string(task.id),
        b',"state":', _string(task.state),
        b',"tries":', _int(task.tries),
    ]  # fmt: skip
    if task.queue:
        parts += [b',"queue":', _string(task.queue)]
    parts += [b',"task_type":', _string(task.type)]
    if task.last_err:
        parts += [b',"last_error":', _string(task.last_err)]
    age = 0 if task.created.is_zero else now_ns - go_round_ms(task.created.unix_ns)
    if age:
        parts += [b',"task_age":', _int(age)]
    parts.append(b"}")
    return b"".join(parts)


def encode_leader_elected_event(name: str, component: str, *, event_id: str) -> bytes:
    """``json.Marshal(NewLeaderElectedEvent(name, component))`` (lifecycle.go, §5)."""
    parts = _event_head(event_id, LEADER_ELECTED_EVENT_TYPE, None)
    parts += [b',"name":', _string(name), b',"component":', _string(component), b"}"]
    return b"".join(parts)


def encode_work_item(task_id: str) -> bytes:
    """``newProcessItem(TaskItem, id)``: ``{"kind":0,"job":"<id>"}`` (processor.go, §4.4)."""
    return b'{"kind":0,"job":' + _string(task_id) + b"}"


def decode_task_progress(record: bytes) -> tuple[str, int] | None:
    """``(state, tries)`` of a stored Task record, or None if it is not a Task object. Only
    used to tell whether an earlier attempt at a fire got as far as its work item; Go's
    decoder binds keys case-insensitively, and so does this for the two keys it reads."""
    try:
        value = json.loads(record)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    fields = {key.lower(): item for key, item in value.items()}  # last duplicate wins, as in Go
    state, tries = fields.get("state", ""), fields.get("tries", 0)
    if not isinstance(state, str) or not isinstance(tries, int) or isinstance(tries, bool):
        return None
    return state, tries

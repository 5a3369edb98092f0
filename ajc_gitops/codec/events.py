"""asyncjobs lifecycle events (lifecycle.go): the task_state event a fire publishes (contract
§4.4 step 2), the leader_elected event of a new leader (§5), and the fields of a task_state
event that ``dev`` shows.
"""

from __future__ import annotations

import json

from ajc_gitops.gowire.gomarshal import marshal_int64, marshal_name, marshal_string, marshal_time
from ajc_gitops.gowire.ksuid import parse_ksuid
from ajc_gitops.model import NANOS_PER_SECOND, GoTime, Task, TaskEvent

__all__ = [
    "LEADER_ELECTED_EVENT_TYPE",
    "TASK_STATE_EVENT_TYPE",
    "decode_task_event",
    "encode_leader_elected_event",
    "encode_task_state_event",
    "go_round_ms",
]

TASK_STATE_EVENT_TYPE = "io.choria.asyncjobs.v1.task_state"
LEADER_ELECTED_EVENT_TYPE = "io.choria.asyncjobs.v1.leader_elected"
_NANOS_PER_MS = 1_000_000


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
        b'{"event_id":', marshal_string(event_id),
        _TASK_STATE_TYPE if event_type == TASK_STATE_EVENT_TYPE else b',"type":' + marshal_string(event_type),
        b',"timestamp":', marshal_time(GoTime(seconds * NANOS_PER_SECOND)),
    ]  # fmt: skip


_TASK_STATE_TYPE = b',"type":' + marshal_string(TASK_STATE_EVENT_TYPE)


def encode_task_state_event(task: Task, *, event_id: str, now_ns: int, event_second: int | None = None) -> bytes:
    """``json.Marshal(NewTaskStateChangeEvent(task))`` with the clock read at ``now_ns``.

    ``task_age`` is ``time.Since(created.Round(time.Millisecond))`` in nanoseconds, omitted
    when 0 or when ``created`` is Go's zero time; it can be slightly negative (§4.4).
    ``queue`` and ``last_error`` are omitempty. ``event_second``, when the caller made
    ``event_id`` and knows its second, saves decoding it again for ``timestamp``."""
    parts = _event_head(event_id, TASK_STATE_EVENT_TYPE, event_second)
    parts += [
        b',"task_id":', marshal_string(task.id),
        b',"state":', marshal_name(task.state),
        b',"tries":', marshal_int64(task.tries, "tries"),
    ]  # fmt: skip
    if task.queue:
        parts += [b',"queue":', marshal_name(task.queue)]
    parts += [b',"task_type":', marshal_name(task.type)]
    if task.last_err:
        parts += [b',"last_error":', marshal_string(task.last_err)]
    age = 0 if task.created.is_zero else now_ns - go_round_ms(task.created.unix_ns)
    if age:
        parts += [b',"task_age":', marshal_int64(age, "task_age")]
    parts.append(b"}")
    return b"".join(parts)


def encode_leader_elected_event(name: str, component: str, *, event_id: str) -> bytes:
    """``json.Marshal(NewLeaderElectedEvent(name, component))`` (lifecycle.go, §5)."""
    parts = _event_head(event_id, LEADER_ELECTED_EVENT_TYPE, None)
    parts += [b',"name":', marshal_string(name), b',"component":', marshal_string(component), b"}"]
    return b"".join(parts)


def decode_task_event(data: bytes) -> TaskEvent | None:
    """The fields ``dev`` prints of a task_state event; None for anything else."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    return TaskEvent(*(str(body.get(k) or "") for k in ("task_id", "state", "task_type", "queue", "last_error")))

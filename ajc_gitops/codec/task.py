"""Go-exact JSON for the Task record a fire writes (contract §4.2), its work-queue item (§4.4
step 3), and the little a scheduler reads back of a stored Task (``decode_task_progress``).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from typing import cast

from ajc_gitops.gowire.gomarshal import marshal_bytes, marshal_int64, marshal_name, marshal_string, marshal_time
from ajc_gitops.gowire.gotime import GoTimeParseError, days_from_civil, parse_rfc3339
from ajc_gitops.model import ZERO_TIME, GoTime, Task, TaskState

__all__ = [
    "TaskFields",
    "decode_task",
    "decode_task_progress",
    "encode_task",
    "encode_work_item",
    "read_task_fields",
    "task_payload_for_schedule",
]


def task_payload_for_schedule(stored: bytes | None) -> bytes:
    """``Task.Payload`` of a fired schedule: Go passes the stored ``[]byte`` to ``NewTask`` as
    an ``any``, which ``json.Marshal``s it again (contract §4.2, §8 item 8). A nil slice in an
    interface is not a nil interface, so nil becomes the 4 bytes ``null``; ``b""`` becomes
    ``""`` (2 bytes); bytes B become ``"<base64(B)>"``. Never ``None``."""
    return marshal_bytes(stored)


def encode_task(task: Task) -> bytes:
    """``json.Marshal(task)`` for a scheduler-made Task: Go's key order, ``deadline`` and
    ``last_err`` omitted when unset, the other omitempty keys never present (§4.2)."""
    parts = [
        b'{"id":', marshal_string(task.id),
        b',"type":', marshal_name(task.type),
        b',"queue":', marshal_name(task.queue),
        b',"payload":', marshal_bytes(task.payload),
    ]  # fmt: skip
    if task.deadline is not None:  # *time.Time, omitempty: a set pointer is always written
        parts += [b',"deadline":', marshal_time(task.deadline)]
    parts += [
        b',"max_tries":', marshal_int64(task.max_tries, "max_tries"),
        b',"state":', marshal_name(task.state),
        b',"created":', marshal_time(task.created),
        b',"tries":', marshal_int64(task.tries, "tries"),
    ]  # fmt: skip
    if task.last_err:
        parts += [b',"last_err":', marshal_string(task.last_err)]
    parts.append(b"}")
    return b"".join(parts)


def encode_work_item(task_id: str) -> bytes:
    """``newProcessItem(TaskItem, id)``: ``{"kind":0,"job":"<id>"}`` (processor.go, §4.4)."""
    return b'{"kind":0,"job":' + marshal_string(task_id) + b"}"


def decode_task_progress(record: bytes) -> tuple[str, int] | None:
    """``(state, tries)`` of a stored Task record, or None if it is not a Task object. Only
    used to tell whether an earlier attempt at a fire got as far as its work item; Go's
    decoder binds keys case-insensitively, and so does this for the two keys it reads."""
    try:
        value = json.loads(record)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    fields = {key.lower(): item for key, item in value.items()}  # last duplicate wins, as in Go
    state, tries = fields.get("state", ""), fields.get("tries", 0)
    if not isinstance(state, str) or not isinstance(tries, int) or isinstance(tries, bool):
        return None
    return state, tries


# Every key Go's ``json.Marshal`` writes for a Task (task.go), in its own spelling.
_TASK_KEYS = frozenset(
    {
        "id", "type", "queue", "dependencies", "dependency_results", "load_dependencies", "payload",
        "deadline", "max_tries", "result", "state", "created", "tried", "tries", "last_err", "signature",
    }
)  # fmt: skip
_DIGITS = frozenset("0123456789")
_JSON_DECODE = json.JSONDecoder().decode


@functools.lru_cache(maxsize=4096)
def _utc_seconds(text: str) -> int | None:
    """Unix seconds of "2006-01-02T15:04:05" by the C date parser (which checks the calendar),
    None when it refuses. Cached: the tasks of one fire share their second."""
    try:
        dt = datetime.fromisoformat(text + "Z")
    except ValueError:
        return None
    days = days_from_civil(dt.year, dt.month, dt.day)
    return ((days * 24 + dt.hour) * 60 + dt.minute) * 60 + dt.second


def _time(value: object) -> tuple[int, int] | None:
    """(Unix ns, UTC offset in seconds) of a Task's ``created``, None when Go cannot read it."""
    if not isinstance(value, str):
        return None
    # What Go's MarshalJSON writes for a UTC time ("2006-01-02T15:04:05.999999999Z") is read
    # by the C date parser; anything else by Go's own rules. ``status`` reads hundreds of
    # thousands of these.
    if len(value) >= 20 and value[10] == "T" and value[-1] == "Z" and value[19] in ".Z":
        frac = value[20:-1]
        if (value[19] == "Z" and len(value) == 20) or (
            value[19] == "." and 0 < len(frac) <= 9 and _DIGITS.issuperset(frac)
        ):
            seconds = _utc_seconds(value[:19])  # ASCII digits: the fraction never decides validity
            if seconds is not None:
                return seconds * 1_000_000_000 + int(frac.ljust(9, "0") or "0"), 0
        elif len(frac) <= 9 and (frac.isdigit() or value[19] == "Z"):
            try:
                dt = datetime.fromisoformat(value)
            except ValueError:
                dt = None
            if dt is not None:
                days = days_from_civil(dt.year, dt.month, dt.day)
                seconds = ((days * 24 + dt.hour) * 60 + dt.minute) * 60 + dt.second
                return seconds * 1_000_000_000 + int(frac.ljust(9, "0") or "0"), 0
    try:
        parsed = parse_rfc3339(value)
    except GoTimeParseError:
        return None
    return parsed.unix_ns, parsed.offset_s


# What ``decode_task`` reads, as a plain tuple: (id, type, queue, state, tries, last_err,
# max_tries, created Unix ns, created UTC offset s); a missing or unreadable ``created`` is Go's
# zero time. ``status`` reads 240,000 records this way: a Task and its GoTime cost more to
# build than the JSON costs to parse.
TaskFields = tuple[str, str, str, str, int, str, int, int, int]


def decode_task(record: bytes) -> Task | None:
    """What ``status`` shows of a stored Task (any writer: Go's scheduler, a Go worker, ours):
    ID, type, queue, state, tries, last error and created; None if it is not a Task object.
    Keys bind case-insensitively as Go's decoder does; payload and deadline are not read."""
    fields = read_task_fields(record)
    if fields is None:
        return None
    task_id, task_type, queue, state, tries, last_err, max_tries, created_ns, offset_s = fields
    created = GoTime(created_ns, offset_s)
    return Task(
        task_id, task_type, queue, None, max_tries, created, None, cast(TaskState, state or "new"), tries, last_err
    )


def read_task_fields(record: bytes) -> TaskFields | None:
    """``decode_task`` without building the Task (same keys, same checks, same verdicts)."""
    try:
        # What json.loads does with bytes that open an object (they are UTF-8 then), without
        # its encoding sniffing.
        value = _JSON_DECODE(record.decode("utf-8", "surrogatepass")) if record[:2] == b'{"' else json.loads(record)
    except ValueError:
        return None
    if type(value) is dict and value.keys() <= _TASK_KEYS:
        # Go's own keys, each once (the common case, and the one status meets 240,000 times):
        # the same checks as below, without folding.
        get = value.get
        task_id, task_type, queue, state, last_err = (
            get("id", ""), get("type", ""), get("queue", ""), get("state", ""), get("last_err", "")
        )  # fmt: skip
        tries, max_tries = get("tries", 0), get("max_tries", 0)
        if not (
            type(task_id) is str and type(task_type) is str and type(queue) is str
            and type(state) is str and type(last_err) is str and type(tries) is int and type(max_tries) is int
        ):  # fmt: skip
            return None
        created = _time(get("created")) or _ZERO
        return task_id, task_type, queue, state, tries, last_err, max_tries, created[0], created[1]
    return _read_folded(value)


_ZERO = (ZERO_TIME.unix_ns, ZERO_TIME.offset_s)


def _read_folded(value: object) -> TaskFields | None:
    if not isinstance(value, dict):
        return None
    # Go writes its keys in lower case; any other spelling is folded (the last duplicate wins).
    f = value if all(key.islower() for key in value) else {key.lower(): item for key, item in value.items()}
    texts = [f.get(k, "") for k in ("id", "type", "queue", "state", "last_err")]
    tries, max_tries = f.get("tries", 0), f.get("max_tries", 0)
    if not all(isinstance(t, str) for t in texts):
        return None
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in (tries, max_tries)):
        return None
    task_id, task_type, queue, state, last_err = cast(list[str], texts)
    created = _time(f.get("created")) or _ZERO
    return task_id, task_type, queue, state, tries, last_err, max_tries, created[0], created[1]

"""Field-level comparison of a desired and a live schedule, and the display text of each field
(``FieldChange.before``/``after``). Pure; used by ``diff.py``.

Payloads are compared as JSON values when both sides are JSON, so key order and whitespace
never show as a change. Numbers are compared by their literal text, not by Python's ``==``:
``1 == 1.0 == True`` in Python, but a Go worker decoding into an ``int`` rejects ``1.0`` and
``true`` (encoding/json type errors), so those are real changes.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Final

from ajc_gitops.gowire.durations import format_duration
from ajc_gitops.model import ScheduledTask
from ajc_gitops.plan.model import FieldChange

# Field order of the record (contract §2.1); created_at is informational and never compared.
COMPARED: Final = ("name", "schedule", "queue", "task_type", "payload", "deadline", "max_tries")
_STRING_FIELDS: Final = frozenset({"name", "schedule", "queue", "task_type"})
# What a sensitive payload shows instead of its value (Terraform's words for the same thing).
SENSITIVE_TEXT: Final = "(sensitive value)"


_LOOSE = re.compile(rb"[ \t\r\n\\]")


class _NotJson:
    pass


NOT_JSON: Final = _NotJson()


def _number(literal: str) -> tuple[str, str]:
    # A tuple never comes out of json.loads otherwise (arrays are lists), so a number only
    # equals a number with the same literal, never a bool, string or other number text.
    return ("#", literal)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def parse_json(data: bytes) -> object:
    """The payload as a comparable JSON value, or ``NOT_JSON``."""
    try:
        text = data.decode("utf-8")
        return json.loads(text, parse_int=_number, parse_float=_number, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return NOT_JSON


def _quote(text: str) -> str:
    quoted = json.dumps(text, ensure_ascii=False)
    try:
        quoted.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape: keep it printable
        return json.dumps(text)
    return quoted


def _compact(value: object) -> str:
    if isinstance(value, tuple):
        return str(value[1])
    if isinstance(value, str):
        return _quote(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{_quote(k)}:{_compact(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value).__name__)  # pragma: no cover (json.loads makes nothing else)


def payload_text(payload: bytes | None) -> str | None:
    """Display text: compact JSON when the bytes are JSON, else ``base64:<standard base64>``."""
    if payload is None:
        return None
    value = parse_json(payload)
    if value is not NOT_JSON and not _LOOSE.search(payload):
        return payload.decode("utf-8")  # already compact, no escapes to spell out
    if value is not NOT_JSON:
        try:
            return _compact(value)
        except RecursionError:
            pass
    return "base64:" + base64.b64encode(payload).decode("ascii")


def payloads_equal(desired: bytes | None, live: bytes | None, *, desired_is_json: bool) -> bool:
    if desired == live:
        return True
    if desired is None or live is None or not desired_is_json:
        # None is Go's nil (JSON null in the record), distinct from any bytes; a payload the
        # manifest gives as payload_base64 asks for exact bytes.
        return False
    want = parse_json(desired)
    if want is NOT_JSON:
        return False
    have = parse_json(live)
    return have is not NOT_JSON and want == have


def display(task: ScheduledTask, field: str) -> str | None:
    if field == "payload":
        return payload_text(task.payload)
    if field == "deadline":
        return format_duration(task.deadline_ns) if task.deadline_ns else None
    if field == "max_tries":
        return str(task.max_tries)
    return str(getattr(task, field))


def diff_fields(desired: ScheduledTask, live: ScheduledTask, *, desired_is_json: bool) -> tuple[FieldChange, ...]:
    changes = []
    for field in COMPARED:
        if field == "payload":
            same = payloads_equal(desired.payload, live.payload, desired_is_json=desired_is_json)
        elif field == "deadline":
            same = desired.deadline_ns == live.deadline_ns
        else:
            same = getattr(desired, field) == getattr(live, field)
        if not same:
            changes.append(FieldChange(field, display(live, field), display(desired, field)))
    return tuple(changes)


def listing(task: ScheduledTask, *, as_after: bool) -> tuple[FieldChange, ...]:
    """Every set field except the name (already in the change's header), for a create (as
    ``after``) or a delete (as ``before``)."""
    out = []
    for field in COMPARED[1:]:
        text = display(task, field)
        if text is not None:
            out.append(FieldChange(field, None, text) if as_after else FieldChange(field, text, None))
    return tuple(out)


def masked(changes: tuple[FieldChange, ...]) -> tuple[FieldChange, ...]:
    """The same changes with any payload text replaced by ``SENSITIVE_TEXT``; an absent side
    stays absent, so a payload being added or removed still shows as such."""
    return tuple(
        FieldChange(
            c.field,
            None if c.before is None else SENSITIVE_TEXT,
            None if c.after is None else SENSITIVE_TEXT,
        )
        if c.field == "payload"
        else c
        for c in changes
    )


def is_string_field(field: str) -> bool:
    """Renderers quote these; payload, deadline and max_tries are shown as they are."""
    return field in _STRING_FIELDS

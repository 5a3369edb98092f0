"""The saved plan (``plan --out FILE``, ``apply FILE``): versioned JSON holding every change
with the KV revisions it was computed from and the exact bytes apply will write.

Tasks are stored as their codec record bytes (base64), so no second spelling of the wire
fields exists and they come back exactly. Reading trusts nothing: every key, type, name and
record is checked, and any problem is one ``PlanFileError`` line naming the file and the place.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from ajc_gitops import codec
from ajc_gitops.codec import MarkerError, decode_marker
from ajc_gitops.errors import PlanFileError
from ajc_gitops.gowire.gotime import GoTimeParseError, format_rfc3339nano, parse_json_time
from ajc_gitops.model import ZERO_TIME, GoTime, ScheduledTask
from ajc_gitops.names import MARKER_PREFIX, SCHEDULE_PREFIX, schedule_key
from ajc_gitops.plan.document import change_document, layout, notice_document, warning_document
from ajc_gitops.plan.model import (
    FORMAT_VERSION,
    Action,
    Change,
    FieldChange,
    FireTimes,
    Notice,
    NoticeKind,
    Plan,
    PlanWarning,
    WarningKind,
)
from ajc_gitops.plan.strictjson import strict_loads
from ajc_gitops.plan.suspend import suspension_problem
from ajc_gitops.rules import name_problem

KIND = "ajc-gitops-plan"
_TOP_KEYS = ("format_version", "kind", "created_at", "server", "bucket", "prune", "changes", "notices", "warnings")
_WARNING_KEYS = ("kind", "queue", "schedules", "command", "message")
_CHANGE_KEYS = (
    "action", "name", "key", "record_revision", "tombstone_revision", "marker_revision", "marker_tombstone_revision",
    "desired", "live", "fields", "drift", "source", "value", "marker_value", "fires", "sensitive",
    "suspended", "suspend_reason",
)  # fmt: skip
# Keys a plan file written before they existed lacks (same format_version: only additions).
_OPTIONAL_CHANGE_KEYS = frozenset({"sensitive", "key", "suspended", "suspend_reason"})
_NOTICE_KEYS = ("kind", "name", "key", "revision", "message", "blocking", "source")
_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")
_BUCKET = re.compile(r"[a-zA-Z0-9_-]+")
# What each action needs: (value, marker_value, record_revision, desired); None = may be either.
_NEEDS: dict[Action, tuple[bool | None, bool | None, bool | None, bool]] = {
    Action.CREATE: (True, True, False, True),
    Action.UPDATE: (True, True, True, True),
    Action.ADOPT: (None, True, True, True),
    Action.DELETE: (False, False, True, False),
    Action.NOOP: (False, None, None, False),
    # A suspend writes no record (it deletes a live one); a resume creates it over the tombstone.
    Action.SUSPEND: (False, True, None, True),
    Action.RESUME: (True, True, False, True),
}
_TAIL = b',"created_at":'
_MAX_REVISION = 2**64 - 1
T = TypeVar("T")


# -- writing ---------------------------------------------------------------------------------


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _task_record(task: ScheduledTask | None) -> str | None:
    """The task as codec bytes. A live ``created_at`` that Go reads but cannot write back the
    same (an offset like +99:99, or a year Go cannot marshal) is stored as UTC, then as the zero
    time: it is informational only and never compared. Every other field comes back exactly
    (codec round trip; decoded strings are valid Unicode)."""
    if task is None:
        return None
    for created in (task.created_at, GoTime(task.created_at.unix_ns), ZERO_TIME):
        try:
            if parse_json_time(b'"' + format_rfc3339nano(created).encode() + b'"') == created:
                return _b64(codec.encode_scheduled_task(replace(task, created_at=created)))
        except (ValueError, codec.EncodeError):
            continue
    raise ValueError(f"schedule {task.name!r} has no record encoding")  # pragma: no cover (ZERO_TIME always has)


def _change_doc(change: Change) -> dict[str, Any]:
    # The change as plan JSON shows it, plus what apply needs: the exact bytes to write.
    return {
        **change_document(change),
        "marker_tombstone_revision": change.marker_tombstone_revision,
        "desired": _task_record(change.desired),
        "live": _task_record(change.live),
        "value": _b64(change.value),
        "marker_value": _b64(change.marker_value),
    }


def write_plan(plan: Plan) -> bytes:
    document = {
        "format_version": plan.format_version,
        "kind": KIND,
        "created_at": plan.created_at,
        "server": plan.server,
        "bucket": plan.bucket,
        "prune": plan.prune,
        "changes": [_change_doc(c) for c in plan.changes],
        "notices": [notice_document(n) for n in plan.notices],
        "warnings": [warning_document(w) for w in plan.warnings],
    }
    return layout(document).encode("ascii")


# -- reading ---------------------------------------------------------------------------------


def _show(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.records: dict[bytes, ScheduledTask] = {}  # record bytes before created_at -> task

    def fail(self, where: str, message: str) -> PlanFileError:
        return PlanFileError(f"{self.source}: {where + ': ' if where else ''}{message}")

    def obj(
        self, value: object, where: str, keys: tuple[str, ...], optional: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {_show(value)}")
        unknown = sorted(set(value) - set(keys))
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r}")
        missing = [k for k in keys if k not in value and k not in optional]
        if missing:
            raise self.fail(where, f"missing key {missing[0]!r}")
        return value

    def typed(self, value: object, where: str, kind: type[T], what: str, *, optional: bool = False) -> T | None:
        if value is None and optional:
            return None
        # bool is an int in Python; JSON true is never a revision.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(where, f"expected {what}{' or null' if optional else ''}, got {_show(value)}")
        return value

    def text(self, value: object, where: str) -> str:
        result = self.typed(value, where, str, "a string")
        assert result is not None
        return result

    def opt_text(self, value: object, where: str) -> str | None:
        return self.typed(value, where, str, "a string", optional=True)

    def flag(self, value: object, where: str) -> bool:
        return bool(self.typed(value, where, bool, "true or false"))

    def revision(self, value: object, where: str) -> int | None:
        result = self.typed(value, where, int, "a revision (integer >= 1)", optional=True)
        # A revision is a stream sequence, a uint64: no store holds a larger one.
        if result is not None and not 1 <= result <= _MAX_REVISION:
            raise self.fail(where, f"expected a revision (integer from 1 to 2^64-1) or null, got {_show(result)}")
        return result

    def items(self, value: object, where: str) -> list[Any]:
        result = self.typed(value, where, list, "a list")
        assert result is not None
        return result

    def blob(self, value: object, where: str) -> bytes | None:
        text = self.opt_text(value, where)
        if text is None:
            return None
        try:
            return base64.b64decode(text.encode("ascii"), validate=True)
        except (UnicodeEncodeError, binascii.Error, ValueError):
            raise self.fail(where, "not standard padded base64") from None

    def record(self, value: object, where: str, name: str | None) -> ScheduledTask | None:
        """A stored task; ``name`` is what its JSON name must be (None for a live record,
        whose name may differ from its key: that is reported, not refused)."""
        data = self.blob(value, where)
        if data is None:
            return None
        return self._decode(data, where) if name is None else self.named(data, where, name)

    def named(self, data: bytes, where: str, name: str) -> ScheduledTask:
        task = self._decode(data, where)
        if task.name != name:
            raise self.fail(where, f"record names {task.name!r}, not {name!r}")
        return task

    def _decode(self, data: bytes, where: str) -> ScheduledTask:
        # Records in one plan mostly differ only in created_at (desired, live and value of a
        # change): decode the rest once. Exact, since created_at is the last key and so wins.
        cut = data.rfind(_TAIL)
        head = data[:cut] if cut > 0 and data.endswith(b'"}') else None
        if head is not None and head in self.records:
            try:
                created = parse_json_time(data[cut + len(_TAIL) : -1])
            except GoTimeParseError:
                pass
            else:
                return replace(self.records[head], created_at=created)
        try:
            task, _warnings = codec.decode_or_raise(data)
        except codec.DecodeError as exc:
            raise self.fail(where, f"not a record Go can decode ({exc})") from None
        if head is not None:
            self.records[head] = task
        return task

    def choice(self, value: object, where: str, parse: Callable[[str], T], what: str) -> T:
        text = self.text(value, where)
        try:
            return parse(text)
        except ValueError:
            raise self.fail(where, f"unknown {what} {text!r}") from None

    def fires(self, value: object, where: str) -> FireTimes | None:
        if value is None:
            return None
        doc = self.obj(value, where, ("utc", "zone", "local"))
        utc, zone, local = self.texts(doc["utc"], f"{where}.utc"), doc["zone"], doc["local"]
        return FireTimes(utc, self.opt_text(zone, f"{where}.zone"), self.texts(local, f"{where}.local"))

    def texts(self, value: object, where: str) -> tuple[str, ...]:
        return tuple(self.text(t, f"{where}[{i}]") for i, t in enumerate(self.items(value, where)))

    def field_change(self, value: object, where: str) -> FieldChange:
        doc = self.obj(value, where, ("field", "before", "after"))
        return FieldChange(
            self.text(doc["field"], f"{where}.field"),
            self.opt_text(doc["before"], f"{where}.before"),
            self.opt_text(doc["after"], f"{where}.after"),
        )

    def change(self, value: object, where: str) -> Change:
        doc = self.obj(value, where, _CHANGE_KEYS, _OPTIONAL_CHANGE_KEYS)
        action = self.choice(doc["action"], f"{where}.action", Action, "action")
        name = self.text(doc["name"], f"{where}.name")
        if (problem := name_problem(name)) is not None:
            raise self.fail(f"{where}.name", problem)
        if "key" in doc and doc["key"] != schedule_key(name):
            raise self.fail(f"{where}.key", f"expected {schedule_key(name)!r} for the name {name!r}")
        change = Change(
            action,
            name,
            self.revision(doc["record_revision"], f"{where}.record_revision"),
            self.revision(doc["tombstone_revision"], f"{where}.tombstone_revision"),
            self.revision(doc["marker_revision"], f"{where}.marker_revision"),
            desired=self.record(doc["desired"], f"{where}.desired", name),
            live=self.record(doc["live"], f"{where}.live", None),
            fields=tuple(
                self.field_change(f, f"{where}.fields[{i}]")
                for i, f in enumerate(self.items(doc["fields"], f"{where}.fields"))
            ),
            drift=self.flag(doc["drift"], f"{where}.drift"),
            source=self.opt_text(doc["source"], f"{where}.source"),
            value=self.blob(doc["value"], f"{where}.value"),
            marker_value=self.blob(doc["marker_value"], f"{where}.marker_value"),
            fires=self.fires(doc["fires"], f"{where}.fires"),
            marker_tombstone_revision=self.revision(
                doc["marker_tombstone_revision"], f"{where}.marker_tombstone_revision"
            ),
            sensitive=self.flag(doc.get("sensitive", False), f"{where}.sensitive"),
            suspended=self.flag(doc.get("suspended", False), f"{where}.suspended"),
            suspend_reason=self.opt_text(doc.get("suspend_reason"), f"{where}.suspend_reason"),
        )
        self.check_change(change, where)
        return change

    def check_change(self, change: Change, where: str) -> None:
        # What apply writes must be what the change says: a Go-decodable record for this very
        # key (contract §3: JSON name equal to the key suffix) and our marker for this name.
        if change.value is not None:
            written = self.named(change.value, f"{where}.value", change.name)
            if change.desired is not None and replace(written, created_at=change.desired.created_at) != change.desired:
                raise self.fail(f"{where}.value", "the record to write differs from the desired schedule")
        if change.marker_value is not None:
            try:
                marker = decode_marker(change.marker_value)
            except MarkerError as exc:
                raise self.fail(f"{where}.marker_value", str(exc)) from None
            if marker.name != change.name:
                raise self.fail(f"{where}.marker_value", f"marker names {marker.name!r}, not {change.name!r}")
            if (problem := suspension_problem(change, marker)) is not None:
                raise self.fail(f"{where}.marker_value{problem[0]}", problem[1])
        elif change.action in (Action.SUSPEND, Action.RESUME):
            raise self.fail(where, f"{change.action.value} changes need marker_value")
        needs = _NEEDS[change.action]
        present = (change.value, change.marker_value, change.record_revision, change.desired)
        labels = ("value", "marker_value", "record_revision", "desired")
        for need, have, label in zip(needs, present, labels, strict=True):
            if need is True and have is None:
                raise self.fail(where, f"{change.action.value} changes need {label}")
            if need is False and have is not None and label != "desired":
                raise self.fail(where, f"{change.action.value} changes must not have {label}")

    def warning(self, value: object, where: str) -> PlanWarning:
        doc = self.obj(value, where, _WARNING_KEYS)
        return PlanWarning(
            self.choice(doc["kind"], f"{where}.kind", WarningKind, "warning kind"),
            self.text(doc["message"], f"{where}.message"),
            queue=self.opt_text(doc["queue"], f"{where}.queue"),
            schedules=self.texts(doc["schedules"], f"{where}.schedules"),
            command=self.opt_text(doc["command"], f"{where}.command"),
        )

    def notice(self, value: object, where: str) -> Notice:
        doc = self.obj(value, where, _NOTICE_KEYS)
        key = self.text(doc["key"], f"{where}.key")
        # Any subject token the store held (a core NATS publish can bypass the KV key rule),
        # but only under the two prefixes a plan reads.
        if not key.startswith((SCHEDULE_PREFIX, MARKER_PREFIX)) or _SPACE.search(key) or key.endswith("."):
            raise self.fail(f"{where}.key", f"not a schedule or marker key: {_show(key)}")
        return Notice(
            self.choice(doc["kind"], f"{where}.kind", NoticeKind, "notice kind"),
            self.text(doc["name"], f"{where}.name"),
            key,
            self.revision(doc["revision"], f"{where}.revision"),
            self.text(doc["message"], f"{where}.message"),
            blocking=self.flag(doc["blocking"], f"{where}.blocking"),
            source=self.opt_text(doc["source"], f"{where}.source"),
        )


def read_plan(data: bytes, source: str) -> Plan:
    """The plan saved in ``data`` (read from ``source``), or ``PlanFileError``."""
    reader = _Reader(source)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise reader.fail("", "not a plan file (not UTF-8 text)") from None
    try:
        document = strict_loads(text)
    except json.JSONDecodeError as exc:
        raise reader.fail(
            "", f"not a plan file (invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise reader.fail("", f"not a plan file (invalid JSON: {reason})") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise reader.fail("", f'not an ajc-gitops plan file (no "kind": "{KIND}")')
    version = document.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise reader.fail(
            "",
            f"plan format_version {_show(version)} unsupported (this ajc-gitops reads {FORMAT_VERSION}); plan again",
        )
    doc = reader.obj(document, "", _TOP_KEYS, frozenset({"warnings"}))
    changes = tuple(reader.change(c, f"changes[{i}]") for i, c in enumerate(reader.items(doc["changes"], "changes")))
    names = [c.name for c in changes]
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise reader.fail("changes", f"{duplicate!r} appears more than once")
    notices = tuple(reader.notice(n, f"notices[{i}]") for i, n in enumerate(reader.items(doc["notices"], "notices")))
    warnings = reader.items(doc.get("warnings", []), "warnings")
    bucket = reader.text(doc["bucket"], "bucket")
    if not _BUCKET.fullmatch(bucket):
        raise reader.fail("bucket", f"not a KV bucket name: {_show(bucket)}")
    return Plan(
        FORMAT_VERSION,
        reader.text(doc["created_at"], "created_at"),
        reader.text(doc["server"], "server"),
        bucket,
        reader.flag(doc["prune"], "prune"),
        changes,
        notices,
        tuple(reader.warning(w, f"warnings[{i}]") for i, w in enumerate(warnings)),
    )

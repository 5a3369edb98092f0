"""Live schedules to manifest YAML that plans as "no changes" (export, then plan).

Round trip by construction and by check: a payload is written as ``payload:`` YAML only when
``codec.go_json_marshal(json.loads(bytes)) == bytes``, which is exactly what the manifest
loader will store again; anything else (raw bytes, JSON Go would re-encode differently) is
written as ``payload_base64:``. Every export is then read back through the real manifest loader
and compared field by field with the live record; a payload that still differs falls back to
base64, and anything else that differs is reported, never silently written.

Files go only inside ``--dir``: names must be schedule names (letters, digits, ``_``, ``-``), so a
name can never hold a path separator, and an existing symlink is refused rather than followed.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ajc_gitops import codec, rules
from ajc_gitops.errors import ExportError
from ajc_gitops.gowire.durations import format_duration
from ajc_gitops.manifest.load import load_manifests
from ajc_gitops.model import ScheduledTask
from ajc_gitops.names import MARKER_PREFIX, SCHEDULE_PREFIX, marker_key

if TYPE_CHECKING:
    from ajc_gitops.state import Snapshot

__all__ = ["ExportResult", "Exported", "SuspendedEntry", "export_schedules", "render_stream", "write_files"]


@dataclass(frozen=True, slots=True)
class Exported:
    name: str
    key: str
    revision: int
    entry: dict[str, Any]  # the manifest mapping for this schedule, in field order


@dataclass(frozen=True, slots=True)
class ExportResult:
    schedules: tuple[Exported, ...]
    skipped: tuple[tuple[str, str], ...]  # (key, why it cannot be a manifest)
    missing: tuple[str, ...]  # requested names that are not live
    warnings: tuple[tuple[str, str], ...] = ()  # (key, what the manifest loader will say)


@dataclass(frozen=True, slots=True)
class SuspendedEntry:
    """A suspended schedule: no record, its definition kept in its ownership marker."""

    task: ScheduledTask
    reason: str
    revision: int  # the marker's


class _Quoted(str):
    """A string always written double-quoted (schedules: ``"0 0 1 * *"`` reads as intended)."""

    __slots__ = ()


class _Dumper(yaml.SafeDumper):
    pass


def _represent_quoted(dumper: yaml.SafeDumper, value: _Quoted) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')


_Dumper.add_representer(_Quoted, _represent_quoted)


def dump_yaml(document: object) -> str:
    # PyYAML's safe representer quotes every string a YAML 1.1 reader would take for another
    # type (yes/no/on/off, 0x1F, 1:20, 2001-12-14, ~), so values come back as strings.
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)


def json_payload(payload: bytes) -> tuple[bool, Any]:
    """``(True, value)`` when the manifest loader would store ``value`` as exactly ``payload``."""
    try:
        value = json.loads(payload)
        same = codec.go_json_marshal(value) == payload
    except (ValueError, RecursionError):  # EncodeError and UnicodeDecodeError are ValueErrors
        return False, None
    return same, value


def manifest_entry(
    task: ScheduledTask,
    *,
    force_base64: bool = False,
    sensitive: bool = False,
    suspend: SuspendedEntry | None = None,
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": task.name,
        "schedule": _Quoted(task.schedule),
        "queue": task.queue,
        "task_type": task.task_type,
    }
    if task.payload is not None:  # None is Go's nil: no payload key at all
        is_json, value = (False, None) if force_base64 else json_payload(task.payload)
        if is_json:
            entry["payload"] = value
        else:
            entry["payload_base64"] = base64.b64encode(task.payload).decode("ascii")
    if sensitive:
        entry["payload_sensitive"] = True
    if suspend is not None:
        entry["suspend"] = True
        if suspend.reason:
            entry["suspend_reason"] = suspend.reason
    if task.deadline_ns:
        entry["deadline"] = format_duration(task.deadline_ns)  # Go's Duration.String, parses back exactly
    entry["max_tries"] = task.max_tries  # always: the loader's default (10) may differ from the record
    return entry


def _why_not(key: str, value: bytes | None) -> tuple[ScheduledTask | None, str | None]:
    name = key[len(SCHEDULE_PREFIX) :]
    if (problem := rules.name_problem(name)) is not None:
        return None, f"the key is not a schedule name a manifest can use ({problem})"
    decoded = codec.decode_scheduled_task(value or b"")
    if decoded.error is not None:
        return None, f"Go cannot decode this record ({decoded.error}); fix or delete it with the ajc CLI"
    if decoded.task.name != name:
        return None, f"its JSON name {decoded.task.name!r} differs from the key; Go cannot delete it by name"
    return decoded.task, None


def _differences(want: ScheduledTask, got: ScheduledTask) -> list[str]:
    fields = ("schedule", "queue", "task_type", "payload", "deadline_ns", "max_tries")
    return [f for f in fields if getattr(want, f) != getattr(got, f)]


def _read_back(exported: Sequence[Exported], now: datetime) -> tuple[dict[str, ScheduledTask], dict[str, list[str]]]:
    """Load the export through the real manifest loader: the tasks it yields and its problems,
    by schedule name (one temporary file per schedule, so a problem's file names it)."""
    with tempfile.TemporaryDirectory(prefix="ajc-gitops-export-") as tmp:
        for item in exported:
            text = dump_yaml({"schedules": [item.entry]})
            (Path(tmp) / f"{item.name}.yaml").write_text(text, encoding="utf-8")
        result = load_manifests([Path(tmp)], now=now)
    tasks = {s.task.name: s.task for s in result.schedules}
    problems: dict[str, list[str]] = {}
    for problem in result.problems:
        name = Path(problem.location.path).stem
        problems.setdefault(name, []).append(f"{problem.severity.value}: {problem.message}")
    return tasks, problems


def export_schedules(
    records: Snapshot,
    names: Iterable[str] = (),
    *,
    now: datetime,
    sensitive: frozenset[str] = frozenset(),
    suspended: Mapping[str, SuspendedEntry] | None = None,
) -> ExportResult:
    """Manifest entries for the live schedules (all, or ``names``), checked by reading back.
    Names in ``sensitive`` (their ownership marker says so) keep ``payload_sensitive: true``;
    ``suspended`` schedules (no record) are exported from their kept definition with
    ``suspend: true`` and their reason."""
    held = {n: s for n, s in (suspended or {}).items() if SCHEDULE_PREFIX + n not in records.live}
    wanted = list(dict.fromkeys(names))
    skipped: list[tuple[str, str]] = []
    exported: list[Exported] = []
    live: dict[str, ScheduledTask] = {}
    for key, entry in sorted(records.live.items()):
        name = key[len(SCHEDULE_PREFIX) :]
        if wanted and name not in wanted:
            continue
        task, why = _why_not(key, entry.value)
        if task is None:
            skipped.append((key, why or "unreadable"))
            continue
        live[name] = task
        exported.append(Exported(name, key, entry.revision, manifest_entry(task, sensitive=name in sensitive)))
    for name, kept in sorted(held.items()):
        if not wanted or name in wanted:
            live[name] = kept.task
            entry_map = manifest_entry(kept.task, sensitive=name in sensitive, suspend=kept)
            exported.append(Exported(name, marker_key(name), kept.revision, entry_map))
    exported.sort(key=lambda e: e.name)
    missing = tuple(n for n in wanted if SCHEDULE_PREFIX + n not in records.live and n not in held)
    warnings: list[tuple[str, str]] = []
    if exported:
        tasks, problems = _read_back(exported, now)
        # A payload the loader does not reproduce byte for byte is written as base64 instead.
        redo = {n for n, t in live.items() if n in tasks and tasks[n].payload != t.payload}
        if redo:
            exported = [
                Exported(
                    e.name,
                    e.key,
                    e.revision,
                    manifest_entry(
                        live[e.name], force_base64=True, sensitive=e.name in sensitive, suspend=held.get(e.name)
                    ),
                )
                if e.name in redo
                else e
                for e in exported
            ]
            tasks, problems = _read_back(exported, now)
        for item in exported:
            got = tasks.get(item.name)
            notes = problems.get(item.name, [])
            if got is not None and (diff := _differences(live[item.name], got)):
                notes.append(f"the manifest would store other {', '.join(diff)} than the live record")
            warnings += [(item.key, note) for note in notes]
    return ExportResult(tuple(exported), tuple(skipped), missing, tuple(warnings))


def _header(item: Exported) -> str:
    if item.key.startswith(MARKER_PREFIX):
        return (
            f"# Exported by ajc-gitops from {item.key} (revision {item.revision}): suspended, so it has no\n"
            "# record; its definition is kept in its ownership marker. Remove suspend: to resume it.\n"
        )
    return (
        f"# Exported by ajc-gitops from {item.key} (revision {item.revision}).\n"
        f"# Not managed by ajc-gitops until adopted: ajc-gitops apply <dir> --adopt {item.name}\n"
    )


def render_stream(result: ExportResult) -> str:
    """Everything as one manifest document (stdout)."""
    if not result.schedules:
        return "schedules: []\n"
    return "# Exported by ajc-gitops.\n" + dump_yaml({"schedules": [e.entry for e in result.schedules]})


def write_files(directory: Path, result: ExportResult) -> list[Path]:
    """One ``<name>.yaml`` per schedule inside ``directory``, never outside it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        root = directory.resolve(strict=True)
    except OSError as exc:
        raise ExportError(f"{directory}: cannot create the export directory: {exc.strerror or exc}") from exc
    written = []
    for item in result.schedules:
        if rules.name_problem(item.name) is not None:  # pragma: no cover (filtered in export_schedules)
            raise ExportError(f"{item.key}: refusing to export a name that is not a plain file name")
        target = root / f"{item.name}.yaml"
        if target.parent != root:  # pragma: no cover (names hold no separators)
            raise ExportError(f"{target}: outside {root}; refusing to write")
        if target.is_symlink():
            raise ExportError(f"{target}: is a symlink; refusing to follow it out of {root} (remove it first)")
        text = _header(item) + dump_yaml({"schedules": [item.entry]})
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        try:
            fd = os.open(target, flags, 0o644)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
        except OSError as exc:
            raise ExportError(f"{target}: cannot write: {exc.strerror or exc}") from exc
        written.append(target)
    return written

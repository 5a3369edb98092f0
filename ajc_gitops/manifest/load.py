"""Manifests to ``ScheduledTask`` values: walk the paths, read every document, apply
``defaults:``, check the packaged schema and the asyncjobs rules, and return every schedule and
every problem found. Never prints, exits or stops at the first problem."""

from __future__ import annotations

import base64
import binascii
import math
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from ajc_gitops import codec, rules
from ajc_gitops.manifest import schemacheck
from ajc_gitops.manifest.fit import size_problems
from ajc_gitops.manifest.yamlload import Document, JsonPath, load_documents
from ajc_gitops.model import ScheduledTask
from ajc_gitops.problems import Location, Problem, Severity

MANIFEST_SUFFIXES = (".yaml", ".yml")
_DEFAULTABLE = ("queue", "task_type", "deadline", "max_tries", "payload_sensitive", "suspend", "suspend_reason")
# Fields whose content rules.py explains better than a bare schema pattern.
_EXPLAINED_BY_RULES = frozenset({"name", "queue", "task_type", "deadline", "payload_base64"})


class PayloadForm(StrEnum):
    NONE = "none"
    JSON = "json"
    BASE64 = "base64"


@dataclass(frozen=True, slots=True)
class DesiredSchedule:
    """A schedule as Git wants it, with where it was written."""

    task: ScheduledTask
    location: Location
    payload_form: PayloadForm
    payload_sensitive: bool = False  # plan output masks the payload
    payload_location: Location | None = None
    # Suspended from Git: apply deletes the record (no scheduler fires it) and keeps the
    # definition, the reason and the time in the ownership marker (plan/suspend.py).
    suspend: bool = False
    suspend_reason: str = ""


class ScheduleVerdicts:
    """Parse verdicts per distinct schedule text: manifests repeat the same few schedules, and
    the never-fires check runs robfig's Next search."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._seen: dict[str, tuple[str | None, str | None]] = {}

    def judge(self, schedule: str) -> tuple[str | None, str | None]:
        """(error, warning) for a normalized schedule text."""
        verdict = self._seen.get(schedule)
        if verdict is None:
            parsed, error = rules.parse_schedule(schedule)
            warning = None
            if parsed is not None and not rules.surely_fires(parsed) and parsed.next(self.now) is None:
                warning = (
                    f"schedule {schedule!r} never fires (no match within the 5 years robfig/cron "
                    "searches); Go accepts it but no task will ever be created"
                )
            verdict = self._seen[schedule] = (error, warning)
        return verdict


@dataclass(frozen=True, slots=True)
class LoadResult:
    schedules: tuple[DesiredSchedule, ...]
    problems: tuple[Problem, ...]
    files: int
    missing_paths: tuple[str, ...] = ()

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)


def find_manifest_files(paths: Sequence[Path]) -> tuple[list[Path], list[Path], list[Problem]]:
    """Files named on the command line are taken as they are (a symlink named there is the
    user's choice); directories are walked for *.yaml and *.yml, skipping hidden directories
    such as .git. Returns (files, missing, problems).

    A walk never follows a symlink, to a file or a directory: a manifest directory comes from
    a repository anyone can send a pull request to, and a link to ``~/.config/nats`` or
    ``/etc`` must not be read and quoted into a plan comment. Each one is an error rather
    than skipped, because a silently skipped file would look like deleted schedules to
    ``apply --prune``. Python 3.11's ``rglob`` followed file links but not directory links.
    """
    found: list[Path] = []
    missing: list[Path] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            walked: list[Path] = []
            for parent, dirs, names in os.walk(path, followlinks=False):
                here = Path(parent)
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                links = [here / d for d in dirs if (here / d).is_symlink()]
                links += [here / n for n in names if Path(n).suffix in MANIFEST_SUFFIXES and (here / n).is_symlink()]
                problems += [
                    Problem(
                        Location(str(link)),
                        f"symlink to {os.readlink(link)!r}, not followed inside a manifest directory; "
                        "name its target on the command line, or replace the link with the file",
                    )
                    for link in links
                ]
                walked += [
                    here / n
                    for n in names
                    if Path(n).suffix in MANIFEST_SUFFIXES and not (here / n).is_symlink() and (here / n).is_file()
                ]
            found += sorted(walked)
        elif path.exists():
            found.append(path)
        else:
            missing.append(path)
    return found, missing, problems


def load_manifests(
    paths: Sequence[Path], *, now: datetime, max_payload: int | None = codec.DEFAULT_MAX_PAYLOAD
) -> LoadResult:
    """Every schedule and problem in ``paths``. ``max_payload``: the server limit every record
    and task a schedule makes must fit (None: not checked here; plan and apply check the
    connected server's own)."""
    files, missing, problems = find_manifest_files(paths)
    problems += [
        Problem(Location(str(path)), "no such file or directory; pass manifest files or directories")
        for path in missing
    ]
    schedules: list[DesiredSchedule] = []
    # Every entry with a valid name, loaded or not: a duplicate is reported even beside
    # another error in one of the two entries.
    named: list[tuple[str, Location]] = []
    verdicts = ScheduleVerdicts(now)
    for file in files:
        documents, file_problems = load_documents(file, str(file))
        problems.extend(file_problems)
        if not documents and not file_problems:
            problems.append(Problem(Location(str(file)), "empty file; a manifest needs a top-level 'schedules:' list"))
        for doc in documents:
            schedules.extend(_load_document(doc, problems, named, verdicts))
    problems.extend(_duplicate_names(named))
    if max_payload is not None:
        oversized = size_problems(sized(schedules), max_payload, f"NATS's default max_payload of {max_payload:,} bytes")
        problems.extend(oversized)
        flagged = {p.location for p in oversized}
        schedules = [s for s in schedules if (s.payload_location or s.location) not in flagged]
    problems.sort(key=lambda p: (p.location.path, p.location.line, p.location.col))
    return LoadResult(tuple(schedules), tuple(problems), len(files), tuple(str(p) for p in missing))


def _load_document(
    doc: Document, problems: list[Problem], named: list[tuple[str, Location]], verdicts: ScheduleVerdicts
) -> Iterable[DesiredSchedule]:
    if not isinstance(doc.value, dict):
        kind = schemacheck.type_name(doc.value)
        problems.append(
            Problem(
                doc.location(()), f"document is {kind}, not a mapping; a manifest needs a top-level 'schedules:' list"
            )
        )
        return []
    if "schedules" not in doc.value:
        keys = ", ".join(str(k) for k in list(doc.value)[:5])
        problems.append(
            Problem(doc.location(()), f"not a schedule manifest: no top-level 'schedules:' list (found keys: {keys})")
        )
        return []
    violations = [v for v in schemacheck.check(doc.value) if not _explained_by_rules(v)]
    problems.extend(_schema_problem(doc, v) for v in violations if v.path not in doc.unreadable)
    # A key that failed the schema, or holds a value YAML could not read (a payload part
    # included), is left out below so one mistake gives one message.
    broken = {v.path for v in violations} | {path[:n] for path in doc.unreadable for n in range(len(path) + 1)}
    raw_defaults = doc.value.get("defaults")
    defaults: dict[str, Any] = raw_defaults if isinstance(raw_defaults, dict) else {}
    entries = doc.value.get("schedules")
    if not isinstance(entries, list):
        return []
    loaded = []
    for index, entry in enumerate(entries):
        if isinstance(entry, dict):
            item = _load_entry(doc, ("schedules", index), entry, defaults, broken, problems, named, verdicts)
            if item is not None:
                loaded.append(item)
    return loaded


def _explained_by_rules(violation: schemacheck.Violation) -> bool:
    return (
        violation.keyword in ("pattern", "minLength")
        and bool(violation.path)
        and violation.path[-1] in _EXPLAINED_BY_RULES
    )


def _schema_problem(doc: Document, violation: schemacheck.Violation) -> Problem:
    where = ".".join(str(p) for p in violation.path) or "document"
    message = f"{where}: {violation.message}"
    plain = doc.plain_text.get(violation.path)
    if violation.keyword == "type" and plain is not None:
        message += f' (YAML reads the unquoted {plain!r} that way; quote it: "{plain}")'
    return Problem(doc.location(violation.path, key=violation.at_key), message)


def _load_entry(
    doc: Document,
    path: JsonPath,
    entry: dict[str, Any],
    defaults: dict[str, Any],
    broken: set[JsonPath],
    problems: list[Problem],
    named: list[tuple[str, Location]],
    verdicts: ScheduleVerdicts,
) -> DesiredSchedule | None:
    ok = True

    def field(key: str) -> tuple[Any, JsonPath] | None:
        """The value of ``key`` and where it came from: the entry, else ``defaults:``."""
        if key in entry:
            source: JsonPath = (*path, key)
        elif key in _DEFAULTABLE and key in defaults:
            source = ("defaults", key)
        else:
            return None
        return (entry if source[0] != "defaults" else defaults)[key], source

    def fail(source: JsonPath, message: str) -> None:
        nonlocal ok
        ok = False
        problems.append(Problem(doc.location(source), message))

    skip = set(broken)

    def text(key: str, default: str | None = None) -> tuple[str, JsonPath]:
        """A string field; a missing required one was already reported by the schema."""
        nonlocal ok
        found = field(key)
        if found is None:
            if default is None:
                ok = False
                skip.add((*path, key))
            return default or "", (*path, key)
        value, source = found
        if source in broken or not isinstance(value, str):
            ok = False
            skip.add(source)
            return "", source
        return value, source

    name, name_at = text("name")
    if name_at not in skip:
        if message := rules.name_problem(name):
            fail(name_at, message)
        else:
            named.append((name, doc.location(path)))
    queue, queue_at = text("queue", rules.DEFAULT_QUEUE)
    if queue_at not in skip and (message := rules.queue_problem(queue)):
        fail(queue_at, message)
    if field("task_type") is None:
        fail(path, "missing required key 'task_type'; set it on the schedule or in the file's defaults:")
    task_type, type_at = text("task_type")
    if type_at not in skip and (message := rules.task_type_problem(task_type)):
        fail(type_at, message)

    raw_schedule, schedule_at = text("schedule")
    schedule = rules.normalize_schedule(raw_schedule)
    if schedule_at not in skip:
        error, warning = verdicts.judge(schedule)
        if error:
            fail(schedule_at, error)
        elif warning:
            problems.append(Problem(doc.location(schedule_at), warning, Severity.WARNING))

    deadline_ns = 0
    if (found := field("deadline")) is not None and found[1] not in broken:
        deadline_ns, message = rules.parse_deadline(str(found[0]))
        if message:
            fail(found[1], message)

    max_tries = rules.DEFAULT_MAX_TRIES
    if (found := field("max_tries")) is not None:
        if found[1] in broken:
            ok = False
        else:
            # 0 asks for the asyncjobs default, which Go's CLI and API store as the number
            # itself (NewTask sets 10 and only a positive option overrides it).
            max_tries = int(found[0]) or rules.DEFAULT_MAX_TRIES

    def flag(key: str) -> bool:
        nonlocal ok
        if (found := field(key)) is None:
            return False
        written = doc.plain_text.get(found[1], "")
        if found[1] in broken:
            ok = False
        elif written.lower() not in ("true", "false"):
            # YAML 1.1 (PyYAML) reads yes/no/on/off as booleans, YAML 1.2 editors and
            # check-jsonschema read them as strings: accept only what both agree on.
            fail(found[1], f"write {key} as true or false, not {written!r} (YAML 1.2 reads that as a string)")
        else:
            return found[0] is True
        return False

    sensitive = flag("payload_sensitive")
    suspend = flag("suspend")
    reason, reason_at = text("suspend_reason", "")
    if reason and not suspend and reason_at not in skip:
        problems.append(
            Problem(
                doc.location(reason_at),
                "suspend_reason has no effect without suspend: true; remove it, or suspend the schedule",
                Severity.WARNING,
            )
        )

    payload, form = _payload(path, entry, broken, fail)
    if not ok:
        return None
    task = ScheduledTask(
        name=name,
        schedule=schedule,
        queue=queue,
        task_type=task_type,
        payload=payload,
        deadline_ns=deadline_ns,
        max_tries=max_tries,
    )
    payload_at = next(((*path, k) for k in ("payload", "payload_base64") if k in entry), None)
    payload_location = doc.location(payload_at) if payload_at else None
    location = doc.location(path)
    return DesiredSchedule(task, location, form, sensitive, payload_location, suspend=suspend, suspend_reason=reason)


def sized(schedules: Iterable[DesiredSchedule]) -> list[tuple[ScheduledTask, Location]]:
    """Each schedule with the place a size problem points at: its payload, else its entry."""
    return [(item.task, item.payload_location or item.location) for item in schedules]


def _payload(
    path: JsonPath, entry: dict[str, Any], broken: set[JsonPath], fail: Callable[[JsonPath, str], None]
) -> tuple[bytes | None, PayloadForm]:
    if "payload" in entry and (*path, "payload") not in broken:
        bad = _non_json(entry["payload"], (*path, "payload"))
        if bad is not None:
            fail(bad[0], bad[1])
            return None, PayloadForm.JSON
        try:
            return codec.go_json_marshal(entry["payload"]), PayloadForm.JSON
        except codec.EncodeError as exc:  # a number past float64, which Go's Unmarshal refuses
            fail((*path, "payload"), f"payload has no JSON encoding Go accepts ({exc}); write a smaller number")
            return None, PayloadForm.JSON
    if "payload_base64" in entry and (*path, "payload_base64") not in broken:
        source = (*path, "payload_base64")
        value = entry["payload_base64"]
        try:
            # Go's decoder skips \r and \n anywhere and rejects everything else non-base64.
            return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True), PayloadForm.BASE64
        except (binascii.Error, ValueError) as exc:
            fail(source, f"payload_base64 is not standard padded base64 ({exc}); encode with 'base64 -w0'")
    return None, PayloadForm.NONE


def _non_json(value: Any, path: JsonPath) -> tuple[JsonPath, str] | None:
    """The first part of a YAML value that has no JSON encoding."""
    if isinstance(value, float) and not math.isfinite(value):
        return path, f"payload value {value} has no JSON encoding; quote it as a string"
    if isinstance(value, dict):
        for key, item in value.items():
            if (found := _non_json(item, (*path, key))) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := _non_json(item, (*path, index))) is not None:
                return found
    return None


def _duplicate_names(named: Sequence[tuple[str, Location]]) -> list[Problem]:
    first: dict[str, Location] = {}
    problems: list[Problem] = []
    for name, location in named:
        other = first.setdefault(name, location)
        if other is location:
            continue
        problems.append(Problem(location, f"duplicate schedule name {name!r}, also defined at {other}"))
        problems.append(Problem(other, f"duplicate schedule name {name!r}, also defined at {location}"))
    return problems

"""Manifests + what the store holds -> a ``Plan``. Pure and synchronous: the snapshots and the
clock come in as values, nothing here touches NATS (STYLE.md module map).

Identity is the key suffix: Go deletes by the last key token (contract §3), so
``scheduled_tasks.<name>`` is the schedule ``<name>`` even when its JSON ``name`` differs
(that is reported and, for a managed schedule, rewritten).

Speed: a live record that is exactly the codec's encoding of the desired task (all but the
trailing ``created_at``) is recognised by a byte prefix comparison, without a Go-exact decode;
fire times are computed only for writes, once per distinct schedule text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ajc_gitops import codec
from ajc_gitops.codec import MarkerError, decode_marker, encode_marker, record_digest
from ajc_gitops.gowire import cron
from ajc_gitops.gowire.gotime import GoTimeParseError, format_rfc3339nano, from_datetime, parse_json_time
from ajc_gitops.manifest.load import DesiredSchedule, PayloadForm
from ajc_gitops.model import GoTime, Marker, ScheduledTask
from ajc_gitops.names import CONFIG_BUCKET, MARKER_PREFIX, SCHEDULE_PREFIX, schedule_key
from ajc_gitops.plan import fields
from ajc_gitops.plan.model import FORMAT_VERSION, Action, Change, FieldChange, FireTimes, Notice, NoticeKind, Plan
from ajc_gitops.rules import name_problem

if TYPE_CHECKING:
    # Types only: store/ is the async, nats-importing world; plan/ stays synchronous
    # (STYLE.md module map) and only reads the frozen values it is given.
    from ajc_gitops.state import Entry, Snapshot

FIRE_COUNT = 3
_CREATED_AT_TAIL = re.compile(rb',"created_at":("[^"\\]*")\}')


@dataclass(frozen=True, slots=True)
class _Live:
    entry: Entry
    task: ScheduledTask | None  # None: Go cannot decode it
    error: str | None = None


@dataclass(frozen=True, slots=True)
class _Owned:
    entry: Entry
    marker: Marker | None  # None: the marker's value is not ours (still counts as managed)


@dataclass
class _Context:
    now_time: GoTime
    stamp: str
    adopt: frozenset[str]
    records: Snapshot
    marker_tombstones: dict[str, int]
    notices: list[Notice]
    fire_cache: dict[str, FireTimes | None]


def _suffix(key: str, prefix: str) -> str | None:
    """The name token of a key, or None when Go's ``<prefix>*`` watch does not see the key."""
    name = key[len(prefix) :]
    return name if key.startswith(prefix) and name and "." not in name else None


def _skipped(key: str, revision: int | None, what: str) -> Notice:
    return Notice(
        NoticeKind.INVALID_RECORD,
        key.rpartition(".")[2],
        key,
        revision,
        what,
    )


def _read_markers(markers: Snapshot, notices: list[Notice]) -> tuple[dict[str, _Owned], dict[str, int]]:
    owned: dict[str, _Owned] = {}
    for key, entry in markers.live.items():
        name = _suffix(key, MARKER_PREFIX)
        if name is None or name_problem(name) is not None:
            notices.append(_skipped(key, entry.revision, "not an ajc-gitops marker key (bad name); ignored"))
            continue
        marker: Marker | None = None
        try:
            marker = decode_marker(entry.value or b"")
            if marker.name != name:
                raise MarkerError(f"marker names {marker.name!r}, not {name!r}")
        except MarkerError as exc:
            marker = None
            notices.append(
                _skipped(key, entry.revision, f"ownership marker is unreadable ({exc}); {name} still counts as managed")
            )
        owned[name] = _Owned(entry, marker)
    tombstones = {}
    for key, entry in markers.tombstones.items():
        name = _suffix(key, MARKER_PREFIX)
        if name is not None:
            tombstones[name] = entry.revision
    return owned, tombstones


def _decode_live(name: str, entry: Entry, notices: list[Notice]) -> _Live:
    """Go-exact decode (contract §2.3), reporting what Go would skip or misread."""
    result = codec.decode_scheduled_task(entry.value or b"")
    if result.error is not None:
        notices.append(
            Notice(
                NoticeKind.INVALID_RECORD,
                name,
                entry.key,
                entry.revision,
                f"Go cannot decode this record and skips it: {result.error}",
            )
        )
        return _Live(entry, None, str(result.error))
    task = result.task
    if task.name != name:
        # Contract §3 item 5: Go registers it under the JSON name but deletes by key.
        notices.append(
            Notice(
                NoticeKind.INVALID_RECORD,
                name,
                entry.key,
                entry.revision,
                f"JSON name {task.name!r} differs from the key: Go registers it as {task.name!r} "
                f"and a delete of {entry.key} does not stop it",
            )
        )
    for warning in result.warnings:
        notices.append(Notice(NoticeKind.LEGACY_RECORD, name, entry.key, entry.revision, warning))
    return _Live(entry, task)


def _with_time(task: ScheduledTask, created_at: GoTime) -> ScheduledTask:
    # dataclasses.replace is several times slower, and this runs for every desired schedule.
    return ScheduledTask(
        task.name, task.schedule, task.queue, task.task_type, task.payload, task.deadline_ns, task.max_tries, created_at
    )


def _fast_live(desired: ScheduledTask, value: bytes, entry: Entry) -> _Live | None:
    """The live task when the record is the codec's encoding of ``desired`` plus any valid
    ``created_at``; such bytes decode to exactly those fields, so no full decode is needed."""
    live = entry.value or b""
    head = value[: value.rindex(b',"created_at":')]
    if not live.startswith(head):
        return None
    tail = _CREATED_AT_TAIL.fullmatch(live, len(head))
    if tail is None:
        return None
    try:
        created = parse_json_time(tail.group(1))
    except GoTimeParseError:
        return None
    return _Live(entry, _with_time(desired, created))


def _zone_of(schedule: str) -> str | None:
    if not schedule.startswith(("TZ=", "CRON_TZ=")):
        return None
    return schedule[schedule.find("=") + 1 : schedule.find(" ")] or "UTC"


def _fires(schedule: str, now: datetime, cache: dict[str, FireTimes | None]) -> FireTimes | None:
    if schedule in cache:
        return cache[schedule]
    try:
        parsed = cron.parse_standard(schedule)
    except cron.CronError:
        found = None  # the loader rejected it already; a plan shows no times rather than crash
    else:
        times = cron.next_times(parsed, now, FIRE_COUNT)
        zone = _zone_of(schedule)
        found = FireTimes(
            utc=tuple(t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for t in times),
            zone=zone,
            local=tuple(t.astimezone(parsed.location).isoformat() for t in times) if zone else (),
        )
    cache[schedule] = found
    return found


def _marker_bytes(name: str, record: bytes, source: str, ctx: _Context, *, sensitive: bool) -> bytes:
    return encode_marker(Marker(name, record_digest(record), source, ctx.stamp, sensitive))


def _marked_sensitive(owned: _Owned | None) -> bool:
    return owned is not None and owned.marker is not None and owned.marker.sensitive


def _plan_desired(
    item: DesiredSchedule, value: bytes, live: _Live | None, owned: _Owned | None, ctx: _Context, now: datetime
) -> Change | None:
    task = item.task
    name = task.name
    source = str(item.location)
    record_revision = live.entry.revision if live else None
    marker_revision = owned.entry.revision if owned else None
    marker_tomb = ctx.marker_tombstones.get(name)
    # Masked when either side says so: the plan that drops the flag still hides the value.
    sensitive = item.payload_sensitive or _marked_sensitive(owned)
    base = Change(
        Action.NOOP,
        name,
        record_revision,
        ctx.records.tombstone_revision(schedule_key(name)),
        marker_revision,
        desired=task,
        live=live.task if live else None,
        source=source,
        marker_tombstone_revision=marker_tomb,
        sensitive=sensitive,
    )

    def marker_for(record: bytes) -> bytes:
        return _marker_bytes(name, record, source, ctx, sensitive=item.payload_sensitive)

    def write(action: Action, changed: tuple[FieldChange, ...], drift: bool) -> Change:
        return replace(
            base,
            action=action,
            fields=fields.masked(changed) if sensitive else changed,
            drift=drift,
            value=value,
            marker_value=marker_for(value),
            fires=_fires(task.schedule, now, ctx.fire_cache),
        )

    if live is None:
        # A marker without its record: the record was deleted outside Git (or an apply
        # stopped between Delete and Create, contract §3).
        return write(Action.CREATE, fields.listing(task, as_after=True), owned is not None)
    live_bytes = live.entry.value or b""
    if live.task is None:
        changed: tuple[FieldChange, ...] = (FieldChange("record", f"undecodable: {live.error}", "valid record"),)
    else:
        changed = fields.diff_fields(task, live.task, desired_is_json=item.payload_form is PayloadForm.JSON)
    if owned is None:
        if name not in ctx.adopt:
            ctx.notices.append(
                Notice(
                    NoticeKind.UNMANAGED_CONFLICT,
                    name,
                    live.entry.key,
                    live.entry.revision,
                    f"{name} exists in the store but was not created by ajc-gitops (e.g. ajc task cron add); "
                    f"run with --adopt {name} to take it over, or rename it in the manifest",
                    blocking=True,
                    source=source,
                )
            )
            return None
        if changed:
            return write(Action.ADOPT, changed, False)
        # Adopting an identical record: only the marker is written, for the live bytes.
        return replace(
            base,
            action=Action.ADOPT,
            fires=_fires(task.schedule, now, ctx.fire_cache),
            marker_value=marker_for(live_bytes),
        )
    drift = owned.marker is None or owned.marker.sha256 != record_digest(live_bytes)
    if changed:
        return write(Action.UPDATE, changed, drift)
    if drift:
        # Same fields, other bytes (e.g. re-added by hand): nothing to write to the record,
        # but apply may refresh the marker so the drift is not reported forever.
        return replace(base, drift=True, marker_value=marker_for(live_bytes))
    if owned.marker is not None and owned.marker.sensitive != item.payload_sensitive:
        # Only the flag changed: apply records it, so a later delete masks (or shows) the payload.
        return replace(base, marker_value=marker_for(live_bytes))
    return base


def _plan_leftover(name: str, live: _Live, owned: _Owned | None, prune: bool, notices: list[Notice]) -> Change | None:
    entry = live.entry
    if owned is None:
        notices.append(
            Notice(
                NoticeKind.UNMANAGED,
                name,
                entry.key,
                entry.revision,
                f"{name} is not in the manifests and not managed by ajc-gitops; left alone "
                "(export it to manage it from Git)",
            )
        )
        return None
    drift = owned.marker is None or owned.marker.sha256 != record_digest(entry.value or b"")
    sensitive = _marked_sensitive(owned)
    removed = fields.listing(live.task, as_after=False) if live.task else ()
    if sensitive:
        removed = fields.masked(removed)
    change = Change(
        Action.DELETE if prune else Action.NOOP,
        name,
        entry.revision,
        None,
        owned.entry.revision,
        desired=None,
        live=live.task,
        fields=removed if prune else (),
        drift=drift,
        source=(owned.marker.source or None) if owned.marker else None,
        sensitive=sensitive,
    )
    if not prune:
        notices.append(
            Notice(
                NoticeKind.NOT_PRUNED,
                name,
                entry.key,
                entry.revision,
                f"{name} is managed by ajc-gitops but no longer in the manifests; kept (run with --prune to delete it)",
            )
        )
    return change


def compute_plan(
    desired: Sequence[DesiredSchedule],
    records: Snapshot,
    markers: Snapshot,
    *,
    now: datetime,
    server: str,
    prune: bool,
    adopt: frozenset[str] = frozenset(),
    bucket: str = CONFIG_BUCKET,
) -> Plan:
    """The plan that makes the store match ``desired``. ``records`` holds ``scheduled_tasks.*``
    (live and tombstones), ``markers`` ``ajc_gitops.managed.*``. Names in ``desired`` must be
    unique (the loader reports duplicates)."""
    now = now.astimezone(UTC)
    now_time = from_datetime(now)
    notices: list[Notice] = []
    owned, marker_tombstones = _read_markers(markers, notices)
    ctx = _Context(now_time, format_rfc3339nano(now_time), adopt, records, marker_tombstones, notices, {})
    wanted: dict[str, DesiredSchedule] = {}
    for item in desired:
        if wanted.setdefault(item.task.name, item) is not item:
            raise ValueError(f"duplicate desired schedule {item.task.name!r}")

    live_entries: dict[str, Entry] = {}
    for key, entry in records.live.items():
        name = _suffix(key, SCHEDULE_PREFIX)
        if name is None:
            notices.append(
                _skipped(key, entry.revision, "not a key Go reads (it watches scheduled_tasks.* only); ignored")
            )
        else:
            live_entries[name] = entry

    changes: list[Change] = []
    for name, item in wanted.items():
        found = live_entries.get(name)
        # The exact bytes a write would store (contract §2.1, created_at = plan time).
        value = codec.encode_scheduled_task(_with_time(item.task, now_time))
        live = None
        if found is not None:
            live = _fast_live(item.task, value, found) or _decode_live(name, found, notices)
        change = _plan_desired(item, value, live, owned.get(name), ctx, now)
        if change is not None:
            changes.append(change)
    for name, entry in live_entries.items():
        if name not in wanted:
            change = _plan_leftover(name, _decode_live(name, entry, notices), owned.get(name), prune, notices)
            if change is not None:
                changes.append(change)
    for name, own in owned.items():
        if name not in wanted and name not in live_entries:
            notices.append(
                Notice(
                    NoticeKind.ORPHAN_MARKER,
                    name,
                    own.entry.key,
                    own.entry.revision,
                    f"ownership marker for {name}, which is neither in the store nor in the manifests"
                    + ("; apply removes it" if prune else "; --prune removes it"),
                )
            )
    changes.sort(key=lambda c: c.name)
    notices.sort(key=lambda n: (n.key, n.kind.value, n.message))
    return Plan(FORMAT_VERSION, ctx.stamp, server, bucket, prune, tuple(changes), tuple(notices))

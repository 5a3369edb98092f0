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
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ajc_gitops import codec
from ajc_gitops.codec import encode_marker, record_digest
from ajc_gitops.gowire.gotime import GoTimeParseError, format_rfc3339nano, from_datetime, parse_json_time
from ajc_gitops.manifest.load import DesiredSchedule, PayloadForm
from ajc_gitops.model import GoTime, Marker, ScheduledTask
from ajc_gitops.names import CONFIG_BUCKET, SCHEDULE_PREFIX, schedule_key
from ajc_gitops.plan import fields
from ajc_gitops.plan.fires import fire_times
from ajc_gitops.plan.model import FORMAT_VERSION, Action, Change, FieldChange, FireTimes, Notice, NoticeKind, Plan
from ajc_gitops.plan.queues import missing_queues
from ajc_gitops.plan.reading import Live, Owned, decode_live, key_name, read_markers, skipped_notice
from ajc_gitops.plan.suspend import kept_task, suspended_marker

if TYPE_CHECKING:
    # Types only: store/ is the async, nats-importing world; plan/ stays synchronous
    # (STYLE.md module map) and only reads the frozen values it is given.
    from ajc_gitops.state import Entry, Snapshot

_CREATED_AT_TAIL = re.compile(rb',"created_at":("[^"\\]*")\}')


@dataclass
class _Context:
    now_time: GoTime
    stamp: str
    adopt: frozenset[str]
    records: Snapshot
    marker_tombstones: dict[str, int]
    notices: list[Notice]
    fire_cache: dict[str, FireTimes | None]


def _with_time(task: ScheduledTask, created_at: GoTime) -> ScheduledTask:
    # dataclasses.replace is several times slower, and this runs for every desired schedule.
    return ScheduledTask(
        task.name, task.schedule, task.queue, task.task_type, task.payload, task.deadline_ns, task.max_tries, created_at
    )


def _fast_live(desired: ScheduledTask, value: bytes, entry: Entry) -> Live | None:
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
    return Live(entry, _with_time(desired, created))


def _marker_bytes(name: str, record: bytes, source: str, ctx: _Context, *, sensitive: bool) -> bytes:
    return encode_marker(Marker(name, record_digest(record), source, ctx.stamp, sensitive))


def _marked_sensitive(owned: Owned | None) -> bool:
    return owned is not None and owned.marker is not None and owned.marker.sensitive


def _plan_desired(
    item: DesiredSchedule, value: bytes, live: Live | None, owned: Owned | None, ctx: _Context, now: datetime
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
            fires=fire_times(task.schedule, now, ctx.fire_cache),
        )

    held = owned.marker.suspended if owned is not None and owned.marker is not None else None
    if item.suspend and (owned is not None or live is None or name in ctx.adopt):
        return _plan_suspend(item, value, live, owned, ctx, base)
    if live is None and held is not None and owned is not None and owned.marker is not None:
        # Resume: a suspension deleted the record, so its absence is no drift.
        kept = kept_task(owned.marker)
        changed_since = fields.listing(task, as_after=True) if kept is None else _diff(item, kept)
        return write(Action.RESUME, changed_since, False)
    if live is None:
        # A marker without its record: the record was deleted outside Git (or an apply
        # stopped between Delete and Create, contract §3).
        return write(Action.CREATE, fields.listing(task, as_after=True), owned is not None)
    live_bytes = live.entry.value or b""
    if live.task is None:
        changed: tuple[FieldChange, ...] = (FieldChange("record", f"undecodable: {live.error}", "valid record"),)
    else:
        changed = _diff(item, live.task)
    if owned is None:
        if name not in ctx.adopt:
            ctx.notices.append(
                Notice(
                    NoticeKind.UNMANAGED_CONFLICT,
                    name,
                    live.entry.key,
                    live.entry.revision,
                    f"{source}: {name} was not created by ajc-gitops (e.g. ajc task cron add), so it cannot be "
                    f"suspended from Git until adopted; run with --adopt {name} to take it over"
                    if item.suspend
                    else f"{name} exists in the store but was not created by ajc-gitops (e.g. ajc task cron add); "
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
            fires=fire_times(task.schedule, now, ctx.fire_cache),
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


def _diff(item: DesiredSchedule, live: ScheduledTask) -> tuple[FieldChange, ...]:
    return fields.diff_fields(item.task, live, desired_is_json=item.payload_form is PayloadForm.JSON)


def _plan_suspend(
    item: DesiredSchedule, value: bytes, live: Live | None, owned: Owned | None, ctx: _Context, base: Change
) -> Change:
    """``suspend: true``: the marker keeps the definition and the reason, and a live record is
    deleted (revision-guarded) so that no scheduler, Go's included, fires it."""
    marker = owned.marker if owned is not None else None
    held = marker.suspended if marker is not None else None
    kept = kept_task(marker) if marker is not None else None
    compared = live.task if live is not None else kept
    changed = () if compared is None else _diff(item, compared)
    # Already suspended with this very definition: keep its record (and created_at).
    unchanged = live is None and held is not None and kept is not None and not changed
    if (
        unchanged
        and held is not None
        and marker is not None
        and (held.reason, marker.sensitive) == (item.suspend_reason, item.payload_sensitive)
    ):
        return replace(base, suspended=True, suspend_reason=held.reason)
    if owned is None:
        drift = False  # new, or adopted
    elif held is not None:
        drift = live is not None  # re-created outside Git while suspended
    else:
        # Not what ajc-gitops wrote, or deleted outside Git.
        drift = live is None or marker is None or marker.sha256 != record_digest(live.entry.value or b"")
    marker_value = suspended_marker(
        item.task.name,
        held.record if unchanged and held is not None else value,
        str(item.location),
        ctx.stamp,
        sensitive=item.payload_sensitive,
        reason=item.suspend_reason,
        since=held.at if held is not None else None,
    )
    return replace(
        base,
        action=Action.SUSPEND,
        fields=fields.masked(changed) if base.sensitive else changed,
        drift=drift,
        marker_value=marker_value,
        suspended=True,
        suspend_reason=item.suspend_reason,
    )


def _plan_leftover(name: str, live: Live, owned: Owned | None, prune: bool, notices: list[Notice]) -> Change | None:
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
    queues: Collection[str] | None = None,
) -> Plan:
    """The plan that makes the store match ``desired``. ``records`` holds ``scheduled_tasks.*``
    (live and tombstones), ``markers`` ``ajc_gitops.managed.*``. Names in ``desired`` must be
    unique (the loader reports duplicates). ``queues``, the queues that exist (None: unknown),
    turns every schedule that fires after apply into a queue that does not into a warning."""
    now = now.astimezone(UTC)
    now_time = from_datetime(now)
    notices: list[Notice] = []
    owned, marker_tombstones = read_markers(markers, notices)
    ctx = _Context(now_time, format_rfc3339nano(now_time), adopt, records, marker_tombstones, notices, {})
    wanted: dict[str, DesiredSchedule] = {}
    for item in desired:
        if wanted.setdefault(item.task.name, item) is not item:
            raise ValueError(f"duplicate desired schedule {item.task.name!r}")

    live_entries: dict[str, Entry] = {}
    for key, entry in records.live.items():
        name = key_name(key, SCHEDULE_PREFIX)
        if name is None:
            notices.append(
                skipped_notice(key, entry.revision, "not a key Go reads (it watches scheduled_tasks.* only); ignored")
            )
        else:
            live_entries[name] = entry

    changes: list[Change] = []
    untouched: list[tuple[str, str]] = []  # (name, queue) of live schedules the plan leaves alone
    for name, item in wanted.items():
        found = live_entries.get(name)
        # The exact bytes a write would store (contract §2.1, created_at = plan time).
        value = codec.encode_scheduled_task(_with_time(item.task, now_time))
        live = None
        if found is not None:
            live = _fast_live(item.task, value, found) or decode_live(name, found, notices)
        change = _plan_desired(item, value, live, owned.get(name), ctx, now)
        if change is not None:
            changes.append(change)
        elif live is not None and live.task is not None:
            untouched.append((name, live.task.queue))  # blocked: the hand-made record stays
    for name, entry in live_entries.items():
        if name not in wanted:
            decoded = decode_live(name, entry, notices)
            change = _plan_leftover(name, decoded, owned.get(name), prune, notices)
            if change is not None:
                changes.append(change)
            elif decoded.task is not None:
                untouched.append((name, decoded.task.queue))
    for name, own in owned.items():
        if name not in wanted and name not in live_entries:
            notices.append(
                Notice(
                    NoticeKind.ORPHAN_MARKER,
                    name,
                    own.entry.key,
                    own.entry.revision,
                    (
                        f"{name} is suspended and no longer in the manifests; its definition is kept only in "
                        "the ownership marker"
                        if own.marker is not None and own.marker.suspended is not None
                        else f"ownership marker for {name}, which is neither in the store nor in the manifests"
                    )
                    + ("; apply removes it" if prune else "; --prune removes it"),
                )
            )
    changes.sort(key=lambda c: c.name)
    notices.sort(key=lambda n: (n.key, n.kind.value, n.message))
    warnings = () if queues is None else missing_queues([*_firing(changes), *untouched], queues)
    return Plan(FORMAT_VERSION, ctx.stamp, server, bucket, prune, tuple(changes), tuple(notices), warnings)


def _firing(changes: Sequence[Change]) -> list[tuple[str, str]]:
    """(name, queue) of every schedule a scheduler fires once the plan is applied."""
    found = []
    for change in changes:
        task = change.desired or change.live
        if task is not None and not change.suspended and change.action is not Action.DELETE:
            found.append((change.name, task.queue))
    return found

"""Suspended schedules (``suspend: true``), read from the ownership markers. Pure.

asyncjobs has no suspend field, so a suspended schedule is one whose ``scheduled_tasks.<name>``
record was deleted by apply while its ownership marker keeps the definition, the reason and
the time (``codec/marker.py``). No scheduler, Go's included, sees a record that is not there, so
nothing fires it; ``plan`` shows ``suspend`` and ``resume`` as actions, and ``status`` and
``export`` read the same marker through ``suspended_schedules``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ajc_gitops import codec
from ajc_gitops.codec import MarkerError, decode_marker, encode_marker, record_digest
from ajc_gitops.model import Marker, ScheduledTask, Suspension
from ajc_gitops.names import MARKER_PREFIX, schedule_key
from ajc_gitops.plan.model import Action, Change

if TYPE_CHECKING:
    from ajc_gitops.state import Snapshot

__all__ = ["Suspended", "kept_task", "suspended_marker", "suspended_schedules", "suspension_of", "suspension_problem"]


@dataclass(frozen=True, slots=True)
class Suspended:
    """One suspended schedule as the store holds it."""

    name: str
    reason: str  # the manifest's suspend_reason, "" when none was given
    since: str  # RFC3339 UTC of the apply that suspended it
    task: ScheduledTask | None  # the kept definition; None when the kept record does not decode
    source: str  # manifest file:line:col when it was last applied, "" when unknown
    marker_revision: int
    # A record exists anyway (re-created outside Git, e.g. ``ajc task cron add``): it fires,
    # and the next plan suspends it again.
    record_live: bool = False


def kept_task(marker: Marker) -> ScheduledTask | None:
    """The definition a suspended marker keeps, or None (not suspended, or not a record Go
    could decode, or one naming another schedule)."""
    if marker.suspended is None:
        return None
    result = codec.decode_scheduled_task(marker.suspended.record)
    if result.error is not None or result.task.name != marker.name:
        return None
    return result.task


def suspended_marker(
    name: str, record: bytes, source: str, stamp: str, *, sensitive: bool, reason: str, since: str | None
) -> bytes:
    """The marker of a suspended schedule keeping ``record``; ``since`` is kept from an earlier
    suspension (a new reason or definition does not restart the clock), else ``stamp``."""
    held = Suspension(since or stamp, reason, record)
    return encode_marker(Marker(name, record_digest(record), source, stamp, sensitive, held))


def suspension_problem(change: Change, marker: Marker) -> tuple[str, str] | None:
    """What is wrong with the marker a saved plan's change would write, as (where below the
    marker, what), or None. It must say what the change says: suspended, keeping a record of this
    very schedule with this reason, for a suspend; not suspended otherwise."""
    held = marker.suspended
    if (held is not None) != (change.action is Action.SUSPEND):
        return "", f"a {change.action.value} change with a{' suspended' if held else ' not suspended'} marker"
    if held is None or change.desired is None:
        return None
    result = codec.decode_scheduled_task(held.record)
    if result.error is not None or result.task.name != change.name:
        return ".suspended.record", f"not a record of {change.name} Go can decode ({result.error or 'other name'})"
    if replace(result.task, created_at=change.desired.created_at) != change.desired:
        return ".suspended.record", "the definition kept differs from the desired schedule"
    if not change.suspended or held.reason != (change.suspend_reason or ""):
        return ".suspended.reason", "differs from the change's suspend_reason"
    return None


def _read(name: str, markers: Snapshot, records: Snapshot | None) -> Suspended | None:
    entry = markers.live.get(MARKER_PREFIX + name)
    if entry is None:
        return None
    try:
        marker = decode_marker(entry.value or b"")
    except MarkerError:
        return None  # plan reports an unreadable marker; it says nothing about suspension
    if marker.suspended is None or marker.name != name:
        return None
    return Suspended(
        name,
        marker.suspended.reason,
        marker.suspended.at,
        kept_task(marker),
        marker.source,
        entry.revision,
        record_live=records is not None and schedule_key(name) in records.live,
    )


def suspension_of(name: str, markers: Snapshot, records: Snapshot | None = None) -> Suspended | None:
    """Whether ``name`` is suspended, why and since when, from the markers snapshot (``records``,
    when given, tells whether a record fires anyway)."""
    return _read(name, markers, records)


def suspended_schedules(markers: Snapshot, records: Snapshot | None = None) -> dict[str, Suspended]:
    """Every suspended schedule, by name."""
    found = {}
    for key in markers.live:
        name = key[len(MARKER_PREFIX) :]
        if key.startswith(MARKER_PREFIX) and (item := _read(name, markers, records)) is not None:
            found[name] = item
    return found

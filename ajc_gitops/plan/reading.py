"""What a plan reads from the store, decoded once: live records (Go-exact, with what Go would
skip or misread as notices) and ownership markers. Pure; used by ``diff.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ajc_gitops import codec
from ajc_gitops.codec import MarkerError, decode_marker
from ajc_gitops.model import Marker, ScheduledTask
from ajc_gitops.names import MARKER_PREFIX
from ajc_gitops.plan.model import Notice, NoticeKind
from ajc_gitops.rules import name_problem

if TYPE_CHECKING:
    from ajc_gitops.state import Entry, Snapshot

__all__ = ["Live", "Owned", "decode_live", "key_name", "read_markers", "skipped_notice"]


@dataclass(frozen=True, slots=True)
class Live:
    entry: Entry
    task: ScheduledTask | None  # None: Go cannot decode it
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Owned:
    entry: Entry
    marker: Marker | None  # None: the marker's value is not ours (still counts as managed)


def key_name(key: str, prefix: str) -> str | None:
    """The name token of a key, or None when Go's ``<prefix>*`` watch does not see the key."""
    name = key[len(prefix) :]
    return name if key.startswith(prefix) and name and "." not in name else None


def skipped_notice(key: str, revision: int | None, what: str) -> Notice:
    return Notice(
        NoticeKind.INVALID_RECORD,
        key.rpartition(".")[2],
        key,
        revision,
        what,
    )


def read_markers(markers: Snapshot, notices: list[Notice]) -> tuple[dict[str, Owned], dict[str, int]]:
    owned: dict[str, Owned] = {}
    for key, entry in markers.live.items():
        name = key_name(key, MARKER_PREFIX)
        if name is None or name_problem(name) is not None:
            notices.append(skipped_notice(key, entry.revision, "not an ajc-gitops marker key (bad name); ignored"))
            continue
        marker: Marker | None = None
        try:
            marker = decode_marker(entry.value or b"")
            if marker.name != name:
                raise MarkerError(f"marker names {marker.name!r}, not {name!r}")
        except MarkerError as exc:
            marker = None
            notices.append(
                skipped_notice(
                    key, entry.revision, f"ownership marker is unreadable ({exc}); {name} still counts as managed"
                )
            )
        owned[name] = Owned(entry, marker)
    tombstones = {}
    for key, entry in markers.tombstones.items():
        name = key_name(key, MARKER_PREFIX)
        if name is not None:
            tombstones[name] = entry.revision
    return owned, tombstones


def decode_live(name: str, entry: Entry, notices: list[Notice]) -> Live:
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
        return Live(entry, None, str(result.error))
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
    return Live(entry, task)

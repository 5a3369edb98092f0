"""The plan is data: what apply will do, key by key, with the KV revisions it was computed
from. ``diff.py`` builds it, renderers show it, ``planfile.py`` saves it and ``apply.py``
executes exactly it.

Ownership: a schedule is managed by ajc-gitops when the config bucket holds a marker key
``ajc_gitops.managed.<name>`` beside ``scheduled_tasks.<name>``. Go readers only watch
``scheduled_tasks.*`` (contract §2.1), so the marker never changes what Go sees and the record
itself stays byte-identical to what Go writes. The marker's value records the SHA-256 of the
record bytes ajc-gitops last wrote, which is how drift (a change made outside Git) is told apart
from a change made in Git.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ajc_gitops.model import ScheduledTask
from ajc_gitops.names import schedule_key

FORMAT_VERSION = 1


class Action(StrEnum):
    CREATE = "create"  # absent live: write marker, then KV Create
    UPDATE = "update"  # differs: write marker, then guarded Delete, then Create (contract §3)
    DELETE = "delete"  # managed, gone from Git, --prune: guarded Delete, then drop the marker
    ADOPT = "adopt"  # hand-made schedule taken over on request: write the marker (and update if it differs)
    SUSPEND = "suspend"  # suspend: true: write the suspended marker, then guarded Delete of a live record
    RESUME = "resume"  # the flag removed: write the marker, then KV Create over the tombstone
    NOOP = "no-op"


class NoticeKind(StrEnum):
    UNMANAGED = "unmanaged"  # live, not in Git, not ours: left alone
    UNMANAGED_CONFLICT = "unmanaged_conflict"  # in Git, but a hand-made schedule holds the name: needs --adopt
    NOT_PRUNED = "not_pruned"  # managed, gone from Git, kept because --prune was not given
    INVALID_RECORD = "invalid_record"  # a live record Go cannot decode, or whose name differs from its key
    LEGACY_RECORD = "legacy_record"  # decodes, with a warning (e.g. the 2022 MaxTries field)
    ORPHAN_MARKER = "orphan_marker"  # a marker without a record and not in Git


class WarningKind(StrEnum):
    MISSING_QUEUE = "missing_queue"  # a schedule fires into a queue that has no stream: queue_error
    QUEUES_UNCHECKED = "queues_unchecked"  # the queue streams could not be listed (permissions?)


@dataclass(frozen=True, slots=True)
class PlanWarning:
    """Not a change and not about one key: something that will go wrong after apply.
    ``command`` is the command that fixes it, when there is one."""

    kind: WarningKind
    message: str  # one line for humans
    queue: str | None = None
    schedules: tuple[str, ...] = ()
    command: str | None = None


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field's before and after, already as display text (payload as JSON or base64)."""

    field: str
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class FireTimes:
    """The next fire instants of a created or changed schedule, RFC3339 in UTC, plus the
    schedule's own zone when it has a CRON_TZ=/TZ= prefix."""

    utc: tuple[str, ...]
    zone: str | None = None
    local: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    name: str
    # What was read: the schedule record's revision (None when absent), the revision of its
    # tombstone (a Create must expect it), and the ownership marker's revision.
    record_revision: int | None
    tombstone_revision: int | None
    marker_revision: int | None
    desired: ScheduledTask | None
    live: ScheduledTask | None
    fields: tuple[FieldChange, ...] = ()
    drift: bool = False  # the live record is not what ajc-gitops last wrote
    source: str | None = None  # manifest file:line:col
    value: bytes | None = None  # the exact record bytes to write (codec output)
    marker_value: bytes | None = None  # the exact marker bytes to write
    fires: FireTimes | None = None
    # The marker's tombstone revision, for a marker Create over a deleted marker (contract §3:
    # KV Create expects the tombstone's revision).
    marker_tombstone_revision: int | None = None
    # The payload is sensitive (the manifest or the ownership marker says so): its
    # FieldChange texts are masked, and renderers have nothing else that shows it.
    sensitive: bool = False
    # After apply the schedule is suspended (its record absent, its definition in the marker),
    # and why; ``suspend_reason`` is None when it is not suspended.
    suspended: bool = False
    suspend_reason: str | None = None

    @property
    def key(self) -> str:
        return schedule_key(self.name)


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    name: str
    key: str
    revision: int | None
    message: str
    blocking: bool = False  # apply refuses while it stands
    source: str | None = None  # manifest file:line:col when a manifest entry is involved


@dataclass(frozen=True, slots=True)
class Plan:
    format_version: int
    created_at: str  # RFC3339 UTC
    server: str  # redacted server description
    bucket: str
    prune: bool
    changes: tuple[Change, ...]  # every managed or desired name, no-ops included, sorted by name
    notices: tuple[Notice, ...]
    warnings: tuple[PlanWarning, ...] = ()

    def count(self, action: Action) -> int:
        return sum(1 for c in self.changes if c.action is action)

    @property
    def to_add(self) -> int:
        return self.count(Action.CREATE)

    @property
    def to_change(self) -> int:
        return self.count(Action.UPDATE) + self.count(Action.ADOPT)

    @property
    def to_destroy(self) -> int:
        return self.count(Action.DELETE)

    @property
    def to_suspend(self) -> int:
        return self.count(Action.SUSPEND)

    @property
    def to_resume(self) -> int:
        return self.count(Action.RESUME)

    @property
    def has_changes(self) -> bool:
        return any(c.action is not Action.NOOP for c in self.changes)

    @property
    def blocked(self) -> tuple[Notice, ...]:
        return tuple(n for n in self.notices if n.blocking)

    @property
    def drifted(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.drift)

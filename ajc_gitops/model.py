"""The data model, defined once. No JSON, YAML or NATS here: ``codec`` owns the wire form and
``manifest`` the YAML form; both build these values. KV entries and snapshots, the values the
store reads and writes, are in ``state``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

NANOS_PER_SECOND = 1_000_000_000

# Go's zero time.Time, 0001-01-01T00:00:00Z, as nanoseconds since the Unix epoch.
_GO_ZERO_UNIX_NS = -62_135_596_800 * NANOS_PER_SECOND


@dataclass(frozen=True, slots=True)
class GoTime:
    """A Go ``time.Time`` as a record carries it: the instant, plus the UTC offset it was
    written with (Go re-marshals a decoded time with its original offset)."""

    unix_ns: int
    offset_s: int = 0

    @property
    def is_zero(self) -> bool:
        return self.unix_ns == _GO_ZERO_UNIX_NS


ZERO_TIME = GoTime(unix_ns=_GO_ZERO_UNIX_NS)


@dataclass(frozen=True, slots=True)
class ScheduledTask:
    """One asyncjobs Scheduled Task, field for field as Go's ``asyncjobs.ScheduledTask``
    (contract §2.1). ``payload`` is the stored bytes: ``None`` is Go's nil (JSON ``null``),
    ``b""`` an empty non-nil slice."""

    name: str
    schedule: str
    queue: str
    task_type: str
    payload: bytes | None = None
    deadline_ns: int = 0
    max_tries: int = 0
    created_at: GoTime = field(default=ZERO_TIME)


# Go's TaskState values (task.go); a scheduler only writes "new" and "queue_error".
TaskState = Literal[
    "new", "active", "retry", "expired", "terminated", "complete", "queue_error", "blocked", "unreachable"
]


@dataclass(frozen=True, slots=True)
class Task:
    """An asyncjobs Task as a scheduler creates it: the fields of Go's ``asyncjobs.Task``
    (contract §4.2) that a fire sets. The others (dependencies, dependency results,
    load_dependencies, result, tried, signature) are omitempty and never set by a scheduler
    (Go's scheduler does not even sign, §4.1), so they are not modelled.

    ``payload`` is Go's ``Task.Payload``: the bytes a worker receives. For a fired schedule
    that is the JSON encoding of the schedule's stored bytes (``b"null"`` or a quoted
    base64 string, §4.2), see ``codec.task_payload_for_schedule``; ``None`` is Go's nil.
    ``deadline`` is ``None`` when the schedule has none (the key is then omitted)."""

    id: str
    type: str
    queue: str
    payload: bytes | None
    max_tries: int
    created: GoTime
    deadline: GoTime | None = None
    state: TaskState = "new"
    tries: int = 0
    last_err: str = ""


@dataclass(frozen=True, slots=True)
class Suspension:
    """A schedule suspended from Git (``suspend: true``): its record is deleted, so no
    scheduler fires it (Go has no such field), and its definition is kept here instead."""

    at: str  # RFC3339 UTC of the plan that first suspended it
    reason: str  # the manifest's suspend_reason, "" when none
    record: bytes  # the record bytes resuming would write (codec output, created_at = ``at``)


@dataclass(frozen=True, slots=True)
class Marker:
    """The ownership marker ajc-gitops writes beside each schedule it manages (``plan/model.py``)."""

    name: str
    sha256: str  # hex SHA-256 of the record bytes ajc-gitops wrote (or last found equal to Git)
    source: str  # manifest file:line:col, "" when unknown
    applied_at: str  # RFC3339 UTC of the plan that produced it
    # The manifest marked the payload sensitive. Written only when true, so the markers of
    # every other schedule keep the bytes they had before the flag existed.
    sensitive: bool = False
    # Suspended from Git: the record is absent on purpose and ``sha256`` is the digest of
    # ``suspended.record``. None for every schedule that is not suspended.
    suspended: Suspension | None = None


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """One member's marker. ``go_horizon_ns``: the latest Unix-ns instant a Go leader this
    member saw may have fired at (None: it never saw one); ``go_leader`` its name.
    ``handled_through_s``/``handled_revision``: while it led, every slot at or before that
    second of every schedule whose record revision is at most ``handled_revision`` was fired
    (or is out of any window), so a next leader need not attempt those again.
    ``leading_since_ns``: when this member's current (or last) term as leader began.
    ``go_leader_since_ns``: when this member first saw ``go_leader`` holding the key.
    Both only inform ``status``; nothing schedules from them."""

    name: str
    started_ns: int
    go_leader: str | None = None
    go_horizon_ns: int | None = None
    handled_through_s: int | None = None
    handled_revision: int | None = None
    leading_since_ns: int | None = None
    go_leader_since_ns: int | None = None


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """What ``dev`` shows of an asyncjobs task_state event (contract §4.4 step 2)."""

    task_id: str
    state: str
    task_type: str
    queue: str
    last_error: str

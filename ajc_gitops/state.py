"""What the store reads and writes, as plain values: KV entries and snapshots, write operations
and their outcomes, stream summaries. Plan, apply, export and the scheduler use these without
knowing NATS; ``store`` is the only package that makes them from the wire.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from ajc_gitops.names import SCHEDULE_PREFIX

__all__ = [
    "EnqueueOutcome",
    "EnqueueStatus",
    "Entry",
    "Holder",
    "InitialDone",
    "KvDelete",
    "KvPurge",
    "KvPut",
    "Operation",
    "Outcome",
    "RequeueOutcome",
    "RequeueStatus",
    "Snapshot",
    "StoredMessage",
    "StreamSummary",
    "TaskScan",
    "WatchEvent",
    "WriteOp",
    "check_not_schedule",
]

Operation = Literal["PUT", "DEL", "PURGE"]
EnqueueStatus = Literal["enqueued", "duplicate", "queue_error", "error"]
RequeueStatus = Literal["requeued", "moved_on", "failed"]


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    value: bytes | None  # None for DEL/PURGE tombstones
    revision: int
    operation: Operation


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every key under ``prefix`` (last value per subject), split into live and tombstoned."""

    prefix: str
    live: Mapping[str, Entry]
    tombstones: Mapping[str, Entry]

    @classmethod
    def build(cls, prefix: str, entries: Iterator[Entry] | Sequence[Entry]) -> Snapshot:
        live: dict[str, Entry] = {}
        dead: dict[str, Entry] = {}
        for e in sorted(entries, key=lambda e: e.key):
            (live if e.operation == "PUT" else dead)[e.key] = e
        return cls(prefix, MappingProxyType(live), MappingProxyType(dead))

    def get(self, key: str) -> Entry | None:
        return self.live.get(key)

    def tombstone_revision(self, key: str) -> int | None:
        """The revision a Create must expect when ``key`` was deleted (contract §5)."""
        entry = self.tombstones.get(key)
        return entry.revision if entry is not None else None

    def __len__(self) -> int:
        return len(self.live)


@dataclass(frozen=True, slots=True)
class WriteOp:
    kind: Literal["create", "update", "delete", "purge"]
    key: str
    value: bytes | None = None
    revision: int | None = None  # create: the tombstone revision; update/delete/purge: the guard

    @classmethod
    def create(cls, key: str, value: bytes, *, tombstone_revision: int | None) -> WriteOp:
        return cls("create", key, value, tombstone_revision)

    @classmethod
    def update(cls, key: str, value: bytes, *, revision: int) -> WriteOp:
        """Revision-guarded Update: never for ``scheduled_tasks.*`` (contract §0.3)."""
        check_not_schedule(key)
        return cls("update", key, value, revision)

    @classmethod
    def delete(cls, key: str, *, revision: int) -> WriteOp:
        return cls("delete", key, None, revision)

    @classmethod
    def purge(cls, key: str, *, revision: int | None = None) -> WriteOp:
        return cls("purge", key, None, revision)


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    status: Literal["ok", "conflict", "error"]
    revision: int | None = None  # the new revision when ok
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StreamSummary:
    name: str
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    num_subjects: int
    config: Mapping[str, Any] = field(repr=False)  # the server's JSON stream config


def check_not_schedule(key: str) -> None:
    # Contract §0.3/§3: an Update of a live schedule is still a Put to a Go scheduler, which
    # then fires the old and the new definition. Schedules change by Delete, then Create.
    if key.startswith(SCHEDULE_PREFIX):
        raise ValueError(f"KV Update of {key} refused: schedules change by Delete then Create (contract §3)")


# -- the asyncjobs adapters: the election key, a KV watch, enqueued tasks ------------------


@dataclass(frozen=True, slots=True)
class Holder:
    """The election key as the stream leader has it now: ``name`` None when absent/deleted."""

    name: str | None
    revision: int | None


@dataclass(frozen=True, slots=True)
class KvPut:
    key: str
    value: bytes
    revision: int


@dataclass(frozen=True, slots=True)
class KvDelete:
    key: str
    revision: int


@dataclass(frozen=True, slots=True)
class KvPurge:
    key: str
    revision: int


@dataclass(frozen=True, slots=True)
class InitialDone:
    """Every key's latest entry as of the session's start has been delivered. ``session``
    counts watch sessions: > 1 means the watch was re-created and events may have been
    missed in between (the caller should resync from a snapshot)."""

    session: int
    count: int


WatchEvent = KvPut | KvDelete | KvPurge | InitialDone


@dataclass(frozen=True, slots=True)
class EnqueueOutcome:
    """What became of one task.

    ``enqueued``: stored, event sent, work item accepted. ``duplicate``: the task subject
    already had a record, i.e. this slot was fired before (not an error; the deterministic
    ID makes a second attempt land here). ``queue_error``: stored, but the work item was
    refused; the record now says ``queue_error`` with Go's ``last_err`` in ``error``, unless
    ``state_error`` says storing that state failed too. ``error``: the task was not stored.
    ``stored_ns`` is the wall clock when the record's PubAck arrived (fire lag).
    ``repaired``: a duplicate whose earlier attempt had stored the task but not its work
    item (a crash between the two publishes); the item was published now. ``requeue``: a
    ``queue_error`` whose cause may pass (a timeout, no responders while the queue stream
    exists, a lost connection), so resending the work item is worth it; False for Go's
    permanent causes (no queue stream, a JetStream error such as a full queue, a duplicate)."""

    task_id: str
    queue: str
    status: EnqueueStatus
    task_seq: int | None = None
    stored_ns: int | None = None
    error: str | None = None
    state_error: str | None = None
    repaired: bool = False
    requeue: bool = False


@dataclass(frozen=True, slots=True)
class RequeueOutcome:
    """One attempt at requeueing a stranded task (``store/asyncjobs/requeue.py``).

    ``requeued``: its work item is in the queue (sent now, or found there as a duplicate) and
    its record says ``new`` again. ``moved_on``: its record is in another ``state`` (a worker
    or an operator took it; ``absent`` when there is no record): nothing to do. ``failed``:
    try again later; ``error`` says why."""

    task_id: str
    status: RequeueStatus
    state: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A task record as ``CHORIA_AJ_TASKS`` holds it: the subject's ID token, the body, the
    stream sequence and the time of its last write (Unix ns, the server's clock; 0 where the
    read does not need it)."""

    task_id: str
    data: bytes
    seq: int
    time_ns: int


@dataclass(frozen=True, slots=True)
class TaskScan:
    """A bounded read of task records in stream order. ``complete``: every record written
    since the scan's start time was read; otherwise the limit cut it short."""

    messages: tuple[StoredMessage, ...]
    complete: bool
    scanned: int

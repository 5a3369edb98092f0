"""The status report as frozen values (``docs/plan-json.md``'s sibling for ``status``: the
JSON renderer writes exactly these fields, under ``format_version``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = [
    "FAILED_STATES",
    "FORMAT_VERSION",
    "LeaderKind",
    "LeaderStatus",
    "ScheduleState",
    "ScheduleStatus",
    "SlotKind",
    "SlotStatus",
    "SlotTask",
    "StatusReport",
]

FORMAT_VERSION = 1
# asyncjobs task states that end a task without success (task.go). queue_error: the work
# item was refused (a missing queue stream, contract §4.4 step 4).
FAILED_STATES = frozenset({"terminated", "expired", "queue_error"})
LeaderKind = Literal["go", "ajc-gitops"]


class ScheduleState(StrEnum):
    ACTIVE = "active"
    # Filled by the suspend/resume work (issue 12 item 1): a schedule whose record was
    # removed on purpose while its definition is kept. Nothing sets it yet.
    SUSPENDED = "suspended"
    DRIFTED = "drifted"  # managed, but the record differs from what ajc-gitops wrote
    INVALID = "invalid"  # Go cannot decode it, or its cron spec does not parse: it never fires
    HAND_MADE = "hand-made"  # no ownership marker


class SlotKind(StrEnum):
    FIRED = "fired"  # a task exists, created within the grace after the slot
    LATE = "late"  # a task exists, created later: a catch-up fire (or a slow one)
    MISSED = "missed"  # no task, and every way of finding one was tried
    UNKNOWN = "unknown"  # no task found by ID, and the bounded scan could not tell
    PENDING = "pending"  # too recent to judge: the fire may be under way


@dataclass(frozen=True, slots=True)
class SlotTask:
    id: str
    state: str  # as asyncjobs records it: new, active, retry, complete, expired, terminated, queue_error
    tries: int
    last_err: str
    created_ns: int
    found_by: Literal["id", "scan"]  # deterministic ID lookup, or matched in the bounded scan

    @property
    def failed(self) -> bool:
        return self.state in FAILED_STATES


@dataclass(frozen=True, slots=True)
class SlotStatus:
    instant_s: int  # Unix seconds of the cron instant
    kind: SlotKind
    task: SlotTask | None = None
    lag_s: float | None = None  # task created minus instant
    note: str = ""

    @property
    def catchup(self) -> bool:
        return self.kind is SlotKind.LATE


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    name: str
    state: ScheduleState
    reason: str  # why, for suspended, drifted, invalid (empty otherwise)
    schedule: str
    queue: str
    task_type: str
    next_fires: tuple[int, ...]  # Unix seconds
    slots: tuple[SlotStatus, ...]
    queue_missing: bool = False  # its queue has no stream: every fire ends in queue_error

    def count(self, kind: SlotKind) -> int:
        return sum(1 for s in self.slots if s.kind is kind)

    @property
    def failed(self) -> int:
        return sum(1 for s in self.slots if s.task is not None and s.task.failed)


@dataclass(frozen=True, slots=True)
class LeaderStatus:
    holder: str | None  # the election key's value; None: nobody leads
    kind: LeaderKind | None
    since_ns: int | None  # when it took the key, as far as any ajc-gitops member knows
    note: str = ""


@dataclass(frozen=True, slots=True)
class StatusReport:
    server: str
    now_s: int
    since_s: int  # the window's start: slots in (since_s, until_s or now_s] are shown
    leader: LeaderStatus
    schedules: tuple[ScheduleStatus, ...]
    not_found: tuple[str, ...] = ()  # names asked for that have no record
    notes: tuple[str, ...] = ()  # about the scan: how far it read, what it could not tell
    until_s: int | None = None  # the window's end when not now_s (backfill)

    def total(self, kind: SlotKind) -> int:
        return sum(s.count(kind) for s in self.schedules)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.schedules)

"""The data model, defined once. No JSON, YAML or NATS here: ``codec`` owns the wire form and
``manifest`` the YAML form; both build these values."""

from __future__ import annotations

from dataclasses import dataclass, field

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

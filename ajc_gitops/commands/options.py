"""What each command takes: one frozen value per subcommand, filled by ``cli/app.py`` from the
flags (or by a test directly) and passed to ``commands/<name>.run``. Light on purpose: the CLI
imports it at start, before knowing which command runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ajc_gitops.connect.options import ConnectFlags
from ajc_gitops.scheduler.metric_names import DEFAULT_SCHEDULE_SERIES_LIMIT

__all__ = [
    "ApplyOptions",
    "BackfillOptions",
    "CommandOptions",
    "DevOptions",
    "ExportOptions",
    "NextOptions",
    "PlanOptions",
    "SchedulerOptions",
    "StatusOptions",
    "TriggerOptions",
    "ValidateOptions",
]

_HERE = (Path("."),)


@dataclass(frozen=True, slots=True)
class ValidateOptions:
    paths: tuple[Path, ...] = _HERE
    output_format: str = "text"


@dataclass(frozen=True, slots=True)
class NextOptions:
    schedule: str
    after: str | None = None  # RFC3339; None: now
    count: int = 5
    output_format: str = "text"


@dataclass(frozen=True, slots=True)
class PlanOptions:
    paths: tuple[Path, ...] = _HERE
    connect: ConnectFlags = field(default_factory=ConnectFlags)
    out: Path | None = None
    output_format: str = "text"
    prune: bool = False
    adopt: tuple[str, ...] = ()  # as typed: repeated and/or comma lists, checked by the command
    detailed_exitcode: bool = False


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    paths: tuple[Path, ...] = _HERE  # manifests, or one saved plan file
    connect: ConnectFlags = field(default_factory=ConnectFlags)
    auto_approve: bool = False
    prune: bool = False
    adopt: tuple[str, ...] = ()
    allow_empty: bool = False
    detailed_exitcode: bool = False
    replicas: int = 1
    memory: bool = False


@dataclass(frozen=True, slots=True)
class ExportOptions:
    names: tuple[str, ...] = ()  # empty: every live schedule
    connect: ConnectFlags = field(default_factory=ConnectFlags)
    out_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class DevOptions:
    paths: tuple[Path, ...] = ()  # empty: examples/schedules
    once: bool = False
    state_dir: Path = Path(".ajc-gitops")


@dataclass(frozen=True, slots=True)
class SchedulerOptions:
    name: str | None = None
    connect: ConnectFlags = field(default_factory=ConnectFlags)
    monitor: int | None = None
    log_format: str = "text"
    catchup_window: str | None = None
    schedule_metrics_limit: int = DEFAULT_SCHEDULE_SERIES_LIMIT


@dataclass(frozen=True, slots=True)
class StatusOptions:
    names: tuple[str, ...] = ()  # empty: every schedule
    connect: ConnectFlags = field(default_factory=ConnectFlags)
    since: str = "24h"  # a Go duration: the window of due slots shown
    output_format: str = "text"
    fail_on: tuple[str, ...] = ()  # as typed: repeated and/or comma lists of missed, failed, unknown
    scan_limit: int = 50_000
    read: str = "id"  # id: a lookup per slot; stream: one pass over the window, then lookups


@dataclass(frozen=True, slots=True)
class TriggerOptions:
    name: str
    connect: ConnectFlags = field(default_factory=ConnectFlags)


@dataclass(frozen=True, slots=True)
class BackfillOptions:
    name: str
    start: str  # --from, RFC3339
    end: str  # --to, RFC3339
    connect: ConnectFlags = field(default_factory=ConnectFlags)
    auto_approve: bool = False
    max_slots: int = 1000
    scan_limit: int = 50_000


CommandOptions = (
    ValidateOptions
    | NextOptions
    | PlanOptions
    | ApplyOptions
    | ExportOptions
    | DevOptions
    | SchedulerOptions
    | StatusOptions
    | TriggerOptions
    | BackfillOptions
)

"""Small builders for plan tests: tasks, records, snapshots, markers, and a plan from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from ajc_gitops import codec
from ajc_gitops.codec import encode_marker, record_digest
from ajc_gitops.gowire.gotime import parse_rfc3339
from ajc_gitops.manifest.load import DesiredSchedule, PayloadForm
from ajc_gitops.model import Marker, ScheduledTask, Suspension
from ajc_gitops.names import MARKER_PREFIX, SCHEDULE_PREFIX
from ajc_gitops.plan.diff import compute_plan
from ajc_gitops.plan.model import Plan
from ajc_gitops.problems import Location
from ajc_gitops.state import Entry, Snapshot

NOW = datetime(2026, 11, 27, 9, 0, 0, 123456, tzinfo=UTC)
WRITTEN = "2026-07-22T08:39:24.1234567Z"


def task(name: str = "EMAIL", **kw: object) -> ScheduledTask:
    fields: dict[str, object] = {
        "schedule": "0 0 1 * *",
        "queue": "EMAIL",
        "task_type": "email:monthly",
        "payload": None,
        "deadline_ns": 0,
        "max_tries": 10,
    }
    fields.update(kw)
    return ScheduledTask(name=name, **fields)  # type: ignore[arg-type]


def want(
    t: ScheduledTask,
    form: PayloadForm | None = None,
    line: int = 3,
    *,
    sensitive: bool = False,
    suspend: bool = False,
    reason: str = "",
) -> DesiredSchedule:
    if form is None:
        form = PayloadForm.NONE if t.payload is None else PayloadForm.JSON
    where = Location("schedules/app.yaml", line, 5)
    return DesiredSchedule(t, where, form, sensitive, suspend=suspend, suspend_reason=reason)


def record(t: ScheduledTask, created: str = WRITTEN) -> bytes:
    return codec.encode_scheduled_task(replace(t, created_at=parse_rfc3339(created)))


def marker(
    name: str, record_bytes: bytes, source: str = "schedules/app.yaml:3:5", *, sensitive: bool = False
) -> bytes:
    return encode_marker(Marker(name, record_digest(record_bytes), source, "2026-11-01T00:00:00Z", sensitive))


def suspended(t: ScheduledTask, reason: str = "", *, since: str = "2026-11-01T00:00:00Z") -> bytes:
    """The marker of ``t`` suspended by an earlier apply (its record is absent)."""
    kept = record(t, created=since)
    held = Suspension(since, reason, kept)
    return encode_marker(Marker(t.name, record_digest(kept), "schedules/app.yaml:3:5", since, False, held))


def snapshot(
    prefix: str, live: Mapping[str, bytes], dead: Mapping[str, int] | None = None, first: int = 100
) -> Snapshot:
    """``live`` and ``dead`` are keyed by the key suffix; revisions count up from ``first``."""
    entries = [Entry(prefix + name, value, first + i, "PUT") for i, (name, value) in enumerate(live.items())]
    entries += [Entry(prefix + name, None, rev, "DEL") for name, rev in (dead or {}).items()]
    return Snapshot.build(prefix, entries)


def plan_for(
    desired: Sequence[DesiredSchedule] = (),
    live: Mapping[str, bytes] | None = None,
    markers: Mapping[str, bytes] | None = None,
    *,
    dead: Mapping[str, int] | None = None,
    dead_markers: Mapping[str, int] | None = None,
    prune: bool = False,
    adopt: frozenset[str] = frozenset(),
    queues: frozenset[str] | None = None,
) -> Plan:
    return compute_plan(
        desired,
        snapshot(SCHEDULE_PREFIX, live or {}, dead, first=100),
        snapshot(MARKER_PREFIX, markers or {}, dead_markers, first=500),
        now=NOW,
        server="nats://127.0.0.1:4222",
        prune=prune,
        adopt=adopt,
        queues=queues,
    )


def managed(*tasks: ScheduledTask) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Live records plus markers, as ajc-gitops would have written them."""
    live = {t.name: record(t) for t in tasks}
    return live, {name: marker(name, value) for name, value in live.items()}

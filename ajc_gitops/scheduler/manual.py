"""Fires made by hand: ``trigger`` (one task now) and ``backfill`` (the tasks of past slots).

Both build the Task exactly as the fire loop does (``tasks.build_task``: queue, payload
encoded again as Go does, deadline counted from the instant, tries) and store it through the
same pipelined ``enqueue_many`` (contract §4.4: record, task_state event, work item). A trigger
gets a manual ID (``tasks.manual_task_id``), so it is never mistaken for a slot. A backfilled
slot gets the slot's own deterministic ID, so the tasks stream refuses it if the slot already
has its task: rerunning a backfill, or backfilling slots the scheduler fired, creates nothing
twice. Slots a Go leader fired (random IDs) are found first as ``status`` finds them, and left
alone; slots it cannot tell about are not created either.
"""

from __future__ import annotations

import datetime
import secrets
from dataclasses import dataclass

from ajc_gitops import codec
from ajc_gitops.errors import CommandError, InvalidSchedule
from ajc_gitops.gowire import cron
from ajc_gitops.gowire.godate import from_unix
from ajc_gitops.model import NANOS_PER_SECOND, GoTime, ScheduledTask, Task
from ajc_gitops.names import SCHEDULE_PREFIX, schedule_key
from ajc_gitops.scheduler.slots import slots_between
from ajc_gitops.scheduler.status import StatusQuery, read_status
from ajc_gitops.scheduler.tasks import MANUAL_NONCE_LEN, InvalidTaskError, build_task, manual_task_id
from ajc_gitops.state import EnqueueOutcome
from ajc_gitops.status.model import SlotKind, SlotStatus
from ajc_gitops.store import Store, enqueue_many

__all__ = ["BackfillPlan", "create_backfill", "load_schedule", "plan_backfill", "trigger"]


async def load_schedule(store: Store, name: str) -> ScheduledTask:
    """The live record of ``name``, decoded as Go decodes it."""
    snapshot = await store.snapshot(SCHEDULE_PREFIX) if await store.bucket_exists() else None
    entry = snapshot.get(schedule_key(name)) if snapshot is not None else None
    if entry is None:
        raise CommandError(f"{store.server}: no schedule {name!r} (no {schedule_key(name)} record)")
    decoded = codec.decode_scheduled_task(entry.value or b"")
    if decoded.error is not None:
        raise InvalidSchedule(f"{schedule_key(name)}: Go cannot decode this record, so it never fires: {decoded.error}")
    return decoded.task


def _build(schedule: ScheduledTask, instant: datetime.datetime, created: GoTime, task_id: str | None = None) -> Task:
    try:
        return build_task(schedule, instant, created=created, task_id=task_id)
    except InvalidTaskError as exc:
        raise InvalidSchedule(f"{schedule_key(schedule.name)}: no task can be made: {exc}") from None


async def trigger(store: Store, name: str, *, now_ns: int) -> tuple[Task, EnqueueOutcome]:
    """One task of ``name`` now, as the scheduler would create it at this instant."""
    schedule = await load_schedule(store, name)
    instant = from_unix(now_ns // NANOS_PER_SECOND) + datetime.timedelta(microseconds=now_ns % NANOS_PER_SECOND // 1000)
    task = _build(schedule, instant, GoTime(now_ns), manual_task_id(now_ns, secrets.token_bytes(MANUAL_NONCE_LEN)))
    [outcome] = await enqueue_many(store, [task])
    return task, outcome


@dataclass(frozen=True, slots=True)
class BackfillPlan:
    schedule: ScheduledTask
    slots: tuple[SlotStatus, ...]  # every slot in the range, with what status found

    @property
    def to_create(self) -> tuple[int, ...]:
        return tuple(s.instant_s for s in self.slots if s.kind is SlotKind.MISSED)


def count_slots(schedule: ScheduledTask, start_s: int, end_s: int, *, zone: datetime.tzinfo, limit: int) -> int:
    """Slots in ``[start_s, end_s]``, counted up to ``limit + 1`` (enough to refuse a range)."""
    parsed = cron.parse_standard(schedule.schedule, zone)
    found = 0
    after = from_unix(start_s - 1)
    end = from_unix(end_s)
    while found <= limit:
        batch = slots_between(parsed, after, min(end, after + datetime.timedelta(days=1)), anchor=schedule.created_at)
        found += len(batch)
        after = min(end, after + datetime.timedelta(days=1))
        if after >= end:
            break
    return found


async def plan_backfill(
    store: Store,
    name: str,
    start_s: int,
    end_s: int,
    *,
    now_ns: int,
    zone: datetime.tzinfo,
    scan_limit: int,
    max_slots: int,
) -> BackfillPlan:
    """Every slot of ``name`` in ``[start_s, end_s]`` and whether it has its task already."""
    schedule = await load_schedule(store, name)
    try:
        count = count_slots(schedule, start_s, end_s, zone=zone, limit=max_slots)
    except cron.CronError as exc:
        raise InvalidSchedule(f"{schedule_key(name)}: invalid cron schedule {schedule.schedule!r}: {exc}") from None
    if count > max_slots:
        raise CommandError(
            f"backfill {name}: the range holds more than {max_slots:,} slots; "
            f"narrow --from/--to or raise --max-slots"
        )
    query = StatusQuery(
        names=(name,),
        since=datetime.timedelta(seconds=end_s - start_s + 1),
        until_ns=end_s * NANOS_PER_SECOND,
        zone=zone,
        scan_limit=scan_limit,
    )
    report = await read_status(store, query, now_ns=now_ns)
    slots = next((s.slots for s in report.schedules if s.name == name), ())
    return BackfillPlan(schedule, tuple(slots))


async def create_backfill(store: Store, plan: BackfillPlan, *, now_ns: int) -> list[EnqueueOutcome]:
    """Store the task of every slot ``plan`` found without one, under the slot's own ID."""
    created = GoTime(now_ns)
    tasks = [_build(plan.schedule, from_unix(s), created) for s in plan.to_create]
    return await enqueue_many(store, tasks)

"""``ajc-gitops status``: read what the store holds and build a ``StatusReport``.

Read-only. One read of the configuration bucket (records, ownership markers, member markers),
one of the election key, then the task of every due slot in the window by its deterministic ID
(``tasks.task_id_for``): pipelined lookups by subject (``store.iter_task_records``), or with
``read="stream"`` the records written since the window began read in one pass and matched by
ID, then a lookup for every ID the pass did not meet (``store.iter_task_records_since``).
Slots still without a task may have been fired by a Go leader, whose task IDs are random
(contract §4.3): one bounded scan (``store.scan_task_records``, from the earliest such slot,
at most ``scan_limit`` records) pairs them by type, queue and creation time
(``status/classify.py``; a trigger's task, whose ID checks itself, never); what it cannot
tell is reported as ``unknown``, never as missed.

Slots are the scheduler's own (``slots.py``): robfig/cron ``Next`` in the host zone for
specs, the ``created_at`` lattice for ``@every``, never before the record was created.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import itertools
from collections.abc import AsyncGenerator, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from ajc_gitops import codec
from ajc_gitops.codec import (
    MarkerError,
    TaskFields,
    decode_marker,
    decode_member,
    decode_task,
    read_task_fields,
    record_digest,
)
from ajc_gitops.errors import ConnectError, StoreError
from ajc_gitops.gowire import cron
from ajc_gitops.gowire.godate import from_unix, to_unix
from ajc_gitops.model import NANOS_PER_SECOND, MemberRecord, ScheduledTask, Task
from ajc_gitops.names import CONFIG_BUCKET, ELECTIONS_BUCKET, MARKER_PREFIX, MEMBER_PREFIX, SCHEDULE_PREFIX
from ajc_gitops.plan.suspend import suspended_schedules
from ajc_gitops.scheduler.pacing import bulk_allocation
from ajc_gitops.scheduler.slots import slots_between
from ajc_gitops.scheduler.tasks import is_manual_task_id, slot_task_ids
from ajc_gitops.state import Entry, Holder, Snapshot
from ajc_gitops.status.classify import (
    MATCH_TOLERANCE_S,
    PENDING_S,
    Candidate,
    found,
    found_by_id,
    match_scanned,
    not_found,
)
from ajc_gitops.status.model import LeaderStatus, ScheduleState, ScheduleStatus, SlotKind, SlotStatus, StatusReport
from ajc_gitops.store import (
    Store,
    iter_task_records,
    iter_task_records_since,
    queue_names,
    read_holder,
    scan_task_records,
)

__all__ = ["DEFAULT_SCAN_LIMIT", "NEXT_COUNT", "READ_MODES", "ReadMode", "StatusQuery", "read_status"]

# id: one lookup per slot (the default: the tasks stream is never read beyond the slots' own
# subjects). stream: the records written in the window read in one pass and matched by ID,
# then a lookup for every slot it did not meet: the same answer, with ~10x less server CPU
# when the window's tasks are most of what the stream holds since then (docs/benchmarks.md).
ReadMode = Literal["id", "stream"]
READ_MODES: tuple[ReadMode, ...] = ("id", "stream")

NEXT_COUNT = 3
DEFAULT_SCAN_LIMIT = 50_000
_SCAN_SKEW_S = 2
# Records are read from a minute before the window: a fire's record is written after its slot
# by the scheduler's clock, which may run behind the server's (anything older is looked up by ID).
_SWEEP_SKEW_S = 60


@dataclass(frozen=True, slots=True)
class StatusQuery:
    names: tuple[str, ...] = ()  # empty: every schedule
    since: datetime.timedelta = datetime.timedelta(hours=24)  # the window ends at until_ns
    until_ns: int | None = None  # None: now (backfill asks about a range in the past)
    zone: datetime.tzinfo = datetime.UTC  # the scheduler's time.Local (runner.host_zone)
    scan_limit: int = DEFAULT_SCAN_LIMIT
    max_in_flight: int = 1024
    read: ReadMode = "id"


@dataclass(slots=True)
class _Live:
    name: str
    state: ScheduleState
    reason: str
    task: ScheduledTask | None
    parsed: cron.SpecSchedule | cron.EverySchedule | None
    slots: list[int]  # Unix seconds
    next_fires: tuple[int, ...] = ()


def _suffix(key: str, prefix: str) -> str | None:
    name = key[len(prefix) :]
    return name if key.startswith(prefix) and name and "." not in name else None


_Parsed = cron.SpecSchedule | cron.EverySchedule


def _classify(
    name: str, entry: Entry, marker: Entry | None, zone: datetime.tzinfo, parsed_specs: dict[str, _Parsed]
) -> _Live:
    decoded = codec.decode_scheduled_task(entry.value or b"")
    if decoded.error is not None:
        return _Live(name, ScheduleState.INVALID, f"Go cannot decode the record: {decoded.error}", None, None, [])
    task = decoded.task
    try:
        # Schedules share their texts (10,000 hourly ones have 60): one parse per text.
        parsed = parsed_specs.get(task.schedule)
        if parsed is None:
            parsed = parsed_specs[task.schedule] = cron.parse_standard(task.schedule, zone)
    except cron.CronError as exc:
        return _Live(name, ScheduleState.INVALID, f"invalid cron schedule {task.schedule!r}: {exc}", task, None, [])
    if marker is None:
        return _Live(name, ScheduleState.HAND_MADE, "", task, parsed, [])
    try:
        digest = decode_marker(marker.value or b"").sha256
    except MarkerError:
        digest = None
    if digest is not None and digest != record_digest(entry.value or b""):
        return _Live(name, ScheduleState.DRIFTED, "the record changed outside Git", task, parsed, [])
    return _Live(name, ScheduleState.ACTIVE, "", task, parsed, [])


def _slots(
    live: _Live, start_s: int, end_s: int, now_s: int, cache: dict[str, tuple[list[int], tuple[int, ...]]]
) -> None:
    task, parsed = live.task, live.parsed
    if task is None or parsed is None:
        return
    created_s = None if task.created_at.is_zero else task.created_at.unix_ns // NANOS_PER_SECOND
    lo = start_s if created_s is None else max(start_s, created_s)
    now, end = from_unix(now_s), from_unix(end_s)
    if isinstance(parsed, cron.EverySchedule):
        live.slots = [to_unix(t) for t in slots_between(parsed, from_unix(lo), end, anchor=task.created_at)]
        after = slots_between(parsed, now, from_unix(now_s + NEXT_COUNT * parsed.delay_seconds), anchor=task.created_at)
        live.next_fires = tuple(to_unix(t) for t in after[:NEXT_COUNT])
        return
    if task.schedule not in cache:  # every spec with the same text has the same slots
        slots = [to_unix(t) for t in slots_between(parsed, from_unix(start_s), end)]
        cache[task.schedule] = slots, tuple(to_unix(t) for t in cron.next_times(parsed, now, NEXT_COUNT))
    slots, live.next_fires = cache[task.schedule]
    live.slots = slots if lo == start_s else [s for s in slots if s > lo]


def _window(live: _Live) -> int:
    """How long after a slot a Go leader's task may be that slot's (``Candidate.window_s``)."""
    if isinstance(live.parsed, cron.EverySchedule):
        return max(MATCH_TOLERANCE_S, live.parsed.delay_seconds)
    return MATCH_TOLERANCE_S


def _past_window(live: _Live, until_s: int, now_s: int) -> list[int]:
    """Slots after the window (a backfill's ``--to``) young enough to own a task the scan may
    read: a Go task of one of them is that slot's, never the window's last slot."""
    task, parsed = live.task, live.parsed
    if task is None or parsed is None or until_s >= now_s:
        return []
    end = from_unix(min(now_s, until_s + _window(live)))
    return [to_unix(t) for t in slots_between(parsed, from_unix(until_s), end, anchor=task.created_at)]


def _leader(holder: Holder | None, members: Sequence[MemberRecord]) -> LeaderStatus:
    if holder is None:
        return LeaderStatus(None, None, None, "no elections bucket: no scheduler ever ran here")
    if holder.name is None:
        return LeaderStatus(None, None, None, "nobody holds the election key")
    ours = {m.name: m for m in members}
    if holder.name in ours:
        since = ours[holder.name].leading_since_ns
        return LeaderStatus(holder.name, "ajc-gitops", since, "" if since else "its marker has no term start yet")
    seen = [m.go_leader_since_ns for m in members if m.go_leader == holder.name and m.go_leader_since_ns]
    note = "first seen by an ajc-gitops member" if seen else "no ajc-gitops member saw it take the key"
    return LeaderStatus(holder.name, "go", min(seen) if seen else None, note)


async def _read_config(store: Store) -> tuple[Snapshot, Snapshot, list[MemberRecord]]:
    if not await store.bucket_exists(CONFIG_BUCKET):
        return Snapshot.build(SCHEDULE_PREFIX, []), Snapshot.build(MARKER_PREFIX, []), []
    records, markers, member_snap = await store.snapshots((SCHEDULE_PREFIX, MARKER_PREFIX, MEMBER_PREFIX))
    members = [decode_member(e.key, e.value or b"") for e in member_snap.live.values()]
    return records, markers, members


async def _missing_queues(store: Store, lives: Sequence[_Live]) -> tuple[frozenset[str], str | None]:
    """Queues the schedules name that have no ``CHORIA_AJ_Q_<queue>`` stream, so every fire
    ends in ``queue_error``; with a note instead when streams may not be listed."""
    try:
        existing = await queue_names(store)
    except ConnectError:
        raise
    except StoreError as exc:
        return frozenset(), f"queues not checked: {exc}"
    used = {live.task.queue for live in lives if live.task is not None}
    return frozenset(used - existing), None


def _task_reads(
    store: Store, ids: list[str], each_id: Iterator[str], since_s: int, query: StatusQuery
) -> AsyncGenerator[list[tuple[int, bytes]], None]:
    """The records of the slots' tasks, by position: lookups draw the IDs from ``each_id``
    as they go (making them overlaps the server answering the ones before); the one-pass
    read matches against every ID, so it makes them all first. ``each_id`` appends each ID it
    makes to ``ids``."""
    if query.read == "stream":
        collections.deque(each_id, maxlen=0)
        since = from_unix(since_s - _SWEEP_SKEW_S)
        return iter_task_records_since(store, ids, since=since, max_in_flight=query.max_in_flight)
    return iter_task_records(store, each_id, max_in_flight=query.max_in_flight)


async def _read_tasks(reads: AsyncGenerator[list[tuple[int, bytes]], None]) -> dict[int, TaskFields]:
    """By position: each task as ``read_task_fields`` reads it (no record, or not a Task:
    absent), decoded batch by batch while the next records are on their way."""
    tasks: dict[int, TaskFields] = {}
    async with contextlib.aclosing(reads) as batches:
        async for batch in batches:
            for i, record in batch:
                if (fields := read_task_fields(record)) is not None:
                    tasks[i] = fields
                else:  # rewritten while read into what is no Task
                    tasks.pop(i, None)
    return tasks


async def read_status(store: Store, query: StatusQuery, *, now_ns: int) -> StatusReport:
    # A report is a million small acyclic objects (240,000 slots at the scale status is
    # measured at): the cyclic collector would walk them all again and again while they are
    # made, for nothing (~0.6 s of 10).
    with bulk_allocation(freeze=False):
        return await _read_status(store, query, now_ns=now_ns)


async def _read_status(store: Store, query: StatusQuery, *, now_ns: int) -> StatusReport:
    record_snap, marker_snap, members = await _read_config(store)
    records, markers = record_snap.live, marker_snap.live
    holder = await read_holder(store, timeout=store.timeout) if await store.bucket_exists(ELECTIONS_BUCKET) else None
    now_s = now_ns // NANOS_PER_SECOND
    until_s = now_s if query.until_ns is None else min(now_s, query.until_ns // NANOS_PER_SECOND)
    since_s = until_s - int(query.since.total_seconds())
    wanted = set(query.names)
    lives: list[_Live] = []
    ids: list[str] = []
    cache: dict[str, tuple[list[int], tuple[int, ...]]] = {}
    parsed_specs: dict[str, _Parsed] = {}

    def each_id() -> Iterator[str]:
        for key, entry in records.items():
            name = _suffix(key, SCHEDULE_PREFIX)
            if name is None or (wanted and name not in wanted):
                continue
            live = _classify(name, entry, markers.get(MARKER_PREFIX + name), query.zone, parsed_specs)
            _slots(live, since_s, until_s, now_s, cache)
            lives.append(live)
            made = slot_task_ids(live.name, live.slots)
            ids.extend(made)
            yield from made

    tasks = await _read_tasks(_task_reads(store, ids, each_id(), since_s, query))  # by position in ids
    missing_queues, queues_note = await _missing_queues(store, lives)

    starts = list(itertools.accumulate((len(live.slots) for live in lives), initial=0))  # first slot's position
    candidates: list[Candidate] = []
    for live, at in zip(lives, starts, strict=False):
        if (task := live.task) is not None:
            candidates += (
                Candidate(live.name, task.task_type, task.queue, s, _window(live))
                for j, s in enumerate(live.slots, at)
                if j not in tasks
            )
    notes: list[str] = [queues_note] if queues_note else []
    matched: dict[tuple[str, int], Task] = {}
    ambiguous: set[tuple[str, int]] = set()
    scan_complete = True
    old = [c for c in candidates if now_s - c.instant_s >= PENDING_S]
    if old:
        start = from_unix(min(c.instant_s for c in old) - _SCAN_SKEW_S)
        scan = await scan_task_records(store, start=start, limit=query.scan_limit)
        known = set(ids)
        scanned = [
            t
            for m in scan.messages
            # a trigger's task is no slot's fire, however near a missed slot it was made
            if m.task_id not in known and not is_manual_task_id(m.task_id) and (t := decode_task(m.data)) is not None
        ]
        kinds = {(c.task_type, c.queue) for c in old}
        open_slots = {(c.name, c.instant_s) for c in old}
        decided = [
            Candidate(live.name, task.task_type, task.queue, s, _window(live))
            for live in lives
            if (task := live.task) is not None and (task.task_type, task.queue) in kinds
            for s in (*live.slots, *_past_window(live, until_s, now_s))
            if (live.name, s) not in open_slots
        ]
        matched, ambiguous = match_scanned(old, scanned, decided=decided)
        scan_complete = scan.complete
        extent = "all" if scan.complete else f"the first {scan.scanned:,} (--scan-limit)"
        notes.append(
            f"{len(old):,} slot(s) had no task under their ajc-gitops ID; read {extent} of the task records "
            f"written since {start.isoformat()} to match tasks a Go leader created"
        )

    statuses = []
    for live, at in sorted(zip(lives, starts, strict=False), key=lambda pair: pair[0].name):
        slots: list[SlotStatus] = []
        for j, s in enumerate(live.slots, at):
            by_id = tasks.get(j)
            if by_id is not None:
                slots.append(found_by_id(s, by_id))
            elif (slot_key := (live.name, s)) in matched:
                slots.append(found(s, matched[slot_key], "scan", own_clock=isinstance(live.parsed, cron.EverySchedule)))
            else:
                slots.append(not_found(s, now_s, scan_complete=scan_complete, ambiguous=slot_key in ambiguous))
        task = live.task
        statuses.append(
            ScheduleStatus(
                live.name,
                live.state,
                live.reason,
                task.schedule if task else "",
                task.queue if task else "",
                task.task_type if task else "",
                live.next_fires,
                tuple(slots),
                queue_missing=task is not None and task.queue in missing_queues,
            )
        )
    for name, held in sorted(suspended_schedules(marker_snap, record_snap).items()):
        if (not wanted or name in wanted) and not held.record_live:
            why = f"{held.reason or 'no reason given'} (since {held.since})"
            kept = held.task
            spec, queue, task_type = (kept.schedule, kept.queue, kept.task_type) if kept else ("", "", "")
            statuses.append(ScheduleStatus(name, ScheduleState.SUSPENDED, why, spec, queue, task_type, (), ()))
    present = {s.name for s in statuses}
    unknown = tuple(sorted(n for n in wanted if n not in present))
    if not scan_complete:
        undecided = sum(st.count(SlotKind.UNKNOWN) for st in statuses)
        notes.append(f"{undecided:,} slot(s) could not be told (raise --scan-limit to read further)")
    leader = _leader(holder, members)
    return StatusReport(store.server, now_s, since_s, leader, tuple(statuses), unknown, tuple(notes), until_s)

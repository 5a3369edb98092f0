"""From what the store holds to each slot's verdict. Pure: the caller passes every task it
found and the instant of "now".

A slot fired by an ajc-gitops leader is found by its deterministic task ID
(``scheduler/tasks.py``). A Go leader gives its tasks random IDs (contract §4.3), so a slot
whose ID has no record may still have fired under a Go leader: ``match_scanned`` pairs the
tasks of a bounded scan with such slots by task type, queue and creation time. Go creates
the task at the cron instant (its cron goroutine calls ``NewTask`` then) and stamps it with
the clock its cron fired on, so the stamp is never before the slot: a task is its schedule's
latest slot at or before its creation, when that slot is less than ``MATCH_TOLERANCE_S``
older. Not the next slot, even a second later (a per-second schedule's task stamped
12:00:00.001 is the 12:00:00 slot's), and not an earlier one when its own slot is outside the
question (past the window, too recent, or found by ID). Several schedules with the same type
and queue due then make those slots ``unknown``, never guessed. ``@every`` is the exception:
Go runs it from its own start, not from the record's ``created_at`` our slots are laid on, so
its task is the slot whose period it falls in (``Candidate.window_s``), at a lag not known.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from ajc_gitops.codec import TaskFields
from ajc_gitops.model import NANOS_PER_SECOND, Task
from ajc_gitops.status.model import SlotKind, SlotStatus, SlotTask

__all__ = [
    "LATE_AFTER_S",
    "MATCH_TOLERANCE_S",
    "PENDING_S",
    "Candidate",
    "found",
    "found_by_id",
    "match_scanned",
    "not_found",
]

# A task created this long after its slot is a catch-up (or slow) fire: the scheduler's own
# grace for an on-time fire (``scheduler/fire.py`` LATE_GRACE_NS).
LATE_AFTER_S = 5.0
# A slot this recent may be being fired right now: not yet a miss.
PENDING_S = 10
MATCH_TOLERANCE_S = 30


@dataclass(frozen=True, slots=True)
class Candidate:
    """A slot with no task under its deterministic ID."""

    name: str
    task_type: str
    queue: str
    instant_s: int
    # How long after the slot a Go task may be created and still be this slot's: an ``@every``
    # schedule's whole period, since Go runs it on a clock of its own (from its start).
    window_s: int = MATCH_TOLERANCE_S


def found(instant_s: int, task: Task, found_by: Literal["id", "scan"], *, own_clock: bool = False) -> SlotStatus:
    """``own_clock``: a Go leader's fire of an ``@every`` schedule, made on Go's lattice (from
    its start), not this slot's: fired in the slot's period, at no lag that can be told."""
    slot = _found(instant_s, task.id, task.state, task.tries, task.last_err, task.created.unix_ns, found_by)
    if own_clock:
        note = "a Go leader runs @every from its own start: fired in this period, lag not known"
        return SlotStatus(instant_s, SlotKind.FIRED, slot.task, None, note)
    return slot


def found_by_id(instant_s: int, fields: TaskFields) -> SlotStatus:
    """``found(instant_s, decode_task(record), "id")`` from ``read_task_fields(record)``."""
    task_id, _type, _queue, state, tries, last_err, _max_tries, created_ns, _offset = fields
    return _found(instant_s, task_id, state or "new", tries, last_err, created_ns, "id")


def _found(
    instant_s: int, task_id: str, state: str, tries: int, last_err: str, created_ns: int, by: Literal["id", "scan"]
) -> SlotStatus:
    lag = (created_ns - instant_s * NANOS_PER_SECOND) / NANOS_PER_SECOND
    kind = SlotKind.LATE if lag > LATE_AFTER_S else SlotKind.FIRED
    return SlotStatus(instant_s, kind, SlotTask(task_id, state, tries, last_err, created_ns, by), lag)


def not_found(instant_s: int, now_s: int, *, scan_complete: bool, ambiguous: bool = False) -> SlotStatus:
    """A slot without a task: pending while recent, missed once a complete scan found none."""
    if now_s - instant_s < PENDING_S:
        return SlotStatus(instant_s, SlotKind.PENDING)
    if ambiguous:
        return SlotStatus(instant_s, SlotKind.UNKNOWN, note="a Go-created task matches several schedules")
    if not scan_complete:
        note = "not found by ID; the scan for Go-created tasks stopped early"
        return SlotStatus(instant_s, SlotKind.UNKNOWN, note=note)
    return SlotStatus(instant_s, SlotKind.MISSED)


def match_scanned(
    candidates: Sequence[Candidate],
    tasks: Iterable[Task],
    *,
    decided: Iterable[Candidate] = (),
) -> tuple[dict[tuple[str, int], Task], set[tuple[str, int]]]:
    """(slot -> its task, ambiguous slots) for tasks that match a candidate slot: same type and
    queue, and the candidate is its schedule's latest slot in ``(created - window, created]``
    (the candidate's ``window_s``).
    ``decided`` are the other slots of those schedules (found by ID, too recent to judge, or
    past the window): a task whose latest slot is one of them is that slot's and decides no
    candidate. A task matching slots of two or more schedules decides none of them."""
    # (type, queue) -> instant -> slots: a task looks at the instants of its kind that are
    # less than the kind's widest window before it, found by bisection, not at every slot.
    by_kind: dict[tuple[str, str], dict[int, list[tuple[Candidate, bool]]]] = defaultdict(lambda: defaultdict(list))
    for c in candidates:
        by_kind[(c.task_type, c.queue)][c.instant_s].append((c, True))
    for c in decided:
        if (c.task_type, c.queue) in by_kind:
            by_kind[(c.task_type, c.queue)][c.instant_s].append((c, False))
    widest = {kind: max(c.window_s for at in slots.values() for c, _ in at) for kind, slots in by_kind.items()}
    ordered = {kind: sorted(slots) for kind, slots in by_kind.items()}
    matched: dict[tuple[str, int], Task] = {}
    ambiguous: set[tuple[str, int]] = set()
    for task in tasks:
        kind = (task.type, task.queue)
        instants = by_kind.get(kind)
        if not instants:
            continue
        created_s = task.created.unix_ns // NANOS_PER_SECOND
        times = ordered[kind]
        best: dict[str, tuple[Candidate, bool]] = {}
        lo = bisect.bisect_left(times, created_s - widest[kind] + 1)
        for instant in times[lo : bisect.bisect_right(times, created_s)]:
            for c, open_slot in instants[instant]:
                if created_s - instant < c.window_s:
                    best[c.name] = (c, open_slot)  # ascending instants: a schedule's latest slot wins
        open_slots = [c for c, open_slot in best.values() if open_slot]
        if len(best) == 1 and open_slots:
            matched.setdefault((open_slots[0].name, open_slots[0].instant_s), task)
        elif len(best) > 1:
            ambiguous.update((c.name, c.instant_s) for c in open_slots)
    for key in matched:
        ambiguous.discard(key)
    return matched, ambiguous

"""What a worker receives: the work items of asyncjobs queues, consumed as a Go worker does.

Counting task records in ``CHORIA_AJ_TASKS`` cannot show a duplicate fire: the stream keeps one
message per task subject and the scheduler's publish there is refused for an ID that exists.
A second fire of a slot could still reach a worker as a second work item (a re-publish after
the queue's duplicate window, a repair of a task that was in fact queued), so the proofs count
the items a worker is handed instead.

How asyncjobs consumes (``storage.go``: ``createQueue`` makes the durable pull consumer
``WORKERS`` with explicit acks; ``PollQueue`` asks it for the next message, one at a time, and
the processor acks each item once handled): ``Worker`` binds to that same durable consumer,
pulls, records every delivery and acks it at once, so a queue stream (a work queue, one
message per subject) never holds an item long enough for a later one on the same subject to
replace it unseen. A redelivery of one stream message is told apart from a second item by the
stream sequence.

Shared by the fault suite and ``bench/scheduler_bench.py`` (which puts the repository root on
``sys.path``); it imports neither pytest nor a test fixture for that reason.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import nats
import nats.errors
import nats.js.errors

from ajc_gitops.gowire.ksuid import parse_ksuid
from ajc_gitops.names import QUEUE_STREAM

WORKERS = "WORKERS"  # the durable consumer asyncjobs creates on every queue stream
FETCH_BATCH = 100  # the DEFAULT queue's MaxConcurrent, i.e. its consumer's max_ack_pending
IDLE_FETCH_S = 0.5  # one empty pull this long: nothing more to hand out for now


@dataclass(frozen=True, slots=True)
class Delivery:
    queue: str
    job: str  # the task ID the work item names
    stream_seq: int  # which stored item: a redelivery repeats it, a second item does not
    num_delivered: int


class Worker:
    """A background worker on ``queues`` (a thread with its own connection) for a ``with``
    block; ``deliveries`` holds everything it was handed. Leaving the block drains: pulls
    until the queues hand out nothing more, then stops. The connection reconnects without a
    limit, so a server restarted under it is waited for, as a worker would."""

    def __init__(self, url: str, queues: Iterable[str] = ("DEFAULT",), *, drain_s: float = 30.0) -> None:
        self.url = url
        self.queues = tuple(queues)
        self.drain_s = drain_s
        self.deliveries: list[Delivery] = []
        self.errors: list[str] = []  # pull failures while the server was away, for the report
        self._lock = threading.Lock()
        self._bound = threading.Event()
        self._stopping = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="ajc-test-worker", daemon=True)

    def __enter__(self) -> Worker:
        self._thread.start()
        if not self._bound.wait(15.0) or self._failed is not None:
            self._stopping.set()
            raise RuntimeError(f"worker could not bind to {self.queues}: {self._failed!r}")
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stopping.set()
        self._thread.join(self.drain_s + 10.0)
        if self._thread.is_alive():
            raise RuntimeError(f"worker still draining after {self.drain_s + 10.0}s")
        if self._failed is not None and kind is None:
            raise RuntimeError(f"worker failed: {self._failed!r}") from self._failed

    def snapshot(self) -> list[Delivery]:
        with self._lock:
            return list(self.deliveries)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by __enter__ or __exit__
            self._failed = exc
            self._bound.set()

    async def _run(self) -> None:
        nc = await nats.connect(self.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2, name="ajc-test-worker")
        try:
            js = nc.jetstream()
            subs = [
                (queue, await js.pull_subscribe_bind(WORKERS, stream=QUEUE_STREAM.format(queue)))
                for queue in self.queues
            ]
            self._bound.set()
            drain_until: float | None = None
            while True:
                handed = 0
                for queue, sub in subs:
                    handed += await self._pull(queue, sub)
                if self._stopping.is_set():
                    drain_until = drain_until or time.monotonic() + self.drain_s
                    if handed == 0 or time.monotonic() > drain_until:
                        return
        finally:
            await nc.close()

    async def _pull(self, queue: str, sub: Any) -> int:
        try:
            msgs = await sub.fetch(FETCH_BATCH, timeout=IDLE_FETCH_S)
        except TimeoutError:  # nats-py raises its own and asyncio's: nothing to hand out
            return 0
        except (nats.errors.Error, nats.js.errors.Error) as exc:  # the server is away: wait for it
            self.errors.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.2)
            return 0
        for msg in msgs:
            job = json.loads(msg.data)["job"]
            meta = msg.metadata
            with self._lock:
                self.deliveries.append(Delivery(queue, job, meta.sequence.stream, meta.num_delivered))
            await msg.ack()  # as the processor does once the handler returns
        return len(msgs)


# -- counting -------------------------------------------------------------------------------


def items(deliveries: Iterable[Delivery]) -> dict[tuple[str, int], str]:
    """Each distinct work item handed out, (queue, stream sequence) -> task ID; a redelivery
    of the same stored item is one item."""
    return {(d.queue, d.stream_seq): d.job for d in deliveries}


def redeliveries(deliveries: Iterable[Delivery]) -> int:
    return sum(1 for d in deliveries if d.num_delivered > 1)


def slot_of(task_id: str) -> int:
    """The fire instant (Unix seconds) in the time part of our deterministic task IDs."""
    seconds, _ = parse_ksuid(task_id)
    return seconds


def per_task(deliveries: Iterable[Delivery]) -> Counter[str]:
    """Work items handed out per task ID. Our IDs are derived from (schedule, slot), so this is
    per (schedule, slot) also when many schedules share a task type."""
    return Counter(items(deliveries).values())


def per_slot(deliveries: Iterable[Delivery], type_of: Mapping[str, str]) -> Counter[tuple[str, int]]:
    """Work items handed out per (task type, slot). ``type_of`` maps task IDs to their type
    (from the task records); an item whose task has no record counts under ``"?"``."""
    return Counter((type_of.get(job, "?"), slot_of(job)) for job in items(deliveries).values())


def as_tasks(deliveries: Iterable[Delivery], type_of: Mapping[str, str]) -> list[dict[str, Any]]:
    """One ``{"id", "type"}`` per distinct item, the shape the slot counters of the tests take."""
    return [{"id": job, "type": type_of.get(job, "?")} for job in items(deliveries).values()]


def count_slots(tasks: Iterable[Mapping[str, Any]], types: tuple[str, ...], window_s: int) -> dict[str, Any]:
    """Per (schedule, slot) of ``tasks`` (``as_tasks``: one per work item handed out):
    duplicates, and gaps between a schedule's first and last slot, split into those inside the
    catch-up window ``window_s`` (a bug) and those outside it (by design: a leaderless gap
    longer than the window is not caught up; reported, not failed)."""
    tasks = list(tasks)
    counts = Counter((t["type"], slot_of(t["id"])) for t in tasks)
    out: dict[str, Any] = {"slots": 0, "duplicated": {}, "missed": {}, "missed_outside_window": {}}
    for tt in types:
        slots = sorted(s for (t, s) in counts if t == tt)
        if not slots:
            out["missed"][tt] = "no work item at all"
            continue
        out["slots"] += len(slots)
        dupes = {s: n for (t, s), n in counts.items() if t == tt and n > 1}
        if dupes:
            out["duplicated"][tt] = dupes
        missing = sorted(set(range(slots[0], slots[-1] + 1)) - set(slots))
        # A missing slot is outside the window when the next slot handed out (the recovery)
        # came more than the window after it.
        inside = [s for s in missing if min(x for x in slots if x > s) - s <= window_s]
        outside = sorted(set(missing) - set(inside))
        if inside:
            out["missed"][tt] = inside
        if outside:
            out["missed_outside_window"][tt] = outside
    unknown = sorted(t["id"] for t in tasks if t["type"] not in types)
    if unknown:
        out["unknown"] = unknown  # an item whose task record is missing or of another type
    return out


# The line ``scheduler/fire.py`` logs for each fire the task store refused as already fired.
REFUSED = re.compile(r"^refused re-fire: schedule (\S+) slot \S+ \(unix (-?\d+)\)")


def refused_refires(log_lines: Iterable[str]) -> Counter[tuple[str, int]]:
    """(schedule, slot) of every refused re-fire in a scheduler's ``--log-format json`` lines."""
    out: Counter[tuple[str, int]] = Counter()
    for line in log_lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        found = REFUSED.match(record.get("msg", "")) if isinstance(record, dict) else None
        if found:
            out[(found[1], int(found[2]))] += 1
    return out

"""The live schedule set: a KV watch plus periodic full resyncs (STYLE.md module map).

Contract §3 "A Python scheduler SHOULD": the key suffix is the identity (Go uses the JSON
``name`` for Put but the key for Delete, §8.5); a Put *replaces* the registration (Go adds a
second cron entry, §8.1); Delete and Purge remove it (Go leaves orphans firing, §8.2); a
record that fails to decode, whose spec robfig/cron rejects, or whose ``TZ=`` prefix would
panic Go (§2.5) is skipped with a warning and a metric, and it *removes* any earlier
definition of that key (Go keeps firing the stale one, §8.4).

Every key remembers the revision last applied, so watch events, re-watched initial values
and snapshots can arrive in any order: an older revision never overrides a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Container, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Protocol

from ajc_gitops import codec
from ajc_gitops.errors import AjcError
from ajc_gitops.gowire import cron
from ajc_gitops.model import ScheduledTask
from ajc_gitops.names import CONFIG_BUCKET, SCHEDULE_PREFIX
from ajc_gitops.scheduler.pacing import Slices, bulk_allocation
from ajc_gitops.state import Entry, InitialDone, KvPut, Snapshot, WatchEvent
from ajc_gitops.store import Store, raise_if_cancelling, watch_keys

__all__ = [
    "FollowObserver",
    "FollowedSchedule",
    "Follower",
    "ScheduleSet",
    "SkipReason",
]

DEFAULT_RESYNC_S = 60.0
RESYNC_DUTY = 20
SkipReason = Literal["decode", "cron", "cron_panic"]
_log = logging.getLogger(__name__)
# A fleet repeats a few spec texts many times: parse each once and share the (immutable)
# result, which also keeps one schedule object per text in memory instead of one per record.
_parse_cron = functools.lru_cache(maxsize=1 << 16)(cron.parse_standard)


@dataclass(frozen=True, slots=True)
class FollowedSchedule:
    name: str  # the key suffix: our identity for the schedule
    task: ScheduledTask
    schedule: cron.SpecSchedule | cron.EverySchedule
    revision: int


class FollowObserver(Protocol):
    """Metrics hooks; ``scheduler.metrics.SchedulerMetrics`` implements it."""

    def schedules_loaded(self, count: int) -> None: ...

    def schedule_skipped(self, reason: str) -> None: ...

    def invalid_schedules(self, counts: Mapping[str, int]) -> None: ...


class _NoObserver:
    def schedules_loaded(self, count: int) -> None:
        pass

    def schedule_skipped(self, reason: str) -> None:
        pass

    def invalid_schedules(self, counts: Mapping[str, int]) -> None:
        pass


ChangeListener = Callable[[str, "FollowedSchedule | None"], None]


class ScheduleSet:
    """The schedules by name; synchronous and I/O-free."""

    def __init__(
        self,
        *,
        local: datetime.tzinfo = datetime.UTC,
        observer: FollowObserver | None = None,
        on_change: ChangeListener | None = None,
    ) -> None:
        self._local = local  # robfig/cron evaluates prefix-less specs in the host zone (§2.5)
        self._observer: FollowObserver = observer or _NoObserver()
        self._on_change = on_change
        self._live: dict[str, FollowedSchedule] = {}
        self._seen: dict[str, int] = {}  # key suffix -> last revision applied (put or delete)
        self._invalid: dict[str, SkipReason] = {}
        self.schedules: Mapping[str, FollowedSchedule] = MappingProxyType(self._live)
        self.version = 0  # +1 per change, for pollers

    def __len__(self) -> int:
        return len(self._live)

    def put(self, key: str, value: bytes, revision: int) -> bool:
        name = _name(key)
        if name is None or revision <= self._seen.get(name, 0):
            return False
        self._seen[name] = revision
        parsed = self._parse(name, value, revision)
        if isinstance(parsed, FollowedSchedule):
            if self._invalid.pop(name, None) is not None:
                self._invalid_changed()
            self._set(name, parsed)
        else:
            self._invalid[name] = parsed
            self._observer.schedule_skipped(parsed)
            self._invalid_changed()
            self._set(name, None)
        return True

    def remove(self, key: str, revision: int) -> bool:
        name = _name(key)
        if name is None or revision <= self._seen.get(name, 0):
            return False
        self._seen[name] = revision
        if self._invalid.pop(name, None) is not None:
            self._invalid_changed()
        self._set(name, None)
        return True

    def reconcile(self, snapshot: Snapshot, cutoff: int) -> int:
        """Apply a snapshot taken after the stream's last sequence was ``cutoff``: newer
        entries win per key; a key the snapshot lacks goes only if we know it at a
        revision ≤ cutoff (anything newer reached us after the snapshot began)."""
        return sum(self.reconcile_steps(snapshot, cutoff))

    def reconcile_steps(self, snapshot: Snapshot, cutoff: int) -> Iterator[int]:
        """``reconcile`` one key at a time (the changes each made), so that an async caller
        can pause between keys; the set is consistent between any two steps."""
        for entry in (*snapshot.live.values(), *snapshot.tombstones.values()):
            yield self.reconcile_entry(entry)
        yield from self.vanished_steps({*snapshot.live, *snapshot.tombstones}, cutoff)

    def reconcile_entry(self, entry: Entry) -> bool:
        """One key of a complete read: newer than what we know wins."""
        if entry.operation == "PUT":
            return self.put(entry.key, entry.value or b"", entry.revision)
        return self.remove(entry.key, entry.revision)

    def vanished_steps(self, present: Container[str], cutoff: int) -> Iterator[bool]:
        """After a complete read taken once the stream's last sequence was ``cutoff``, whose
        keys are ``present``: remove, one per step, what we know at a revision ≤ cutoff and
        the read did not have."""
        for name in list(self._seen):
            # Read now, not from the list: the watch may have moved the key since it was taken.
            revision = self._seen.get(name, cutoff + 1)
            key = SCHEDULE_PREFIX + name
            if revision <= cutoff and key not in present:
                changed = False
                if name in self._live or name in self._invalid:
                    _log.warning("schedule %s vanished without a watch event; removed on resync", name)
                    changed = self.remove(key, cutoff + 1)
                self._seen.pop(name, None)  # fully gone: a later Create has a higher revision anyway
                yield changed
            else:
                yield False

    def _invalid_changed(self) -> None:
        self._observer.invalid_schedules(Counter(self._invalid.values()))

    def _parse(self, name: str, value: bytes, revision: int) -> FollowedSchedule | SkipReason:
        decoded = codec.decode_scheduled_task(value)
        if decoded.error is not None:
            _log.warning("skipping schedule %s (revision %d): cannot decode: %s", name, revision, decoded.error)
            return "decode"
        task = decoded.task
        for warning in decoded.warnings:
            _log.warning("schedule %s: %s", name, warning)
        if task.name != name:
            # Contract §8.5: Go registers the JSON name but deletes by key; we use the key.
            _log.warning("schedule %s: record says name %r; the key is used", name, task.name)
        try:
            parsed = _parse_cron(task.schedule, self._local)
        except cron.CronError as exc:
            reason: SkipReason = "cron_panic" if exc.panics else "cron"
            _log.warning(
                "skipping schedule %s (revision %d): invalid cron schedule %r: %s", name, revision, task.schedule, exc
            )
            return reason
        return FollowedSchedule(name, task, parsed, revision)

    def _set(self, name: str, schedule: FollowedSchedule | None) -> None:
        before = self._live.get(name)
        if schedule is None:
            if before is None:
                return
            del self._live[name]
        else:
            self._live[name] = schedule
        self.version += 1
        # Contract §8.3: the gauge is the real count, not Go's +1/-1 drift.
        self._observer.schedules_loaded(len(self._live))
        if self._on_change is not None:
            self._on_change(name, schedule)


def _name(key: str) -> str | None:
    """``scheduled_tasks.<name>`` -> name; deeper keys are not schedules (Go watches ``.*``)."""
    if not key.startswith(SCHEDULE_PREFIX):
        return None
    name = key[len(SCHEDULE_PREFIX) :]
    return name if name and "." not in name else None


WatchFactory = Callable[[Store], AsyncGenerator[WatchEvent, None]]


class Follower:
    """Runs the watch and the periodic resync until cancelled; ``ready`` once loaded."""

    def __init__(
        self,
        store: Store,
        *,
        local: datetime.tzinfo = datetime.UTC,
        resync_s: float = DEFAULT_RESYNC_S,
        observer: FollowObserver | None = None,
        on_change: ChangeListener | None = None,
        watch: WatchFactory = watch_keys,
    ) -> None:
        self._store = store
        self.set = ScheduleSet(local=local, observer=observer, on_change=on_change)
        self._resync_s = resync_s
        self._watch = watch
        self._ready = asyncio.Event()
        self.changed = asyncio.Event()  # set on every change; clear it after reading
        self.resyncs = 0
        self.watch_sessions = 0

    @property
    def schedules(self) -> Mapping[str, FollowedSchedule]:
        return self.set.schedules

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._follow(), name="follow-watch")
            tg.create_task(self._resync_loop(), name="follow-resync")

    async def resync(self) -> int:
        """Reconcile with a complete snapshot; returns the number of changes."""
        summary = await self._store.stream_info_summary(CONFIG_BUCKET)
        # Checked against the stream leader: a snapshot from a replica still catching up after
        # a node restart would lack recent schedules, and reconcile would remove them as
        # "vanished" although the watch had delivered them.
        # Streamed (Store.scan), not a snapshot: a million entries held at once would add
        # half a gigabyte and take a 0.3 s stall to free. Each is applied as it arrives (only a
        # newer revision changes anything) and dropped; only the keys are kept, to find the
        # ones that vanished.
        present: set[str] = set()
        changes = 0

        def start() -> Callable[[Entry], None]:
            present.clear()
            return apply

        def apply(entry: Entry) -> None:
            nonlocal changes
            if entry.key.startswith(SCHEDULE_PREFIX):
                present.add(entry.key)
                changes += self.set.reconcile_entry(entry)

        slices = Slices()
        with bulk_allocation(freeze=False):
            await self._store.scan(start)
            for changed in self.set.vanished_steps(present, summary.last_seq):
                changes += changed
                await slices.tick()
            while present:  # freed in slices too: a million strings at once are a 50 ms stall
                present.pop()
                await slices.tick()
        self.resyncs += 1
        if changes:
            _log.warning("resync applied %d change(s) the watch had missed", changes)
            self.changed.set()
        self._mark_ready()
        return changes

    async def _follow(self) -> None:
        # The watch hands over queued records without suspending: give the loop back now and
        # then, or a large initial load is one long stall (pacing.py, also for the GC).
        slices = Slices()
        loading = contextlib.ExitStack()
        loading.enter_context(bulk_allocation())
        async with contextlib.aclosing(self._watch(self._store)) as events:
            try:
                await self._consume(events, slices, loading)
            finally:
                loading.close()

    async def _consume(
        self, events: AsyncGenerator[WatchEvent, None], slices: Slices, loading: contextlib.ExitStack
    ) -> None:
        async for event in events:
            await slices.tick()
            raise_if_cancelling()
            if isinstance(event, InitialDone):
                loading.close()  # the first complete set is built: freeze it
                self.watch_sessions = event.session
                if event.session > 1:
                    # Re-created watch: changes may have happened while it was away, and
                    # deletions do not show up in its initial values.
                    await self._try_resync()
                    raise_if_cancelling()
                self._mark_ready()
                continue
            if isinstance(event, KvPut):
                changed = self.set.put(event.key, event.value, event.revision)
            else:  # KvDelete | KvPurge: Go readers treat both alike (contract §3)
                changed = self.set.remove(event.key, event.revision)
            if changed:
                self.changed.set()

    async def _resync_loop(self) -> None:
        # Not while the watch still delivers the initial values: they are the full set anyway,
        # and a resync beside a large load (a million keys take longer than a period) doubles
        # the work and the server's load, and stalls both.
        await self._ready.wait()
        took = 0.0
        while True:
            # A period, not a wait for an event. At most 1/RESYNC_DUTY of the time: a resync of
            # a million keys takes tens of seconds of a core.
            await asyncio.sleep(max(self._resync_s, RESYNC_DUTY * took))
            started = time.monotonic()
            await self._try_resync()
            took = time.monotonic() - started
            raise_if_cancelling()

    async def _try_resync(self) -> None:
        try:
            await self.resync()
        except AjcError as exc:
            _log.warning("schedule resync failed: %s", exc)

    def _mark_ready(self) -> None:
        if not self._ready.is_set():
            _log.info("loaded %d scheduled task(s)", len(self.set))
            self._ready.set()

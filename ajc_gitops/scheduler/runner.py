"""The scheduler's lifecycle: startup, a ``TaskGroup`` of follow, group, election, fire loops
and the monitor, then shutdown (STYLE.md "A service has three phases").

Startup creates exactly what Go's ``ajc task cron scheduler`` load-or-creates (contract §1):
both KV buckets, ``CHORIA_AJ_TASKS`` and the ``DEFAULT`` queue with its ``WORKERS`` consumer;
existing ones are never altered, schedule queues are never created. Then this member's
marker is written before its first campaign (``group.py``).

Shutdown (SIGTERM/SIGINT, or ``stop`` set): firing stops first, then the election key is
released with a revision-guarded Delete so another member, Go or ours, Creates it at its next
tick instead of waiting for the TTL (contract §5, fixing §8.14), then everything else is
cancelled. A second SIGINT exits at once. Signal handlers are installed and restored in
``capture_signals`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import signal
import sys
import time
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ajc_gitops.codec import check_member_name
from ajc_gitops.connect import ConnectOptions
from ajc_gitops.errors import AjcError, ConfigError
from ajc_gitops.scheduler.election import MAX_REQUEST_TIMEOUT_S, ElectionError, Elector, Timing
from ajc_gitops.scheduler.fire import FireLoop
from ajc_gitops.scheduler.follow import DEFAULT_RESYNC_S, Follower
from ajc_gitops.scheduler.group import GroupTiming, GroupView, GroupWatch
from ajc_gitops.scheduler.loopprobe import LoopProbe
from ajc_gitops.scheduler.metric_names import DEFAULT_SCHEDULE_SERIES_LIMIT
from ajc_gitops.scheduler.metrics import MonitorServer, SchedulerMetrics
from ajc_gitops.scheduler.requeue import Requeuer
from ajc_gitops.store import NatsElectionKV, Store, ensure_task_streams, publish_leader_elected

__all__ = [
    "SHORT_TTL_ENV",
    "SchedulerConfig",
    "SchedulerService",
    "capture_signals",
    "first_error",
    "host_zone",
    "run_service",
]

# Test-only: accept an elections bucket TTL below Go's 10 s minimum. It never shortens
# anything by itself: the TTL is still read from the bucket, and Go refuses to start on a
# bucket with a TTL under 10 s (contract §5), so no Go member can be in such a group.
SHORT_TTL_ENV = "AJC_GITOPS_TEST_ALLOW_SHORT_ELECTION_TTL"
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    name: str
    connect: ConnectOptions
    monitor_port: int | None = None  # None: no monitor (Go: only when --monitor > 0)
    catchup_window: datetime.timedelta | None = None  # None: deadline, else 5 minutes
    resync_s: float = DEFAULT_RESYNC_S
    allow_short_ttl: bool = False
    zone: datetime.tzinfo = field(default=datetime.UTC)
    schedule_series_limit: int = DEFAULT_SCHEDULE_SERIES_LIMIT


def host_zone(env: dict[str, str] | os._Environ[str] = os.environ) -> datetime.tzinfo:
    """Go's ``time.Local``: robfig/cron runs prefix-less specs in it (contract §2.5). ``$TZ``
    ("" = UTC) or /etc/localtime; UTC when neither can be read."""
    name = env.get("TZ")
    try:
        if name is not None:
            return datetime.UTC if name in ("", "UTC") else zoneinfo.ZoneInfo(name.removeprefix(":"))
        with open("/etc/localtime", "rb") as f:
            return zoneinfo.ZoneInfo.from_file(f, key="Local")
    except (OSError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        return datetime.UTC


async def election_timing(kv: NatsElectionKV, *, allow_short: bool) -> Timing:
    ttl = await kv.bucket_ttl()
    if allow_short and 0 < ttl < 10:
        _log.warning("%s: using a %gs election TTL (tests only; Go refuses such a bucket)", SHORT_TTL_ENV, ttl)
        quarter = ttl / 4  # keeps refresh timeout, splay and lease margin inside the TTL
        return Timing(ttl, 0.75 * ttl, request_timeout_s=min(MAX_REQUEST_TIMEOUT_S, quarter), max_splay_s=quarter)
    try:
        return Timing.from_ttl(ttl)
    except ElectionError as exc:
        raise ConfigError(str(exc)) from None


class SchedulerService:
    """One scheduler member; ``run()`` until ``stop`` is set. Exposes its parts for tests."""

    def __init__(self, config: SchedulerConfig, *, clock: Callable[[], int] = time.time_ns) -> None:
        if not config.name:
            raise ConfigError("a scheduler name is required (argument NAME or AJC_SCHEDULER_NAME)")
        if (problem := check_member_name(config.name)) is not None:
            raise ConfigError(f"scheduler name {config.name!r}: {problem}")
        self.config = config
        self.clock = clock
        self.stop = asyncio.Event()
        self.metrics = SchedulerMetrics(config.name, schedule_series_limit=config.schedule_series_limit)
        self.started = asyncio.Event()  # startup done, loops running
        self.store: Store | None = None
        self.follower: Follower | None = None
        self.elector: Elector | None = None
        self.fire: FireLoop | None = None
        self.requeuer: Requeuer | None = None
        self.group: GroupWatch | None = None
        self.monitor: MonitorServer | None = None
        self.probe = LoopProbe(self.metrics)
        self._members_ok = True

    async def run(self) -> None:
        cfg = self.config
        # Two connections: the schedule feed (a watch, resyncs: a million messages at scale) on
        # its own, so its backlog never sits in front of an election refresh or a fire's acks.
        async with Store.open(cfg.connect, reconnect=True) as store, Store.open(cfg.connect, reconnect=True) as feed:
            self.store = store
            created = await store.ensure_buckets()
            created += await ensure_task_streams(store)
            if created:
                _log.info("created %s as asyncjobs would (contract §1)", ", ".join(created))
            kv = NatsElectionKV(store)
            timing = await election_timing(kv, allow_short=cfg.allow_short_ttl)
            view = GroupView(cfg.name, GroupTiming.for_ttl(timing.ttl_s, timing.interval_s))
            self.group = group = GroupWatch(
                store,
                view,
                clock=self.clock,
                started_ns=self.clock(),
                progress=self._progress,
                on_holder=self.metrics.group_leader,
            )
            await group.announce()
            self.elector = elector = Elector(
                kv, cfg.name, timing=timing, observer=self.metrics, on_won=self._wake, on_lost=self._wake
            )
            self.requeuer = requeuer = Requeuer(store, self.metrics, clock=self.clock)
            self.fire = fire = FireLoop(
                store,
                lambda: follower.schedules,
                elector,
                self.metrics,
                floor=self._floor,
                handled_through=view.handled_through,
                on_term=self._on_term,
                clock=self.clock,
                window=cfg.catchup_window,
                stranded=requeuer.add,
            )
            self.follower = follower = Follower(
                feed, local=cfg.zone, resync_s=cfg.resync_s, observer=self.metrics, on_change=fire.schedule_changed
            )
            with self._monitor((store, feed), follower):
                try:
                    await self._main(store, follower, elector, fire, group, requeuer)
                finally:
                    # After a crash too: hand the key over instead of letting it expire.
                    await asyncio.shield(elector.release())

    @contextlib.contextmanager
    def _monitor(self, stores: tuple[Store, ...], follower: Follower) -> Iterator[None]:
        port = self.config.monitor_port
        if port is None:
            yield
            return
        try:
            server = MonitorServer(
                self.metrics, port, healthy=lambda: all(s.connected for s in stores), ready=lambda: follower.ready
            )
        except OSError as exc:
            raise ConfigError(f"--monitor {port}: cannot listen: {exc.strerror or exc}") from None
        self.monitor = server
        with server:
            yield

    async def _main(
        self,
        store: Store,
        follower: Follower,
        elector: Elector,
        fire: FireLoop,
        group: GroupWatch,
        requeuer: Requeuer,
    ) -> None:
        async def fire_when_loaded() -> None:
            await follower.wait_ready()  # never lead on a partial schedule set
            self.probe.phase = "running"
            await fire.run()

        async with asyncio.TaskGroup() as tg:
            firing = tg.create_task(fire_when_loaded(), name="fire")
            others = [
                tg.create_task(self.probe.run(), name="loop-probe"),
                tg.create_task(follower.run(), name="follow"),
                tg.create_task(group.run(), name="group"),
                tg.create_task(elector.run(), name="election"),
                tg.create_task(requeuer.run(), name="requeue"),
            ]
            self.started.set()
            await self.stop.wait()
            _log.info("shutting down: stop firing, release the election key")
            firing.cancel()  # stop creating tasks now (a half-enqueued task is repaired, store/asyncjobs/tasks.py)
            await elector.release()  # revision-guarded Delete (contract §5)
            # nats-py awaits through asyncio.wait_for, which on Python 3.11 can swallow a
            # cancellation (CPython gh-86296): cancel again until every loop has stopped.
            tasks = [firing, *others]
            while pending := [task for task in tasks if not task.done()]:
                for task in pending:
                    task.cancel()
                await asyncio.wait(pending, timeout=0.5)

    def _wake(self) -> None:
        if self.fire is not None:  # election transitions wake the fire loop
            self.fire.wake()

    def _progress(self) -> tuple[int, int] | None:
        return self.fire.progress if self.fire is not None else None

    def _floor(self, now_ns: int) -> int | None:
        assert self.group is not None
        if not self._members_ok:
            return self.group.view.floor_unread_ns(now_ns)  # group.py: what our own polls vouch for
        return self.group.view.floor_ns(now_ns)

    async def _on_term(self) -> None:
        assert self.group is not None and self.store is not None
        # Tried again for one election TTL: the term's first fires wait for it, and the slots
        # meanwhile are caught up once the floor is known (they are inside the window).
        self._members_ok = await self.group.refresh_members(within_s=self.group.view.timing.ttl_s)
        self.group.view.leading_since_ns = self.clock()  # shown by `status`, written with our progress
        try:
            await publish_leader_elected(self.store, self.config.name, clock=self.clock)
        except AjcError as exc:
            _log.warning("could not publish the leader_elected event: %s", exc)


@contextlib.contextmanager
def capture_signals(stop: asyncio.Event, *, force: Callable[[], None] | None = None) -> Iterator[None]:
    """SIGTERM/SIGINT set ``stop``; a second SIGINT calls ``force`` (default: exit 130 now).
    The only place handlers are installed, and they are restored on exit."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = {sig: signal.getsignal(sig) for sig in signals}

    def forced() -> None:
        sys.stderr.flush()
        os._exit(130)

    def handle(sig: signal.Signals) -> None:
        if stop.is_set():
            if sig == signal.SIGINT:
                _log.warning("second interrupt: exiting now without releasing the election key")
                (force or forced)()
            return
        _log.info("received %s", sig.name)
        stop.set()

    for sig in signals:
        loop.add_signal_handler(sig, handle, sig)
    try:
        yield
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
            signal.signal(sig, previous[sig])


async def run_service(service: SchedulerService) -> None:
    """Run ``service`` with signal handling; AjcError from any loop surfaces as itself."""
    with capture_signals(service.stop):
        try:
            await service.run()
        except* AjcError as group:
            raise first_error(group) from None


def first_error(group: BaseExceptionGroup[AjcError]) -> AjcError:
    """The first AjcError in a (nested) exception group, to report in one line."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, AjcError)
    return exc

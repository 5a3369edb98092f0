"""Leader election wire-compatible with Go asyncjobs (contract §5, ``election/election.go``).

One key, ``task_scheduler`` in bucket ``CHORIA_AJ_ELECTIONS``, value = the scheduler's name.
A candidate acquires only with KV Create; a holder refreshes only with a revision-CAS Update
of its own last revision every 0.75 x TTL; it *acts* as leader only after the first successful
refresh following the Create (Go's "announce next" flag: by then any previous leader has
either refreshed, which would have made our Create fail, or noticed its failed refresh and
stopped). The first failed or timed-out refresh ends leadership at once. We never Put, never
adopt a key by reading it, never touch a key we do not hold. Unlike Go (contract §8.14) we
release on shutdown: stop acting first, then a revision-guarded Delete, so any member, Go or
ours, Creates over the tombstone at its next tick instead of waiting for the TTL.

Layout: ``Timing`` and ``Campaign`` are pure (no I/O, no clock); ``Elector`` drives them with
an injected ``Clock`` and an ``ElectionKV`` (implemented over NATS by ``store.watch``), so the
whole state machine runs under a fake clock in ``tests/unit/test_election_logic.py``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ajc_gitops.errors import ConflictError
from ajc_gitops.names import ELECTION_KEY

__all__ = [
    "Campaign",
    "Clock",
    "ElectionError",
    "ElectionKV",
    "ElectionObserver",
    "Elector",
    "Role",
    "Step",
    "SystemClock",
    "Timing",
    "next_tick",
]

MIN_TTL_S = 10.0  # election.go: Go refuses a bucket TTL outside 10s..1h
MAX_TTL_S = 3600.0
MIN_INTERVAL_S = 5.0  # election.go rejects a campaign interval < 5s
MAX_REQUEST_TIMEOUT_S = 5.0  # contract §5: request timeout ≤ 5s (nats.go default)
MAX_SPLAY_S = 5.0  # uniform 0-4999 ms, once at start
LEASE_MARGIN_S = 0.5  # refresh abandoned this long before the key could expire

_log = logging.getLogger(__name__)


class ElectionError(ValueError):
    """The bucket's TTL is one Go would refuse to run with."""


# -- pure timing ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """TTL-derived timing. ``from_ttl`` applies Go's checks; tests may build one directly
    with a shorter TTL (the only bypass, documented in ``tests/integration/test_election.py``)."""

    ttl_s: float
    interval_s: float
    request_timeout_s: float = MAX_REQUEST_TIMEOUT_S
    max_splay_s: float = MAX_SPLAY_S
    lease_margin_s: float | None = None  # None: 0.5 s, or 5% of a shorter test TTL

    @classmethod
    def from_ttl(cls, ttl_s: float, *, request_timeout_s: float = MAX_REQUEST_TIMEOUT_S) -> Timing:
        if not MIN_TTL_S <= ttl_s <= MAX_TTL_S:
            raise ElectionError(
                f"election bucket TTL {ttl_s:g}s is outside 10s..1h: Go asyncjobs refuses it, so we do too"
            )
        interval = 0.75 * ttl_s  # ≥ 7.5s, so Go's 5s minimum holds
        return cls(ttl_s, interval, min(request_timeout_s, MAX_REQUEST_TIMEOUT_S))

    def refresh_timeout(self, lease_left_s: float) -> float:
        """A refresh is given up before our lease could run out on the server, so we never
        believe we lead while the key may already be someone else's (contract §5)."""
        margin = self.lease_margin_s if self.lease_margin_s is not None else min(LEASE_MARGIN_S, 0.05 * self.ttl_s)
        return max(0.0, min(self.request_timeout_s, lease_left_s - margin))


def next_tick(start: float, interval: float, now: float) -> float:
    """Go's ``time.Ticker``: ticks at start + k*interval; ticks missed while busy are dropped."""
    if now < start:
        return start
    # The tolerance keeps float error from yielding a tick at ``now`` again (a second
    # campaign in the same instant).
    due = start + (int((now - start) / interval + 1e-9) + 1) * interval
    return due if due > now + 1e-9 else due + interval


# -- pure state machine -----------------------------------------------------------------------


class Role(enum.Enum):
    CANDIDATE = "candidate"
    WON = "won"  # Create succeeded, not yet announced: must not act (contract §5)
    LEADER = "leader"  # announced after the first successful refresh


@dataclass(frozen=True, slots=True)
class Step:
    """What one campaign result means for the caller."""

    acquired: bool = False  # Create succeeded (leader gauge 1)
    announce: bool = False  # first refresh succeeded: start acting (OnWon)
    lost: bool = False  # we held the key and no longer do (leader gauge 0)
    was_leader: bool = False  # ... and had announced (OnLost)


class Campaign:
    """Role and revision, changed only through these methods (no I/O)."""

    def __init__(self) -> None:
        self.role = Role.CANDIDATE
        self.revision: int | None = None
        self.lease_until = float("-inf")  # monotonic time our key can no longer have expired by

    @property
    def holds_key(self) -> bool:
        return self.role is not Role.CANDIDATE

    def created(self, revision: int, sent_at: float, ttl_s: float) -> Step:
        self.role, self.revision = Role.WON, revision
        self.lease_until = sent_at + ttl_s  # the server stamped it after we sent
        return Step(acquired=True)

    def refreshed(self, revision: int, sent_at: float, ttl_s: float) -> Step:
        announce = self.role is Role.WON
        self.role, self.revision = Role.LEADER, revision
        self.lease_until = sent_at + ttl_s
        return Step(announce=announce)

    def failed(self) -> Step:
        """A failed or timed-out refresh (or a release): back to candidate, forget the key."""
        if not self.holds_key:
            return Step()
        was_leader = self.role is Role.LEADER
        self.role, self.revision, self.lease_until = Role.CANDIDATE, None, float("-inf")
        return Step(lost=True, was_leader=was_leader)


# -- I/O seams --------------------------------------------------------------------------------


class ElectionKV(Protocol):
    """The election key's KV operations; ``ConflictError`` when the revision check fails."""

    async def bucket_ttl(self) -> float:
        """The bucket's TTL in seconds (stream max_age)."""
        ...

    async def create(self, value: bytes, *, timeout: float) -> int:
        """Create (expected sequence 0, or the tombstone's revision); the new revision."""
        ...

    async def update(self, value: bytes, *, revision: int, timeout: float) -> int: ...

    async def delete(self, *, revision: int, timeout: float) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait for ``event`` at most ``seconds``; True if it was set."""
        ...


class SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
        # races with completion (CPython gh-86296), leaving a TaskGroup waiting forever.
        try:
            async with asyncio.timeout(max(0.0, seconds)):
                await event.wait()
        except TimeoutError:
            return event.is_set()
        return True


class ElectionObserver(Protocol):
    """Metrics hooks (contract §6 election series); ``scheduler.metrics`` implements it."""

    def campaign(self, state: str) -> None: ...

    def leader(self, held: bool) -> None: ...

    def paused(self, paused: bool) -> None: ...

    def interval(self, seconds: float) -> None: ...


class _NoObserver:
    def campaign(self, state: str) -> None:
        pass

    def leader(self, held: bool) -> None:
        pass

    def paused(self, paused: bool) -> None:
        pass

    def interval(self, seconds: float) -> None:
        pass


def _raise_if_cancelling() -> None:
    # A KV client may swallow our cancellation (3.11 wait_for, CPython gh-86296); see
    # ``store.watch.raise_if_cancelling``. Kept local so this module stays I/O-free.
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


# -- the driver -------------------------------------------------------------------------------


class Elector:
    """Campaigns until ``release()``. ``is_leader`` is what the fire path checks before each
    task; it turns False synchronously when a refresh fails, when the lease runs out, or
    when ``release()`` starts. ``changed`` is set on every transition (await and clear it)."""

    def __init__(
        self,
        kv: ElectionKV,
        name: str,
        *,
        timing: Timing | None = None,
        clock: Clock | None = None,
        rng: Callable[[], float] = random.random,
        on_won: Callable[[], None] = lambda: None,
        on_lost: Callable[[], None] = lambda: None,
        observer: ElectionObserver | None = None,
    ) -> None:
        if not name:
            raise ValueError("scheduler name is required")
        self.name = name
        self._kv = kv
        self._value = name.encode()  # contract §5: raw name bytes, no JSON, no newline
        self.timing = timing  # None: read from the bucket in run(), as Go does
        self._clock: Clock = clock or SystemClock()
        self._rng = rng
        self._on_won, self._on_lost = on_won, on_lost
        self._observer: ElectionObserver = observer or _NoObserver()
        self._campaign = Campaign()
        self._stopping = asyncio.Event()
        self._io = asyncio.Lock()  # one KV request at a time: a campaign or the release
        self.changed = asyncio.Event()
        self.term = 0  # +1 per announcement, so a caller can tell terms apart

    # -- state the runner reads ------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        c = self._campaign
        return c.role is Role.LEADER and not self._stopping.is_set() and self._clock.monotonic() < c.lease_until

    @property
    def role(self) -> Role:
        return self._campaign.role

    async def wait_leader(self) -> None:
        while not self.is_leader:
            self.changed.clear()
            if self.is_leader:
                return
            await self.changed.wait()

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        """Splay, campaign at once, then on every tick until ``release()``."""
        if self.timing is None:
            self.timing = Timing.from_ttl(await self._kv.bucket_ttl())
        timing = self.timing
        self._observer.paused(True)  # contract §8.16: present from the start
        self._observer.interval(timing.interval_s)
        if await self._clock.wait(self._stopping, self._rng() * timing.max_splay_s):
            return
        start = self._clock.monotonic()
        try:
            while not self._stopping.is_set():
                await self.campaign_once()
                _raise_if_cancelling()
                due = next_tick(start, timing.interval_s, self._clock.monotonic())
                if await self._clock.wait(self._stopping, due - self._clock.monotonic()):
                    return
        except asyncio.CancelledError:
            # Like Go on context cancel: stop acting (OnLost); the key expires after the TTL.
            self._apply(self._campaign.failed())
            raise

    async def campaign_once(self) -> None:
        timing = self.timing
        assert timing is not None, "run() reads the timing first"
        async with self._io:
            if self._stopping.is_set():
                return
            c = self._campaign
            self._observer.campaign("leader" if c.holds_key else "candidate")
            sent = self._clock.monotonic()
            if not c.holds_key:
                try:
                    rev = await self._kv.create(self._value, timeout=timing.request_timeout_s)
                except ConflictError:
                    return  # someone holds it: stay candidate
                except Exception as exc:  # any failure: stay candidate, retry next tick
                    _log.warning("election: campaign failed: %s", exc)
                    return
                self._apply(c.created(rev, sent, timing.ttl_s))
                _log.info("election: %s acquired %s; acting after the next refresh", self.name, ELECTION_KEY)
                return
            assert c.revision is not None
            timeout = timing.refresh_timeout(c.lease_until - sent)
            try:
                async with asyncio.timeout(timeout):  # see SystemClock.wait
                    rev = await self._kv.update(self._value, revision=c.revision, timeout=timeout)
            except asyncio.CancelledError:
                self._apply(c.failed())  # nothing may act on a key we can no longer refresh
                raise
            except Exception as exc:  # failed or timed out: lost, immediately (contract §5)
                _log.warning(
                    "election: %s lost leadership: refresh failed: %s", self.name, str(exc) or type(exc).__name__
                )
                self._apply(c.failed())
                return
            if self._stopping.is_set():
                c.revision = rev  # release() began meanwhile: it deletes this; no announcement
                return
            self._apply(c.refreshed(rev, sent, timing.ttl_s))

    async def release(self) -> None:
        """Stop acting now, then hand the key over with a revision-guarded Delete."""
        if self._stopping.is_set():
            return
        self._stopping.set()  # is_leader is False from here on
        self.changed.set()
        async with self._io:
            c = self._campaign
            revision = c.revision if c.holds_key else None
            self._apply(c.failed())
            if revision is None or self.timing is None:
                return
            try:
                await self._kv.delete(revision=revision, timeout=self.timing.request_timeout_s)
            except Exception as exc:  # the key expires after the TTL anyway
                _log.warning("election: could not release %s: %s", ELECTION_KEY, exc)
            else:
                _log.info("election: %s released %s", self.name, ELECTION_KEY)

    def _apply(self, step: Step) -> None:
        if step.acquired:
            self._observer.leader(True)  # contract §6: 1 from Create success
        if step.announce:
            self.term += 1
            self._observer.paused(False)
            _log.info("election: %s is the leader", self.name)
            self._on_won()
        if step.lost:
            self._observer.leader(False)  # and, unlike Go, also on shutdown (contract §8.16)
            if step.was_leader:
                self._observer.paused(True)
                self._on_lost()
        if step.acquired or step.announce or step.lost:
            self.changed.set()

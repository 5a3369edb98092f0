"""Who may have fired when: how far back a new leader's catch-up may reach in a group that
can contain Go schedulers (issue 4 item 5; README "Running beside Go schedulers").

Between ajc-gitops members a repeated fire is harmless: every (schedule, slot) has one task
ID and the tasks stream rejects the second record (``tasks.py``). A Go leader gives its tasks
random IDs (contract §4.3), so a slot it fired and we fire again is two tasks. Catch-up must
therefore never reach a slot a Go leader can have fired. Go fires a slot only while it
believes it leads: from its first refresh after the Create until its first failed refresh,
which is at most ``interval + request timeout`` (7.5 s + 5 s) after its last successful one,
and its key lives ``ttl`` (10 s) after that refresh (contract §5).

What we know, and how:

* **Members.** Every ajc-gitops member Puts a marker ``ajc_gitops.schedulers.<name>`` before
  its first campaign (``store/asyncjobs/group.py``). An election-key holder without a marker is a Go
  member. Names must be unique across the group (Go's scheduler assumes that too).
* **Observation.** Each member reads the election key every ``poll`` seconds (< ttl). Every
  Go tenure holds the key for at least ``ttl`` without a gap (Go never deletes it), so an
  unbroken chain of successful polls sees every Go leader. When a poll shows a Go holder,
  the Go horizon moves to ``poll time + poll + interval + timeout + margin``: its last
  refresh can be up to one poll later, its last fire ``interval + timeout`` after that.
  ``margin`` absorbs clock skew between hosts. The horizon goes into our marker so members
  started later learn it too.
* **Knowledge.** Before the current chain of polls began we know nothing. A Go leader whose
  key had already expired when the chain began refreshed last ``ttl`` or more before it,
  so it fired until at most ``chain start + interval + timeout - ttl + margin``.

Progress: a leader also puts in its marker how far it has fired (``FireLoop.progress``); a
next leader starts a schedule after that point when the previous leader knew its current
record. This only saves re-attempts (they would be rejected as duplicates anyway).

Floor: once any member has seen a Go leader ("mixed"; until the markers are deleted), catch-up
never reaches at or before ``max(Go horizon, chain start + interval + timeout - ttl + margin)``.
A group where no member ever saw a Go leader reaches back the full catch-up window.
What does not hold: a Go member that leads, fires and stops entirely while no ajc-gitops
member is polling, in a group where no Go leader was ever seen, is invisible; the next
ajc-gitops leader may repeat its fires from inside the window. A Go leader frozen (SIGSTOP,
a VM pause) past its lease may still fire when it wakes: that is Go's own hole (it would
co-lead with another Go member just the same).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ajc_gitops.errors import AjcError
from ajc_gitops.model import MemberRecord
from ajc_gitops.store import Store, read_holder, read_members, write_member

__all__ = ["GroupTiming", "GroupView", "GroupWatch"]

_NS = 1_000_000_000
_log = logging.getLogger(__name__)
_REREAD_FIRST_PAUSE_S = 0.5
_REREAD_MAX_PAUSE_S = 2.0


@dataclass(frozen=True, slots=True)
class GroupTiming:
    """Go's election timing as the bucket dictates it (contract §5), plus our poll period."""

    ttl_s: float
    interval_s: float
    request_timeout_s: float
    poll_s: float
    margin_s: float = 2.0

    @classmethod
    def for_ttl(cls, ttl_s: float, interval_s: float) -> GroupTiming:
        # Go's request timeout is nats.go's default 5 s whatever the TTL (contract §5).
        return cls(ttl_s, interval_s, request_timeout_s=5.0, poll_s=min(1.0, ttl_s / 4))

    @property
    def go_reach_ns(self) -> int:
        """How long after being seen holding the key a Go leader can still fire."""
        return int((self.poll_s + self.interval_s + self.request_timeout_s + self.margin_s) * _NS)

    @property
    def unseen_reach_ns(self) -> int:
        """How long after an observation chain starts an unseen, expired Go leader can fire."""
        return int(max(0.0, self.interval_s + self.request_timeout_s - self.ttl_s + self.margin_s) * _NS)


class GroupView:
    """Pure: the members we know, the Go horizon, the observation chain. No I/O, no clock."""

    def __init__(self, name: str, timing: GroupTiming) -> None:
        self.name = name
        self.timing = timing
        self.python_names: set[str] = {name}
        self.go_leader: str | None = None
        self.go_horizon_ns: int | None = None
        self.chain_start_ns: int | None = None  # None: not observing right now
        self.go_leader_since_ns: int | None = None  # first poll that showed go_leader (status)
        self.leading_since_ns: int | None = None  # our current term's start (status)
        self._last_poll_ns: int | None = None
        # name -> (handled_through_s, handled_revision) of ajc-gitops leaders, ours included
        self.progress: dict[str, tuple[int, int]] = {}

    @property
    def mixed(self) -> bool:
        return self.go_horizon_ns is not None

    def learn(self, members: Iterable[MemberRecord]) -> None:
        for m in members:
            self.python_names.add(m.name)
            if m.go_horizon_ns is not None:
                self._raise_horizon(m.go_horizon_ns, m.go_leader, m.go_leader_since_ns)
            if m.handled_through_s is not None and m.handled_revision is not None:
                self.progress[m.name] = (m.handled_through_s, m.handled_revision)

    def handled_through(self, revision: int) -> int | None:
        """The latest second through which some ajc-gitops leader fired every slot of a
        schedule at this record ``revision`` (it knew the record: its view had reached that
        revision, and the watch delivers in stream order); None when nobody did."""
        seconds = [h for h, r in self.progress.values() if r >= revision]
        return max(seconds) if seconds else None

    def poll_ok(self, holder: str | None, at_ns: int) -> bool:
        """A successful read of the key at ``at_ns``. True when ``holder`` is a Go member
        (the caller then persists the new horizon)."""
        max_gap = int(self.timing.ttl_s * _NS * 0.8)  # a longer gap may hide a Go tenure
        if self.chain_start_ns is None or self._last_poll_ns is None or at_ns - self._last_poll_ns > max_gap:
            self.chain_start_ns = at_ns
        self._last_poll_ns = at_ns
        if holder is None or holder in self.python_names:
            return False
        self._raise_horizon(at_ns + self.timing.go_reach_ns, holder, at_ns)
        return True

    def poll_failed(self) -> None:
        self.chain_start_ns = None
        self._last_poll_ns = None

    def _raise_horizon(self, horizon_ns: int, leader: str | None, seen_ns: int | None) -> None:
        if self.go_horizon_ns is None or horizon_ns > self.go_horizon_ns:
            if leader != self.go_leader or self.go_leader_since_ns is None:
                self.go_leader_since_ns = seen_ns
            self.go_horizon_ns, self.go_leader = horizon_ns, leader

    def floor_ns(self, now_ns: int) -> int | None:
        """Catch-up must only fire slots strictly after this instant; None: no limit beyond
        the catch-up window (no Go leader was ever seen)."""
        if not self.mixed:
            return None
        assert self.go_horizon_ns is not None
        if self.chain_start_ns is None:
            return now_ns  # not observing: reach back nowhere
        return max(self.go_horizon_ns, self.chain_start_ns + self.timing.unseen_reach_ns)

    def floor_unread_ns(self, now_ns: int) -> int:
        """``floor_ns`` when the markers could not be re-read at a term start: another member
        may have recorded a Go leader since our last read. Our own unbroken chain of polls saw
        every Go tenure since it began, and one whose key expired before it fired until at
        most ``chain start + unseen reach``; so that bound is safe whatever the markers say,
        and a long-running member still catches up the whole window (issue 9: a leader that
        met a node fault at its term start used to catch up nothing). No chain: nowhere."""
        if self.chain_start_ns is None:
            return now_ns
        unseen = self.chain_start_ns + self.timing.unseen_reach_ns
        return unseen if self.go_horizon_ns is None else max(self.go_horizon_ns, unseen)

    def record(self, started_ns: int) -> MemberRecord:
        handled = self.progress.get(self.name)
        return MemberRecord(
            self.name,
            started_ns,
            self.go_leader,
            self.go_horizon_ns,
            handled_through_s=None if handled is None else handled[0],
            handled_revision=None if handled is None else handled[1],
            leading_since_ns=self.leading_since_ns,
            go_leader_since_ns=self.go_leader_since_ns,
        )


class GroupWatch:
    """Announces this member, then polls the election key until cancelled."""

    def __init__(
        self,
        store: Store,
        view: GroupView,
        *,
        clock: Callable[[], int],
        started_ns: int,
        progress: Callable[[], tuple[int, int] | None] = lambda: None,
        on_holder: Callable[[str | None, str], None] = lambda _holder, _kind: None,
    ) -> None:
        self._store = store
        self.view = view
        self._clock = clock
        self._started_ns = started_ns
        self._progress = progress  # the fire loop's (handled_through_s, revision) while leading
        self._on_holder = on_holder  # (holder, "go" | "ajc-gitops") after every read: metrics
        self._persisted: int | None = None
        self._persisted_progress: tuple[int, int] | None = None

    async def announce(self) -> None:
        """Startup: learn the other members, write our marker, take a first look. Must run
        before our first campaign, so nobody mistakes us for a Go member (raises on failure)."""
        self.view.learn(await read_members(self._store))
        await write_member(self._store, self.view.record(self._started_ns))
        self._persisted = self.view.go_horizon_ns
        await self.poll_once()

    async def refresh_members(self, *, within_s: float = 0.0) -> bool:
        """Re-read every marker (on becoming leader); False when that failed. A read that
        fails is tried again for ``within_s`` seconds: a node fault that moves the bucket's
        stream leader fails reads for a few seconds, and the term's floor depends on it."""
        deadline = time.monotonic() + within_s
        pause = _REREAD_FIRST_PAUSE_S
        while True:
            try:
                self.view.learn(await read_members(self._store))
            except AjcError as exc:
                if time.monotonic() + pause > deadline:
                    _log.warning("group: cannot read member markers: %s", exc)
                    return False
                _log.info("group: cannot read member markers yet, trying again: %s", exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, _REREAD_MAX_PAUSE_S)
                continue
            return True

    async def run(self) -> None:
        while True:
            # A period, not a wait for an event: every Go tenure outlives one period (module doc).
            await asyncio.sleep(self.view.timing.poll_s)
            await self.poll_once()
            await self._persist_progress()

    async def poll_once(self) -> None:
        timeout = self.view.timing.poll_s * 2
        try:
            holder = await read_holder(self._store, timeout=timeout)
        except AjcError as exc:
            _log.debug("group: cannot read the election key: %s", exc)
            self.view.poll_failed()
            return
        at = self._clock()
        if holder.name is not None and holder.name not in self.view.python_names:
            await self.refresh_members()  # a member that started after our last read?
        self._on_holder(holder.name, "ajc-gitops" if holder.name in self.view.python_names else "go")
        if self.view.poll_ok(holder.name, at):
            await self._persist()

    async def _persist_progress(self) -> None:
        """While leading: publish how far we fired, at most once per poll (module doc of
        ``fire.py``: it only saves a next leader from re-attempting those slots)."""
        progress = self._progress()
        if progress is None or progress == self._persisted_progress:
            return
        self.view.progress[self.view.name] = progress
        try:
            await write_member(self._store, self.view.record(self._started_ns))
        except AjcError as exc:
            _log.debug("group: cannot record our progress: %s", exc)
            return
        self._persisted_progress = progress

    async def _persist(self) -> None:
        horizon = self.view.go_horizon_ns
        step = int(self.view.timing.interval_s * _NS)
        if horizon is None or (self._persisted is not None and horizon - self._persisted < step):
            return
        if self._persisted is None:
            _log.warning(
                "group: a Go scheduler (%s) leads; catch-up will never reach slots it may have fired",
                self.view.go_leader,
            )
        try:
            await write_member(self._store, self.view.record(self._started_ns))
        except AjcError as exc:
            _log.warning("group: cannot record the Go leader in our marker: %s", exc)
            return
        self._persisted = horizon

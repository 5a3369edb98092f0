"""A mixed scheduler group, the real thing: one Go ``ajc task cron scheduler`` and two
``ajc-gitops scheduler``s on one bucket, ``@every 1s`` schedules, leaders stopped in turn
(issue #10, item 5; README "Running beside Go schedulers").

Everything is made by Go: ``ajc task cron add`` creates the buckets (the elections bucket with
Go's 10 s TTL) and the schedules. A worker on the ``DEFAULT`` queue counts the work items it is
handed (tests/deliveries.py), and a watch on the election key records every Create, Update and
Delete with the moment it was seen, so each tenure and each leaderless gap is known.

What must hold:

* no (schedule, slot) reaches the worker twice, whoever fired it (Go's task IDs are random, so
  only the catch-up floor of ``scheduler/group.py`` keeps us from repeating a Go fire);
* while an ajc-gitops member leads (from its first refresh after the Create, contract §5, until
  it is stopped), every slot of every schedule reaches the worker exactly once;
* the hand-overs under SIGTERM are measured: ours releases the key and a waiting Go member
  Creates it at its next tick; Go's ``ajc`` lets the key expire and ours Creates it at its next
  tick after that.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from ajc_gitops.embedded import start_server
from ajc_gitops.names import ELECTION_KEY, ELECTIONS_BUCKET, KV_OPERATION, kv_stream, kv_subject
from ajc_gitops.scheduler.tasks import task_id_for
from tests.deliveries import Worker, items, slot_of
from tests.gopeer.peer import Ajc, GoProcess
from tests.process.test_scheduler_failover import Member
from tests.scheduler_support import tasks_now
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

SCHEDULES = ("MX_A", "MX_B", "MX_C")
TTL_S = 10.0  # Go's elections bucket
TICK_S = 7.5  # 0.75 x TTL: both Go's and our campaign interval (contract §5)
SLACK_S = 1.5  # request round trips and a loaded 2-core machine
LONG_RUN_S = 120.0
# How long after its last refresh a Go leader may still be taken to fire (scheduler/group.py):
# a member last sees its key up to TTL later, then poll 1 s + interval + request timeout 5 s
# + clock margin 2 s.
GO_REACH_S = TTL_S + 1.0 + TICK_S + 5.0 + 2.0


@dataclass(frozen=True, slots=True)
class KeyEvent:
    at: float  # wall clock when the watch saw it
    holder: str | None  # None: deleted (a released key)


class ElectionLog:
    """Every message on the election key's subject, seen by a core subscription in a thread.
    An expiry sends nothing: a tenure without a Delete ends ``TTL_S`` after its last refresh."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.events: list[KeyEvent] = []
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> ElectionLog:
        self._thread.start()
        assert self._ready.wait(10), "election watch did not subscribe"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    async def _run(self) -> None:
        nc = await nats.connect(self.url, max_reconnect_attempts=-1)

        async def stored(msg: Msg) -> None:
            op = (msg.headers or {}).get(KV_OPERATION, "")
            at = msg.metadata.timestamp.timestamp()  # when the stream stored it
            self.events.append(KeyEvent(at, None if op in ("DEL", "PURGE") else msg.data.decode()))

        # The stream, not the subject: a refused Create is published on the subject too.
        await nc.jetstream().subscribe(
            kv_subject(ELECTIONS_BUCKET, ELECTION_KEY),
            stream=kv_stream(ELECTIONS_BUCKET),
            cb=stored,
            ordered_consumer=True,
            config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW),
        )
        self._ready.set()
        while not self._stop.is_set():
            await asyncio.sleep(0.05)
        await nc.close()

    def holder(self) -> str | None:
        """Who holds the key now, as far as the watch knows."""
        if not self.events:
            return None
        last = self.events[-1]
        return last.holder if time.time() - last.at < TTL_S else None

    def taken_after(self, instant: float, by: Callable[[str], bool]) -> KeyEvent | None:
        """The first Create of the key after ``instant`` by a holder ``by`` accepts."""
        return next((e for e in self.events if e.at > instant and e.holder and by(e.holder)), None)

    def tenures(self) -> list[Tenure]:
        out: list[Tenure] = []
        for e in self.events:
            current = out[-1] if out and out[-1].end is None else None
            if current is not None and e.holder == current.name:
                current.refreshes.append(e.at)
                continue
            if current is not None:  # released (Delete) or taken over after an expiry
                current.end = e.at if e.holder is None else min(e.at, current.refreshes[-1] + TTL_S)
            if e.holder is not None:
                out.append(Tenure(e.holder, e.at, [e.at]))
        return out


@dataclass(slots=True)
class Tenure:
    name: str
    created: float
    refreshes: list[float]
    end: float | None = None


@dataclass
class Group:
    url: str
    ajc: Ajc
    log_dir: Path
    go: dict[str, GoProcess] = field(default_factory=dict)
    ours: dict[str, Member] = field(default_factory=dict)
    stopped_at: dict[str, float] = field(default_factory=dict)  # name -> when it was signalled
    names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def start_go(self) -> str:
        name = f"go-{next(self.names)}"
        self.go[name] = self.ajc.scheduler(name)
        return name

    def start_ours(self) -> str:
        name = f"py-{next(self.names)}"
        self.ours[name] = Member(name, self.url, self.log_dir)
        return name

    def is_ours(self, name: str) -> bool:
        return name.startswith("py-")

    def stop(self, name: str, sig: signal.Signals) -> float:
        """Signal a member, wait for it to exit; the moment it was signalled."""
        at = time.time()
        if name in self.go:
            proc = self.go.pop(name)
            proc.signal(sig)
            proc.proc.wait(10)
        else:
            member = self.ours.pop(name)
            member.proc.send_signal(sig)
            code = member.proc.wait(10)
            if sig == signal.SIGTERM:
                assert code == 0, f"{name} exited {code} on SIGTERM"
            member.check_logs()
        self.stopped_at[name] = at
        return at

    def stop_all(self) -> None:
        for name in list(self.go):
            self.go.pop(name).stop()
        for name in list(self.ours):
            member = self.ours.pop(name)
            member.stop(10)
            member.check_logs()


@dataclass(frozen=True, slots=True)
class Handover:
    what: str
    key_gap_s: float  # signal (or key expiry) to the next Create
    signal_to_create_s: float
    signal_to_fire_s: float  # signal to the first work item of a slot after it


def first_fire_after(worker: Worker, instant: float) -> float:
    """When the worker was first handed a slot after ``instant`` (a caught-up slot is older
    than the moment it is handed out, so the moment is taken here)."""
    wait_until(lambda: fires_since(worker, instant) > 0, timeout=TTL_S + 2 * TICK_S + 10, what="a fire after it")
    return time.time()


def hand_over(group: Group, elections: ElectionLog, worker: Worker, sig: signal.Signals, to_ours: bool) -> Handover:
    leader = str(wait_until(elections.holder, timeout=TTL_S + TICK_S, what="a leader"))
    # Fired slots before the stop: the new leader's tenure is measured from a firing group.
    wait_until(lambda: fires_since(worker, time.time() - 3) >= 2, timeout=2 * TICK_S + 5, what="the leader firing")
    at = group.stop(leader, sig)
    taken = wait_until(
        lambda: elections.taken_after(at, lambda h: h != leader and group.is_ours(h) == to_ours),
        timeout=TTL_S + 2 * TICK_S + 5,
        what=f"the key taken over from {leader}",
    )
    assert taken is not None
    released = next((e.at for e in elections.events if e.at >= at and e.holder is None), None)
    last_refresh = max(e.at for e in elections.events if e.holder == leader and e.at < at)
    gone = released if released is not None and released < taken.at else min(taken.at, last_refresh + TTL_S)
    fired = first_fire_after(worker, at)
    kind = f"{'ours' if group.is_ours(leader) else 'Go'} {sig.name} -> {'ours' if to_ours else 'Go'}"
    out = Handover(kind, taken.at - max(gone, at), taken.at - at, fired - at)
    print(
        f"\nhand-over {out.what}: no key holder for {out.key_gap_s:.1f}s; {out.signal_to_create_s:.1f}s "
        f"signal to Create; first slot fired {out.signal_to_fire_s:.1f}s after the signal"
    )
    return out


def fires_since(worker: Worker, instant: float) -> int:
    return len({slot_of(j) for j in items(worker.snapshot()).values() if slot_of(j) > instant})


def check(url: str, worker: Worker, elections: ElectionLog, group: Group) -> dict[str, int]:
    """No slot twice overall; every slot once inside each of our tenures. Returns counts."""
    type_of = {t["id"]: t["type"] for t in tasks_now(url)}
    handed = items(worker.snapshot()).values()
    per_slot = Counter((type_of.get(job, "?"), slot_of(job)) for job in handed)
    dupes = {k: n for k, n in per_slot.items() if n > 1}
    assert not dupes, f"slots fired by two members: {dupes}"
    assert "?" not in {t for t, _ in per_slot}, "a work item without a task record"
    ours_ids = 0
    for job in handed:
        name = type_of[job].removeprefix("mx:")
        instant = datetime.datetime.fromtimestamp(slot_of(job), datetime.UTC)
        ours_ids += job == task_id_for(name, instant)
    checked, go_reach = 0, 0.0
    for tenure in elections.tenures():
        if not group.is_ours(tenure.name):
            go_reach = max(go_reach, tenure.refreshes[-1] + GO_REACH_S)
            continue
        if len(tenure.refreshes) < 2:
            continue
        end = group.stopped_at.get(tenure.name, tenure.end or time.time())
        # From its first refresh (it fires from then on), or from when a Go leader seen
        # before can no longer fire, to the signal, with a second's slack either side.
        for slot in range(int(max(tenure.refreshes[1], go_reach)) + 1, int(end) - 1):
            for name in SCHEDULES:
                assert per_slot[(f"mx:{name}", slot)] == 1, f"{tenure.name} led, {name} slot {slot} not handed out once"
                checked += 1
    return {"items": len(per_slot), "ours": ours_ids, "go": len(per_slot) - ours_ids, "checked_in_our_tenures": checked}


Mixed = tuple[Group, ElectionLog, Worker]


@pytest.fixture
def mixed(go_ajc: Path, tmp_path: Path) -> Iterator[Mixed]:
    """A server of its own: Go makes every bucket on it, with nothing left by another test."""
    server = start_server(work_dir=tmp_path / "nats", server_name="ajc-mixed")
    url = server.url
    ajc = Ajc(go_ajc, url, tmp_path / "ajc")
    for name in SCHEDULES:  # Go creates the buckets, its 10 s elections bucket included
        ajc.run("task", "cron", "add", name, "every 1s", f"mx:{name}")
    group = Group(url, ajc, tmp_path)
    try:
        with ElectionLog(url) as elections, Worker(url) as worker:
            try:
                yield group, elections, worker
            finally:
                group.stop_all()
                ajc.stop_all()
    finally:
        server.close()


def test_mixed_group_hands_over_both_ways_and_fires_each_slot_at_most_once(mixed: Mixed) -> None:
    group, elections, worker = mixed
    go = group.start_go()
    wait_until(lambda: elections.holder() == go, timeout=TTL_S, what="the Go scheduler leading")
    group.start_ours(), group.start_ours()
    go_to_ours = hand_over(group, elections, worker, signal.SIGTERM, to_ours=True)
    # Only a Go member may be waiting when ours releases: stop the other of ours first.
    leader = wait_until(elections.holder, timeout=5, what="our leader")
    now = time.time()
    wait_until(lambda: fires_since(worker, now) >= 4, timeout=TICK_S + 10, what="our leader firing")
    group.start_go()
    for idle in [n for n in group.ours if n != leader]:
        group.stop(idle, signal.SIGTERM)
    wait_until(lambda: fires_since(worker, time.time() - 2) >= 1 and len(elections.tenures()) >= 2, timeout=10)
    ours_to_go = hand_over(group, elections, worker, signal.SIGTERM, to_ours=False)
    group.stop_all()
    figures = check(group.url, worker, elections, group)
    print(f"\nmixed group: {figures}")
    assert figures["checked_in_our_tenures"] > 0 and figures["go"] > 0
    # Ours deletes the key: a Go candidate Creates it at its next tick.
    assert ours_to_go.key_gap_s <= TICK_S + SLACK_S, ours_to_go
    # Go's ajc lets the key expire (TTL after its last refresh); ours Creates it at its next tick.
    assert go_to_ours.signal_to_create_s <= TTL_S + TICK_S + SLACK_S, go_to_ours
    assert go_to_ours.key_gap_s <= TICK_S + SLACK_S, go_to_ours


def kill_round(group: Group, elections: ElectionLog, worker: Worker, sig: signal.Signals) -> Handover:
    """Stop whoever leads and start a member of the same kind (the group stays one Go and two
    of ours). Ours poll the key every second and win nearly every race against Go's 7.5 s
    ticks, so to hand over to Go the idle ones of ours are stopped first and replaced after."""
    leader = str(wait_until(elections.holder, timeout=TTL_S + 2 * TICK_S, what="a leader"))
    was_ours = group.is_ours(leader)
    idle = [n for n in group.ours if n != leader] if was_ours and sig == signal.SIGTERM else []
    for name in idle:
        group.stop(name, signal.SIGTERM)
    at = group.stop(leader, sig)
    if not idle:
        (group.start_ours if was_ours else group.start_go)()
    taken = wait_until(
        lambda: elections.taken_after(at, lambda h: h != leader), timeout=TTL_S + 2 * TICK_S + 5, what="a new leader"
    )
    assert taken is not None
    for _ in range(len(idle) + 1 if idle else 0):
        group.start_ours()
    now = time.time()
    wait_until(lambda: fires_since(worker, max(now, taken.at + TICK_S)) >= 3, timeout=TICK_S + 25, what="firing")
    kind = f"{'ours' if was_ours else 'Go'} {sig.name} -> {'ours' if group.is_ours(taken.holder or '') else 'Go'}"
    return Handover(kind, 0.0, taken.at - at, time.time() - at)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_mixed_group_under_two_minutes_of_leader_kills(mixed: Mixed) -> None:
    group, elections, worker = mixed
    group.start_go(), group.start_ours(), group.start_ours()
    # Ours SIGKILL -> ours, ours SIGTERM -> Go, Go SIGKILL, ours SIGTERM -> Go, Go SIGTERM: every pair.
    signals = itertools.cycle([signal.SIGKILL, signal.SIGTERM, signal.SIGKILL, signal.SIGTERM, signal.SIGTERM])
    started, rounds = time.time(), list[Handover]()
    while time.time() - started < LONG_RUN_S or (
        {r.what.split()[0] for r in rounds} != {"ours", "Go"} and time.time() - started < 3 * LONG_RUN_S
    ):
        rounds.append(kill_round(group, elections, worker, next(signals)))
        print(f"\n  {rounds[-1].what}: Create {rounds[-1].signal_to_create_s:.1f}s after the signal", flush=True)
    group.stop_all()
    figures = check(group.url, worker, elections, group)
    print(f"\nmixed group, {time.time() - started:.0f}s of kills: {figures}")
    for r in rounds:
        print(f"  {r.what}: new Create {r.signal_to_create_s:.1f}s, firing {r.signal_to_fire_s:.1f}s after the signal")
    assert figures["checked_in_our_tenures"] > 0 and figures["go"] > 0

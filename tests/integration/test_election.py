"""Leader election against a real nats-server: ours alone, ours in groups, ours mixed with a
Go-style candidate written here from contract §5.

Timing choice: Go refuses an elections bucket TTL under 10 s, and production reads the TTL
from the bucket through ``Timing.from_ttl`` exactly as Go does. Most tests here create the
bucket with a 2 s TTL and inject ``Timing(ttl_s=2, interval_s=1.5, request_timeout_s=0.4)``:
the same ratios (interval 0.75 x TTL, refresh given up before the key can expire), scaled
down 5x. The ``slow`` tests run the production path on Go's own 10 s bucket.

No sleeps for events: a sampler checks "at most one acting leader" every few milliseconds
for the whole test while the test waits on conditions.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
import pytest

from ajc_gitops.connect import ConnectOptions
from ajc_gitops.names import ELECTION_KEY, ELECTIONS_BUCKET
from ajc_gitops.scheduler.election import Elector, Timing
from ajc_gitops.store import NatsElectionKV, Store

pytestmark = pytest.mark.integration

SHORT = Timing(ttl_s=2.0, interval_s=1.5, request_timeout_s=0.4, max_splay_s=0.5)
SUBJECT = f"$KV.{ELECTIONS_BUCKET}.{ELECTION_KEY}"


def opts(url: str) -> ConnectOptions:
    return ConnectOptions(servers=(url,), timeout_s=2.0)


async def make_bucket(url: str, ttl_s: float) -> None:
    async with Store.open(opts(url)) as store:
        config = Store.bucket_config(ELECTIONS_BUCKET)
        config["max_age"] = config["duplicate_window"] = int(ttl_s * 1e9)
        await store.api_request(f"STREAM.CREATE.KV_{ELECTIONS_BUCKET}", config, what="test bucket")


class GoStyleCandidate:
    """Contract §5 as Go implements it, independently of our code: Create to acquire (over a
    tombstone too), revision-CAS Update each tick, act after the first refresh following the
    Create, stop at the first failed refresh, never delete."""

    def __init__(self, nc: Any, name: str, interval: float, timeout: float) -> None:
        self.nc, self.name, self.interval, self.timeout = nc, name, interval, timeout
        self.revision: int | None = None
        self.announce_next = False
        self.acting = False

    async def _publish(self, expected: int) -> int | None:
        headers = {"Nats-Expected-Last-Subject-Sequence": str(expected)}
        try:
            msg = await self.nc.request(SUBJECT, self.name.encode(), timeout=self.timeout, headers=headers)
        except Exception:
            return None
        reply = json.loads(msg.data)
        return None if "error" in reply else int(reply["seq"])

    async def _tombstone(self) -> int | None:
        body = json.dumps({"last_by_subj": SUBJECT}).encode()
        msg = await self.nc.request(f"$JS.API.STREAM.MSG.GET.KV_{ELECTIONS_BUCKET}", body, timeout=self.timeout)
        message = json.loads(msg.data).get("message")
        if not message or not message.get("hdrs"):
            return None
        hdrs = base64.b64decode(message["hdrs"]).decode()
        return int(message["seq"]) if "KV-Operation: DEL" in hdrs or "KV-Operation: PURGE" in hdrs else None

    async def tick(self) -> None:
        if self.revision is None:
            rev = await self._publish(0)
            if rev is None and (tomb := await self._tombstone()) is not None:
                rev = await self._publish(tomb)
            if rev is not None:
                self.revision, self.announce_next = rev, True
            return
        rev = await self._publish(self.revision)
        if rev is None:
            self.revision, self.acting, self.announce_next = None, False, False
            return
        self.revision = rev
        if self.announce_next:
            self.announce_next, self.acting = False, True

    async def run(self) -> None:
        start = time.monotonic()
        n = 0
        try:
            while True:
                await self.tick()
                n += 1
                await asyncio.sleep(max(0.0, start + n * self.interval - time.monotonic()))  # the ticker
        finally:
            self.acting = False


class Group:
    """Electors (ours and Go-style), each on its own connection, plus the sampler."""

    def __init__(self, url: str, tg: asyncio.TaskGroup, stack: contextlib.AsyncExitStack) -> None:
        self.url, self.tg, self.stack = url, tg, stack
        self.ours: dict[str, Elector] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.go: dict[str, GoStyleCandidate] = {}
        self.max_acting = 0
        self.won: list[tuple[float, str]] = []

    def acting(self) -> list[str]:
        return [n for n, e in self.ours.items() if e.is_leader] + [n for n, g in self.go.items() if g.acting]

    async def sample(self) -> None:
        while True:
            self.max_acting = max(self.max_acting, len(self.acting()))
            assert self.max_acting <= 1, f"two acting leaders: {self.acting()}"
            await asyncio.sleep(0.002)  # the sampling period, not a wait for an event

    async def add_ours(self, name: str, timing: Timing | None = SHORT) -> Elector:
        store = await self.stack.enter_async_context(Store.open(opts(self.url), reconnect=True))
        e = Elector(
            NatsElectionKV(store), name, timing=timing, on_won=lambda: self.won.append((time.monotonic(), name))
        )
        self.ours[name] = e
        self.tasks[name] = self.tg.create_task(e.run(), name=name)
        return e

    async def add_go(self, name: str, timing: Timing = SHORT) -> GoStyleCandidate:
        nc = await nats.connect(self.url)
        self.stack.push_async_callback(nc.close)
        g = GoStyleCandidate(nc, name, timing.interval_s, timing.request_timeout_s)
        self.go[name] = g
        self.tasks[name] = self.tg.create_task(g.run(), name=name)
        return g

    def kill(self, name: str) -> None:
        self.tasks[name].cancel()

    async def release_all(self) -> None:
        for e in self.ours.values():
            await e.release()
        for name in self.go:
            self.tasks[name].cancel()


@contextlib.asynccontextmanager
async def group(url: str) -> AsyncIterator[Group]:
    async with contextlib.AsyncExitStack() as stack, asyncio.TaskGroup() as tg:
        g = Group(url, tg, stack)
        sampler = tg.create_task(g.sample())
        try:
            yield g
        finally:
            await g.release_all()
            sampler.cancel()


def one_leader(g: Group) -> Callable[[], str | None]:
    def check() -> str | None:
        acting = g.acting()
        return acting[0] if len(acting) == 1 else None

    return check


@pytest.mark.parametrize("members", [2, 3])
async def test_python_electors_have_exactly_one_leader(nats_server, async_wait_until, members):
    await make_bucket(nats_server.url, SHORT.ttl_s)
    async with group(nats_server.url) as g:
        for i in range(members):
            await g.add_ours(f"py-{i}")
        leader = await async_wait_until(one_leader(g), timeout=SHORT.max_splay_s + 2 * SHORT.interval_s + 1)
        # Stable: still the same single leader several ticks later.
        deadline = time.monotonic() + 3 * SHORT.interval_s
        await async_wait_until(lambda: time.monotonic() > deadline and one_leader(g)() == leader, timeout=10)
        assert len(g.won) == 1
    assert g.max_acting == 1


async def test_killed_leader_is_replaced_within_ttl_plus_interval(nats_server, async_wait_until):
    await make_bucket(nats_server.url, SHORT.ttl_s)
    async with group(nats_server.url) as g:
        for i in range(3):
            await g.add_ours(f"py-{i}")
        first = await async_wait_until(one_leader(g), timeout=5)
        g.kill(first)  # no release: the key has to expire
        # Key expiry (≤ TTL after the last refresh, which was ≤ one interval ago), the tick that
        # finds the key free, and its one-tick announce delay: TTL plus three intervals.
        second = await async_wait_until(
            lambda: (n := one_leader(g)()) not in (None, first) and n, timeout=SHORT.ttl_s + 3 * SHORT.interval_s
        )
        assert second != first
    assert g.max_acting == 1


async def test_release_hands_over_at_the_next_tick(nats_server, async_wait_until):
    await make_bucket(nats_server.url, 60.0)  # a TTL that would make expiry-based failover obvious
    timing = Timing(ttl_s=60.0, interval_s=1.5, request_timeout_s=0.4, max_splay_s=0.5)
    async with group(nats_server.url) as g:
        await g.add_ours("py-a", timing)
        await async_wait_until(lambda: one_leader(g)() == "py-a", timeout=5)
        await g.add_ours("py-b", timing)
        released_at = time.monotonic()
        await g.ours["py-a"].release()
        assert not g.ours["py-a"].is_leader
        await async_wait_until(lambda: one_leader(g)() == "py-b", timeout=2 * timing.interval_s + 1)
        assert time.monotonic() - released_at < 3 * timing.interval_s < timing.ttl_s  # a tick, not the TTL
    assert g.max_acting == 1


async def test_mixed_with_go_style_candidates_never_two_leaders(nats_server, async_wait_until):
    await make_bucket(nats_server.url, SHORT.ttl_s)
    async with group(nats_server.url) as g:
        await g.add_go("go-0")
        await g.add_ours("py-0")
        await g.add_go("go-1")
        await g.add_ours("py-1")
        for _ in range(3):  # rotate leadership through kills and releases
            leader = await async_wait_until(one_leader(g), timeout=SHORT.ttl_s + 3 * SHORT.interval_s + 1)
            if leader in g.ours:
                await g.ours[leader].release()
            else:
                g.kill(leader)
            await async_wait_until(lambda old=leader: one_leader(g)() not in (None, old), timeout=10)
    assert g.max_acting == 1


async def test_go_style_candidate_takes_over_from_our_released_key(nats_server, async_wait_until):
    await make_bucket(nats_server.url, 60.0)
    timing = Timing(ttl_s=60.0, interval_s=1.5, request_timeout_s=0.4, max_splay_s=0.2)
    async with group(nats_server.url) as g:
        await g.add_ours("py", timing)
        await async_wait_until(lambda: one_leader(g)() == "py", timeout=5)
        await g.add_go("go", timing)
        await g.ours["py"].release()  # Go Creates over our tombstone, no 60 s wait
        await async_wait_until(lambda: one_leader(g)() == "go", timeout=3 * timing.interval_s + 1)
    assert g.max_acting == 1


async def test_failed_refresh_stops_acting_at_once(nats_server, async_wait_until):
    await make_bucket(nats_server.url, SHORT.ttl_s)
    async with group(nats_server.url) as g:
        e = await g.add_ours("py")
        await async_wait_until(lambda: e.is_leader, timeout=5)
        async with Store.open(opts(nats_server.url)) as other:  # someone breaks the CAS chain
            await other.purge(ELECTION_KEY, bucket=ELECTIONS_BUCKET)
        await async_wait_until(lambda: not e.is_leader and e.role.value == "candidate", timeout=2 * SHORT.interval_s)


# -- production path: Go's 10 s bucket, TTL read from it ----------------------------------


async def test_production_timing_from_go_bucket_and_release_handover(nats_server, async_wait_until):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        assert await NatsElectionKV(store).bucket_ttl() == 10.0
    async with group(nats_server.url) as g:
        a = await g.add_ours("py-a", timing=None)
        await async_wait_until(lambda: a.is_leader, timeout=5 + 7.5 + 2)
        assert a.timing == Timing.from_ttl(10.0)
        b = await g.add_ours("py-b", timing=None)
        released_at = time.monotonic()
        await a.release()
        await async_wait_until(lambda: b.is_leader, timeout=5 + 2 * 7.5 + 2)
        assert time.monotonic() - released_at <= 5 + 2 * 7.5 + 1
    assert g.max_acting == 1


async def test_production_refuses_a_bucket_go_would_refuse(nats_server):
    await make_bucket(nats_server.url, 5.0)
    async with Store.open(opts(nats_server.url)) as store:
        with pytest.raises(ValueError, match=r"outside 10s\.\.1h"):
            await Elector(NatsElectionKV(store), "py").run()

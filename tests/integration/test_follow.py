"""The live schedule set and the watch under it, against a real nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from ajc_gitops.codec import encode_scheduled_task
from ajc_gitops.connect import ConnectOptions
from ajc_gitops.errors import StoreError
from ajc_gitops.model import GoTime, ScheduledTask
from ajc_gitops.names import CONFIG_BUCKET, SCHEDULE_PREFIX
from ajc_gitops.scheduler.follow import Follower
from ajc_gitops.scheduler.metrics import SchedulerMetrics
from ajc_gitops.state import InitialDone, KvDelete, KvPurge, KvPut, WatchEvent
from ajc_gitops.store import Store, watch_keys

pytestmark = pytest.mark.integration


def opts(url: str) -> ConnectOptions:
    return ConnectOptions(servers=(url,), timeout_s=2.0)


def record(name: str, schedule: str = "*/5 * * * *", queue: str = "Q") -> bytes:
    task = ScheduledTask(name, schedule, queue, "email:send", None, 0, 10, GoTime(1_784_709_564_000_000_000))
    return encode_scheduled_task(task)


def key(name: str) -> str:
    return SCHEDULE_PREFIX + name


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    async with Store.open(opts(url), reconnect=True) as store:
        await store.ensure_buckets()
        yield store


@contextlib.asynccontextmanager
async def following(store: Store, **kw: Any) -> AsyncIterator[Follower]:
    kw.setdefault("watch", lambda s: watch_keys(s, heartbeat_s=0.5))
    follower = Follower(store, **kw)
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(follower.run())
        try:
            yield follower
        finally:
            task.cancel()


def schedule_of(follower: Follower, name: str) -> str | None:
    s = follower.schedules.get(name)
    return s.task.schedule if s is not None else None


# -- the watch itself ------------------------------------------------------------------------


async def collect_until_initial(events: AsyncGenerator[WatchEvent, None]) -> tuple[list[WatchEvent], InitialDone]:
    seen: list[WatchEvent] = []
    async for ev in events:
        if isinstance(ev, InitialDone):
            return seen, ev
        seen.append(ev)
    raise AssertionError("watch ended")


async def test_watch_marks_initial_values_done_after_exactly_the_existing_keys(nats_server):
    async with opened(nats_server.url) as store:
        async with contextlib.aclosing(watch_keys(store)) as events:
            seen, done = await asyncio.wait_for(collect_until_initial(events), 5)
            assert (seen, done) == ([], InitialDone(1, 0))  # empty bucket: done at once
        for i in range(50):
            await store.create(key(f"s{i}"), record(f"s{i}"), tombstone_revision=None)
        rev = await store.create(key("gone"), record("gone"), tombstone_revision=None)
        await store.delete(key("gone"), revision=rev)
        await store.put_raw("other.key", b"x")  # not under scheduled_tasks.*
        await store.put_raw(key("a.b"), b"x")  # deeper than Go's scheduled_tasks.*
        async with contextlib.aclosing(watch_keys(store)) as events:
            seen, done = await asyncio.wait_for(collect_until_initial(events), 5)
            assert done == InitialDone(1, 51)
            assert sum(isinstance(e, KvPut) for e in seen) == 50
            assert [e for e in seen if isinstance(e, KvDelete)] == [KvDelete(key("gone"), rev + 1)]
            await store.purge(key("s0"))
            ev = await asyncio.wait_for(anext(events), 5)
            assert isinstance(ev, KvPurge) and ev.key == key("s0")


# -- the schedule set --------------------------------------------------------------------------


async def test_put_replaces_delete_and_purge_remove_while_watching(nats_server, async_wait_until):
    async with opened(nats_server.url) as store:
        rev = await store.create(key("keep"), record("keep"), tombstone_revision=None)
        tomb = await store.delete(key("keep"), revision=rev)
        rev = await store.create(key("keep"), record("keep", "0 * * * *"), tombstone_revision=tomb)
        metrics = SchedulerMetrics("t")
        async with following(store, observer=metrics) as f:
            await asyncio.wait_for(f.wait_ready(), 5)
            assert schedule_of(f, "keep") == "0 * * * *"
            assert f.schedules["keep"].revision == rev
            rev_a = await store.create(key("a"), record("a"), tombstone_revision=None)
            await async_wait_until(lambda: schedule_of(f, "a") == "*/5 * * * *")
            await store.put_raw(key("a"), record("a", "1 * * * *"))  # a Put replaces, never adds
            await async_wait_until(lambda: schedule_of(f, "a") == "1 * * * *")
            assert len(f.schedules) == 2
            assert metrics.value("choria_asyncjobs_task_scheduler_schedules_total") == 2
            await store.delete(key("a"), revision=rev_a + 1)
            await async_wait_until(lambda: "a" not in f.schedules)
            await store.purge(key("keep"))
            await async_wait_until(lambda: not f.schedules)
            assert metrics.value("choria_asyncjobs_task_scheduler_schedules_total") == 0


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "decode"),
        (b'{"name":"bad","schedule":"0 0 1 * *","payload":{"a":1}}', "decode"),
        (json.dumps({"name": "bad", "schedule": "61 * * * *"}).encode(), "cron"),
        (json.dumps({"name": "bad", "schedule": "TZ=Europe/Berlin"}).encode(), "cron_panic"),
    ],
    ids=["syntax", "payload-object", "cron-range", "tz-without-space"],
)
async def test_invalid_record_is_skipped_counted_and_harmless(nats_server, async_wait_until, value, reason):
    async with opened(nats_server.url) as store:
        metrics = SchedulerMetrics("t")
        await store.create(key("good"), record("good"), tombstone_revision=None)
        async with following(store, observer=metrics) as f:
            await asyncio.wait_for(f.wait_ready(), 5)
            await store.put_raw(key("bad"), record("bad"))
            await async_wait_until(lambda: "bad" in f.schedules)
            await store.put_raw(key("bad"), value)  # an invalid update removes the old definition
            skipped = ("ajc_gitops_scheduler_invalid_schedules_skipped_total", {"reason": reason})
            await async_wait_until(lambda: metrics.value(skipped[0], **skipped[1]) == 1)
            assert "bad" not in f.schedules and "good" in f.schedules
            assert metrics.value("ajc_gitops_scheduler_invalid_schedules", reason=reason) == 1
            await store.create(key("later"), record("later"), tombstone_revision=None)
            await async_wait_until(lambda: "later" in f.schedules)
            await f.resync()  # a resync sees the same revision: not counted twice
            assert metrics.value(*skipped[:1], **skipped[1]) == 1
            await store.purge(key("bad"))
            await async_wait_until(lambda: metrics.value("ajc_gitops_scheduler_invalid_schedules", reason=reason) == 0)


async def test_resync_recovers_changes_the_watch_missed(nats_server, async_wait_until):
    async def lossy(store: Store) -> AsyncGenerator[WatchEvent, None]:
        async with contextlib.aclosing(watch_keys(store, heartbeat_s=0.5)) as events:
            async for ev in events:
                if not (isinstance(ev, KvPut | KvDelete | KvPurge) and "missed" in ev.key):
                    yield ev

    async with opened(nats_server.url) as store:
        rev = await store.create(key("doomed"), record("doomed"), tombstone_revision=None)
        async with following(store, watch=lossy, resync_s=0.2) as f:
            await asyncio.wait_for(f.wait_ready(), 5)
            await store.create(key("missed"), record("missed"), tombstone_revision=None)
            await async_wait_until(lambda: "missed" in f.schedules)  # only a resync can do this
            # A key that vanishes without any event (purged, then its marker removed):
            await store.purge(key("missed"))
            await async_wait_until(lambda: "missed" not in f.schedules)
            assert "doomed" in f.schedules and f.schedules["doomed"].revision == rev
            assert f.resyncs >= 2


async def test_server_restart_rewatches_without_restarting_the_process(nats_server, async_wait_until):
    async with opened(nats_server.url) as store:
        await store.create(key("before"), record("before"), tombstone_revision=None)
        async with following(store, resync_s=3600) as f:
            await asyncio.wait_for(f.wait_ready(), 5)
            assert set(f.schedules) == {"before"}
            await asyncio.to_thread(nats_server.restart)
            await async_wait_until(lambda: store.connected, timeout=15)
            await async_wait_until(lambda: f.watch_sessions >= 2, timeout=15)
            await store.create(key("after"), record("after"), tombstone_revision=None)
            await async_wait_until(lambda: set(f.schedules) == {"before", "after"}, timeout=10)


async def test_stalled_watch_is_recreated(nats_server, async_wait_until):
    """nats.py #510: a push consumer that silently goes away. Ours notices the missing
    heartbeats and re-creates the watch."""
    async with opened(nats_server.url) as store, following(store, resync_s=3600) as f:
        await asyncio.wait_for(f.wait_ready(), 5)
        listing = await store.api_request(f"CONSUMER.LIST.KV_{CONFIG_BUCKET}", {}, what="list")
        for consumer in listing["consumers"]:
            name = consumer["name"]
            await store.api_request(f"CONSUMER.DELETE.KV_{CONFIG_BUCKET}.{name}", None, what="delete")
        await store.create(key("x"), record("x"), tombstone_revision=None)
        await async_wait_until(lambda: "x" in f.schedules, timeout=10)
        assert f.watch_sessions >= 2


async def test_cluster_node_stopped_rewatches_on_another_node(nats_cluster, async_wait_until):
    # 5 s: creating R3 buckets on a fresh cluster can take seconds on a loaded 2-core machine.
    options = ConnectOptions(servers=tuple(nats_cluster.urls.split(",")), timeout_s=5.0)
    async with Store.open(options, reconnect=True) as store:
        await store.ensure_buckets(replicas=3)
        await store.create(key("before"), record("before"), tombstone_revision=None)
        async with following(store, resync_s=3600) as f:
            await asyncio.wait_for(f.wait_ready(), 10)
            await asyncio.to_thread(nats_cluster.servers[0].stop)  # the node we are connected to
            await async_wait_until(lambda: f.watch_sessions >= 2, timeout=20)

            async def create_after() -> bool:  # the stream may be electing a new leader
                with contextlib.suppress(StoreError):
                    await store.create(key("after"), record("after"), tombstone_revision=None)
                    return True
                return False

            await async_wait_until(create_after, timeout=20)
            await async_wait_until(lambda: set(f.schedules) == {"before", "after"}, timeout=10)

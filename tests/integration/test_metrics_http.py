"""``--monitor``: /metrics under the contract §6 names, /healthz follows the NATS connection,
/readyz follows the initial schedule load. Real nats-server, real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import re
import urllib.error
import urllib.request
from collections.abc import AsyncIterator

import pytest

from ajc_gitops.codec import encode_scheduled_task
from ajc_gitops.connect import ConnectOptions
from ajc_gitops.model import ScheduledTask
from ajc_gitops.names import ELECTIONS_BUCKET, SCHEDULE_PREFIX
from ajc_gitops.scheduler.election import Elector, Timing
from ajc_gitops.scheduler.follow import Follower
from ajc_gitops.scheduler.metrics import GO_NAMES, OUR_NAMES, MonitorServer, SchedulerMetrics
from ajc_gitops.store import NatsElectionKV, Store, watch_keys

pytestmark = pytest.mark.integration

SHORT = Timing(ttl_s=2.0, interval_s=1.5, request_timeout_s=0.4, max_splay_s=0.2)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def aget(url: str) -> tuple[int, str]:
    return await asyncio.to_thread(get, url)


async def short_elections_bucket(url: str) -> None:
    """A 2 s elections bucket to match the scaled-down SHORT timing (see test_election.py)."""
    async with Store.open(ConnectOptions(servers=(url,), timeout_s=2.0)) as store:
        config = Store.bucket_config(ELECTIONS_BUCKET)
        config["max_age"] = config["duplicate_window"] = int(SHORT.ttl_s * 1e9)
        await store.api_request(f"STREAM.CREATE.KV_{ELECTIONS_BUCKET}", config, what="test bucket")


@contextlib.asynccontextmanager
async def monitored(url: str, metrics: SchedulerMetrics) -> AsyncIterator[tuple[Store, Follower, str]]:
    async with Store.open(ConnectOptions(servers=(url,), timeout_s=2.0), reconnect=True) as store:
        await store.ensure_buckets()
        follower = Follower(store, observer=metrics, watch=lambda s: watch_keys(s, heartbeat_s=0.5))
        server = MonitorServer(
            metrics, 0, host="127.0.0.1", healthy=lambda: store.connected, ready=lambda: follower.ready
        )
        with server:
            yield store, follower, f"http://127.0.0.1:{server.port}"


async def test_metrics_serve_every_contract_name_with_go_types(nats_server, async_wait_until):
    await short_elections_bucket(nats_server.url)
    metrics = SchedulerMetrics("sched-a")
    async with monitored(nats_server.url, metrics) as (store, follower, base):
        status, text = await aget(f"{base}/readyz")
        assert status == 503  # nothing loaded yet
        task = ScheduledTask("s1", "@every 1m", "Q", "t:t", None, 0, 10)
        await store.create(SCHEDULE_PREFIX + "s1", encode_scheduled_task(task), tombstone_revision=None)
        async with asyncio.TaskGroup() as tg:
            run = tg.create_task(follower.run())
            await async_wait_until(lambda: follower.ready)
            assert (await aget(f"{base}/readyz"))[0] == 200
            elector = Elector(NatsElectionKV(store), "sched-a", timing=SHORT, observer=metrics)
            election = tg.create_task(elector.run())
            await async_wait_until(lambda: elector.is_leader, timeout=5)
            status, text = await aget(f"{base}/metrics")
            await elector.release()
            run.cancel()
            await election
        assert status == 200
        for name, (kind, _, _) in {**GO_NAMES, **OUR_NAMES}.items():
            assert f"# TYPE {name} {kind}\n" in text, name
        # Go's counters carry no _total suffix (contract §6), and no stray _created series.
        assert "_count_total" not in text and "campaigns_total" not in text
        assert not re.search(r"^choria_\w+_created", text, re.M)
        assert "choria_asyncjobs_task_scheduler_schedules_total 1.0" in text
        assert "choria_asyncjobs_task_scheduler_paused 0.0" in text
        assert 'choria_asyncjobs_election_leader{election="task_scheduler",identity="sched-a"} 1.0' in text
        assert 'choria_asyncjobs_election_interval_seconds{election="task_scheduler",identity="sched-a"} 1.5' in text
        labels = r'election="task_scheduler",identity="sched-a",state="candidate"'
        assert re.search(r"choria_asyncjobs_election_campaigns\{" + labels + r"\} [1-9]", text)
        assert "process_resident_memory_bytes" in text and "python_info" in text
        # After release: not leader, paused (Go leaves the leader gauge at 1, §8.16).
        assert metrics.value("choria_asyncjobs_election_leader", election="task_scheduler", identity="sched-a") == 0
        assert metrics.value("choria_asyncjobs_task_scheduler_paused") == 1


async def test_counters_go_forgets_really_count():
    metrics = SchedulerMetrics("x")
    metrics.task_scheduled("email:send", "EMAIL")
    metrics.task_scheduled("email:send", "EMAIL")
    metrics.schedule_error("email:send", "EMAIL")
    assert metrics.value("choria_asyncjobs_task_scheduler_scheduled_count", type="email:send", queue="EMAIL") == 2
    assert metrics.value("choria_asyncjobs_task_scheduler_schedule_error_count", type="email:send", queue="EMAIL") == 1
    metrics.fire_lag(0.02)
    assert metrics.value("ajc_gitops_scheduler_fire_lag_seconds_bucket", le="0.025") == 1


async def test_healthz_follows_the_nats_connection(nats_server, async_wait_until):
    async with monitored(nats_server.url, SchedulerMetrics("x")) as (store, _, base):
        assert (await aget(f"{base}/healthz"))[0] == 200
        await asyncio.to_thread(nats_server.stop)
        await async_wait_until(lambda: not store.connected, timeout=10)
        status, body = await aget(f"{base}/healthz")
        assert (status, body) == (503, "NATS not connected\n")
        await asyncio.to_thread(nats_server.start)
        await async_wait_until(lambda: store.connected, timeout=15)
        assert (await aget(f"{base}/healthz"))[0] == 200
        assert (await aget(f"{base}/nope"))[0] == 404

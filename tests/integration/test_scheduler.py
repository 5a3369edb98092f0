"""The scheduler service in-process against a real nats-server: what it creates (contract
§1), the records it fires (§4.2), following the store live (§3), invalid records, catch-up
and the Go-horizon floor of a mixed group (scheduler/group.py), and release on stop (§5).

The elections bucket gets a short TTL (tests/scheduler_support.py) so winning takes ~3 s."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import nats
import pytest

from ajc_gitops.gowire.gotime import format_rfc3339nano
from ajc_gitops.model import GoTime
from ajc_gitops.names import ELECTIONS_BUCKET, MEMBER_PREFIX, SCHEDULE_PREFIX
from ajc_gitops.scheduler.runner import SchedulerConfig, SchedulerService
from ajc_gitops.store import Store, read_holder, read_members
from tests.scheduler_support import (
    SHORT_TTL,
    assert_exactly_once,
    options,
    prepare,
    put_schedule,
    read_tasks,
    record,
    slot_of,
)

pytestmark = pytest.mark.integration
NS = 1_000_000_000
GO_TASK_KEYS = ["id", "type", "queue", "payload", "deadline", "max_tries", "state", "created", "tries"]


@asynccontextmanager
async def scheduler(url: str, name: str = "py-a", **config: Any) -> AsyncIterator[SchedulerService]:
    service = SchedulerService(SchedulerConfig(name=name, connect=options(url), allow_short_ttl=True, **config))
    task = asyncio.create_task(service.run(), name=f"scheduler {name}")
    try:
        await asyncio.wait_for(service.started.wait(), 10)
        yield service
    finally:
        service.stop.set()
        await asyncio.wait_for(task, 10)


async def leading(service: SchedulerService, wait: Any) -> None:
    await wait(lambda: service.elector is not None and service.elector.is_leader, timeout=3 * SHORT_TTL, what="lead")


def count(service: SchedulerService, name: str, **labels: str) -> float:
    return service.metrics.value(name, **labels) or 0.0


async def test_every_second_fires_go_records_and_creates_only_what_go_creates(nats_server, async_wait_until):
    url = nats_server.url
    await prepare(url)
    created = time.time_ns() - 3 * NS
    payload = b'"{\\"a\\":1}"'
    await put_schedule(
        url, "tick", record("tick", "@every 2s", created_ns=created, payload=payload, deadline_ns=60 * NS, max_tries=3)
    )
    async with scheduler(url, monitor_port=0) as service:
        await leading(service, async_wait_until)
        await async_wait_until(lambda: service.fire is not None and service.fire.fired >= 3, timeout=15)
        assert service.monitor is not None
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{service.monitor.port}/metrics").read().decode()
        ready = urllib.request.urlopen(f"http://127.0.0.1:{service.monitor.port}/readyz").status
    tasks = await read_tasks(url)
    slots = assert_exactly_once(tasks, "t:tick", every_s=2)
    anchor = created // NS
    assert all((s - anchor) % 2 == 0 for s in slots), "@every slots are anchored on created_at"
    task = tasks[-1]
    assert list(task) == GO_TASK_KEYS  # contract §4.2 key order, omitempty keys absent
    slot = slot_of(task)
    assert (task["type"], task["queue"], task["state"], task["tries"]) == ("t:tick", "DEFAULT", "new", 0)
    assert task["payload"] == "IkludGNJbUZjSWpveGZTST0i"  # stored bytes JSON-encoded again
    assert task["deadline"] == format_rfc3339nano(GoTime((slot + 60) * NS))
    assert task["max_tries"] == 3
    assert task["created"].endswith("Z")
    assert ready == 200
    assert 'choria_asyncjobs_task_scheduler_scheduled_count{queue="DEFAULT",type="t:tick"}' in metrics
    assert "choria_asyncjobs_task_scheduler_paused 0.0" in metrics or "paused 1.0" in metrics
    # Per schedule and per group (issue 12 item 3), what deploy/prometheus's alerts read.
    assert 'ajc_gitops_scheduler_schedule_last_fire_timestamp_seconds{schedule="tick"}' in metrics
    assert 'ajc_gitops_scheduler_schedule_period_seconds{schedule="tick"} 2.0' in metrics
    assert 'ajc_gitops_scheduler_group_leader{kind="ajc-gitops",leader="py-a"} 1.0' in metrics
    assert "ajc_gitops_scheduler_group_has_leader 1.0" in metrics
    nc = await nats.connect(url)
    try:
        streams = sorted([s.config.name async for s in _streams(nc)])
        item = await nc.jetstream().get_last_msg("CHORIA_AJ_Q_DEFAULT", f"CHORIA_AJ.Q.DEFAULT.{task['id']}")
    finally:
        await nc.close()
    assert item.headers["Nats-Msg-Id"] == task["id"]
    # Contract §1: exactly what Go's scheduler load-or-creates, nothing else.
    assert streams == ["CHORIA_AJ_Q_DEFAULT", "CHORIA_AJ_TASKS", "KV_CHORIA_AJ_CONFIGURATION", "KV_CHORIA_AJ_ELECTIONS"]


async def _streams(nc: Any) -> AsyncIterator[Any]:
    for info in await nc.jetstream().streams_info():
        yield info


async def test_put_replaces_and_delete_stops(nats_server, async_wait_until):
    url = nats_server.url
    await prepare(url)
    now = time.time_ns()
    await put_schedule(url, "a", record("a", "@every 1s", created_ns=now, task_type="t:a1"))
    await put_schedule(url, "b", record("b", "@every 1s", created_ns=now))
    async with scheduler(url) as service:
        await leading(service, async_wait_until)
        fired = lambda tt: sum(1 for t in service_tasks if t["type"] == tt)  # noqa: E731
        service_tasks: list[dict[str, Any]] = []

        async def types(tt: str, n: int) -> bool:
            service_tasks[:] = await read_tasks(url)
            return fired(tt) >= n

        await async_wait_until(lambda: types("t:a1", 2), timeout=10)
        # A Put over a live key replaces the registration (Go would add a second, §8.1).
        await put_schedule(url, "a", record("a", "@every 1s", created_ns=now, task_type="t:a2"))
        await async_wait_until(lambda: types("t:a2", 2), timeout=10)
        async with Store.open(options(url)) as store:
            revision = (await store.snapshot(SCHEDULE_PREFIX)).live[SCHEDULE_PREFIX + "a"].revision
            await store.delete(SCHEDULE_PREFIX + "a", revision=revision)
        deleted_at = time.time()
        await async_wait_until(lambda: "a" not in service.follower.schedules, timeout=5)  # type: ignore[union-attr]
        b_before = fired("t:b")
        await async_wait_until(lambda: types("t:b", b_before + 3), timeout=10)  # time passes, b fires
    tasks = await read_tasks(url)
    a1 = [slot_of(t) for t in tasks if t["type"] == "t:a1"]
    a2 = [slot_of(t) for t in tasks if t["type"] == "t:a2"]
    assert max(a1) < min(a2), "after the Put only the new definition fires"
    assert max(a2) <= deleted_at + 1, "a deleted schedule stops firing"
    assert_exactly_once(tasks, "t:b")


async def test_records_that_would_crash_go_or_fail_to_decode_are_skipped(nats_server, async_wait_until):
    url = nats_server.url
    await prepare(url)
    now = time.time_ns()
    await put_schedule(url, "ok", record("ok", "@every 1s", created_ns=now))
    # Contract §2.5: TZ= without a space panics every Go scheduler that loads it.
    await put_schedule(url, "panics", record("panics", "CRON_TZ=UTC", created_ns=now))
    await put_schedule(url, "garbage", b'{"name":"garbage","schedule":')
    await put_schedule(url, "badtype", record("badtype", "@every 1s", created_ns=now, task_type="bad type!"))
    async with scheduler(url) as service:
        await leading(service, async_wait_until)
        await async_wait_until(lambda: service.fire is not None and service.fire.fired >= 2, timeout=10)
        assert sorted(service.follower.schedules) == ["badtype", "ok"]  # type: ignore[union-attr]
        skipped = "ajc_gitops_scheduler_invalid_schedules_skipped_total"
        assert count(service, skipped, reason="cron_panic") == 1
        assert count(service, skipped, reason="decode") == 1
        errors = "choria_asyncjobs_task_scheduler_schedule_error_count"
        await async_wait_until(lambda: count(service, errors, type="bad type!", queue="DEFAULT") >= 1)
    assert {t["type"] for t in await read_tasks(url)} == {"t:ok"}


async def test_catch_up_reaches_back_the_window_and_never_further(nats_server, async_wait_until, caplog):
    caplog.set_level("INFO", logger="ajc_gitops.scheduler.fire")
    url = nats_server.url
    await prepare(url)
    start = time.time_ns()
    await put_schedule(url, "old", record("old", "@every 1s", created_ns=start - 600 * NS))
    async with scheduler(url, catchup_window=timedelta(seconds=8)) as service:
        await leading(service, async_wait_until)
        term_start = time.time()
        await async_wait_until(lambda: count(service, "ajc_gitops_scheduler_catchup_fires_total") >= 7, timeout=10)
    slots = assert_exactly_once(await read_tasks(url), "t:old")
    assert slots[0] >= int(term_start) - 9, "nothing older than the catch-up window"
    assert slots[0] <= int(term_start) - 6, "the window was caught up"
    # Item 6 of issue 12: said once, with how many, of which schedules, how far back, and why.
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("caught up")]
    assert len(said) == 1, said
    assert " schedule(s) (old), back to " in said[0] and "--catchup-window 8s" in said[0]


async def test_mixed_group_catch_up_never_reaches_a_go_leaders_slots(nats_server, async_wait_until):
    url = nats_server.url
    await prepare(url)
    await put_schedule(url, "old", record("old", "@every 1s", created_ns=time.time_ns() - 600 * NS))
    nc = await nats.connect(url)
    kv = await nc.jetstream().key_value(ELECTIONS_BUCKET)
    # A Go member leads: Create, then revision-CAS Updates every 0.75 x TTL (contract §5).
    revision = await kv.create("task_scheduler", b"go-sched")
    last_refresh = time.time()

    async def go_leader() -> None:
        nonlocal revision, last_refresh
        await asyncio.sleep(0.75 * SHORT_TTL)  # Go's ticker, not a wait for an event
        revision = await kv.update("task_scheduler", b"go-sched", last=revision)
        last_refresh = time.time()

    try:
        async with scheduler(url, catchup_window=timedelta(hours=1)) as service:
            await go_leader()  # then "crash": the key expires after the TTL
            await leading(service, async_wait_until)
            view = service.group.view  # type: ignore[union-attr]
            assert view.mixed and view.go_leader == "go-sched"
            await async_wait_until(lambda: service.fire is not None and service.fire.fired >= 2, timeout=10)
            async with Store.open(options(url)) as store:
                [marker] = [m for m in await read_members(store) if m.name == "py-a"]
    finally:
        await nc.close()
    slots = assert_exactly_once(await read_tasks(url), "t:old")
    # Go fired until at most its last refresh + interval + request timeout; we never before that.
    assert slots[0] > last_refresh + 0.75 * SHORT_TTL
    assert marker.go_leader == "go-sched" and marker.go_horizon_ns is not None
    assert view.go_horizon_ns is not None and slots[0] * NS > view.go_horizon_ns


async def test_stop_releases_the_key_and_markers_name_members(nats_server, async_wait_until):
    url = nats_server.url
    await prepare(url)
    nc = await nats.connect(url)
    elected: list[bytes] = []

    async def on_event(msg: Any) -> None:
        elected.append(msg.data)

    await nc.subscribe("CHORIA_AJ.E.leader_election.>", cb=on_event)
    await nc.flush()
    async with scheduler(url, name="py-z") as service:
        await leading(service, async_wait_until)
        await async_wait_until(lambda: elected, what="the leader_elected event")
        await nc.close()
        async with Store.open(options(url)) as store:
            assert (await read_holder(store, timeout=2)).name == "py-z"
        stopped = time.monotonic()
    assert time.monotonic() - stopped < 2
    async with Store.open(options(url)) as store:
        holder = await read_holder(store, timeout=2)
        markers = await store.snapshot(MEMBER_PREFIX)
    assert holder.name is None and holder.revision is not None, "released with a Delete, not left to expire"
    assert json.loads(markers.live[MEMBER_PREFIX + "py-z"].value or b"")["name"] == "py-z"
    event = json.loads(elected[0])  # contract §5 OnWon
    assert list(event) == ["event_id", "type", "timestamp", "name", "component"]
    assert (event["type"], event["name"], event["component"]) == (
        "io.choria.asyncjobs.v1.leader_elected",
        "py-z",
        "task_scheduler",
    )


async def test_a_new_leader_skips_what_the_previous_one_recorded_as_fired(nats_server, async_wait_until):
    url = nats_server.url
    await prepare(url)
    await put_schedule(url, "s", record("s", "@every 1s", created_ns=time.time_ns() - 60 * NS))
    async with scheduler(url, name="py-a") as a:
        await leading(a, async_wait_until)
        async with scheduler(url, name="py-b") as b:
            # py-a caught up the minute since created_at, then published how far it fired.
            async def recorded() -> bool:
                async with Store.open(options(url)) as store:
                    return any(m.name == "py-a" and m.handled_through_s for m in await read_members(store))

            await async_wait_until(recorded, what="py-a's progress in its marker")
            a.stop.set()  # hand over (SIGTERM)
            await leading(b, async_wait_until)
            await async_wait_until(lambda: b.fire is not None and b.fire.fired >= 2, timeout=10)
            dupes = count(b, "ajc_gitops_scheduler_duplicate_fires_suppressed_total")
    assert count(a, "ajc_gitops_scheduler_catchup_fires_total") >= 55
    assert dupes <= 2, f"py-b re-attempted {dupes} slots py-a had fired"
    assert_exactly_once(await read_tasks(url), "t:s")


async def test_a_slot_already_stored_is_refused_counted_and_logged(nats_server, async_wait_until, caplog):
    """The refused re-fire the fault suite reads from the log (tests/deliveries.py), end to end:
    a catch-up slot whose task another leader already stored is counted and logged, once."""
    import logging

    from ajc_gitops.codec import decode_scheduled_task
    from ajc_gitops.gowire.godate import from_unix
    from ajc_gitops.scheduler.tasks import build_task
    from ajc_gitops.store import enqueue_many
    from tests.deliveries import refused_refires

    url = nats_server.url
    await prepare(url)
    created_ns = (time.time_ns() // NS - 30) * NS
    raw = record("s", "@every 1s", created_ns=created_ns)
    await put_schedule(url, "s", raw)
    slot = created_ns // NS + 5  # inside the catch-up window
    task = build_task(decode_scheduled_task(raw).task, from_unix(slot), created=GoTime(time.time_ns()))
    async with Store.open(options(url)) as store:
        [stored] = await enqueue_many(store, [task])
    assert stored.status == "enqueued"
    caplog.set_level(logging.INFO, logger="ajc_gitops.scheduler.fire")
    async with scheduler(url) as service:
        await leading(service, async_wait_until)
        refused = "ajc_gitops_scheduler_duplicate_fires_suppressed_total"
        await async_wait_until(lambda: count(service, refused) >= 1, what="the refused re-fire")
        await async_wait_until(lambda: service.fire is not None and service.fire.idle.is_set(), what="caught up")
        assert count(service, refused) == 1
    lines = [json.dumps({"msg": r.getMessage()}) for r in caplog.records]
    assert refused_refires(lines) == {("s", slot): 1}

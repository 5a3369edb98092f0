"""Firing against a real nats-server: Go's streams, Go's task record, work item and events
(contract §1, §4.2, §4.4), exactly once per (schedule, slot), and a pipelined 10,000."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATSClient
from nats.aio.msg import Msg

from ajc_gitops.codec import encode_task
from ajc_gitops.connect import ConnectOptions
from ajc_gitops.errors import StoreError
from ajc_gitops.gowire.gotime import format_rfc3339nano
from ajc_gitops.gowire.ksuid import parse_ksuid
from ajc_gitops.model import NANOS_PER_SECOND, GoTime, ScheduledTask, Task
from ajc_gitops.scheduler.tasks import build_task
from ajc_gitops.store import (
    DEFAULT_QUEUE,
    QueueSpec,
    Store,
    enqueue_many,
    ensure_queue,
    ensure_task_streams,
    publish_leader_elected,
    queue_stream_config,
)

pytestmark = pytest.mark.integration

SLOT = datetime(2026, 8, 1, tzinfo=UTC)
NO_RESPONDERS = "nats: no responders available for request"
GO_TASK_KEYS = ["id", "type", "queue", "payload", "deadline", "max_tries", "state", "created", "tries"]


def schedule(name: str = "EMAIL_MONTHLY_UPDATE", **changes: Any) -> ScheduledTask:
    fields: dict[str, Any] = {
        "name": name,
        "schedule": "0 0 1 * *",
        "queue": "EMAIL",
        "task_type": "email:monthly",
        "payload": b'"{\\"a\\":1}"',
        "deadline_ns": 12 * 3600 * NANOS_PER_SECOND,
        "max_tries": 10,
    }
    fields.update(changes)
    return ScheduledTask(**fields)


def fire(st: ScheduledTask | None = None, slot: datetime = SLOT) -> Task:
    return build_task(st or schedule(), slot, created=GoTime(time.time_ns()))


@asynccontextmanager
async def connected(url: str) -> AsyncIterator[tuple[Store, NATSClient]]:
    """Our store plus a plain nats-py client to look at what landed."""
    nc = await nats.connect(url)
    try:
        async with Store.open(ConnectOptions(servers=(url,), timeout_s=2.0)) as store:
            yield store, nc
    finally:
        await nc.close()


async def last_msg(nc: NATSClient, stream: str, subject: str) -> Any:
    return await nc.jetstream().get_last_msg(stream, subject)


async def events(nc: NATSClient, subject: str = "CHORIA_AJ.E.>") -> list[Msg]:
    received: list[Msg] = []

    async def on_msg(msg: Msg) -> None:
        received.append(msg)

    await nc.subscribe(subject, cb=on_msg)
    await nc.flush()  # the subscription is registered before anything is published
    return received


# -- streams ---------------------------------------------------------------------------------


async def api(nc: NATSClient, subject: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JetStream API reply as the server's JSON (durations in nanoseconds)."""
    data = json.dumps(body).encode() if body is not None else b""
    reply = json.loads((await nc.request(f"$JS.API.{subject}", data, timeout=2)).data)
    assert "error" not in reply, reply
    return dict(reply)


async def test_task_streams_and_default_queue_are_created_as_go_does(nats_server):
    async with connected(nats_server.url) as (store, nc):
        assert await ensure_task_streams(store) == ["CHORIA_AJ_TASKS", "CHORIA_AJ_Q_DEFAULT"]
        assert await ensure_task_streams(store) == []
        tasks = (await api(nc, "STREAM.INFO.CHORIA_AJ_TASKS"))["config"]
        queue = (await api(nc, "STREAM.INFO.CHORIA_AJ_Q_DEFAULT"))["config"]
        workers = (await api(nc, "CONSUMER.INFO.CHORIA_AJ_Q_DEFAULT.WORKERS"))["config"]
    # Contract §1, row by row.
    unlimited = {"max_msgs": -1, "max_bytes": -1, "max_msg_size": -1, "max_consumers": -1}
    assert tasks == tasks | unlimited | {
        "subjects": ["CHORIA_AJ.T.*"], "description": "Choria Async Jobs Tasks", "retention": "limits",
        "discard": "old", "storage": "file", "max_msgs_per_subject": 1, "max_age": 0, "num_replicas": 1,
        "duplicate_window": 120 * NANOS_PER_SECOND,
    }  # fmt: skip
    assert queue == queue | {
        "subjects": ["CHORIA_AJ.Q.DEFAULT.>"], "description": "Choria Async Jobs Work Queue",
        "retention": "workqueue", "discard": "new", "storage": "file", "max_msgs_per_subject": 1, "max_age": 0,
        "max_msgs": -1, "num_replicas": 1, "duplicate_window": 120 * NANOS_PER_SECOND,
    }  # fmt: skip
    # queue.go newDefaultQueue: 1m run time, 100 tries, 100 concurrent.
    assert workers == workers | {
        "durable_name": "WORKERS", "deliver_policy": "all", "ack_policy": "explicit", "replay_policy": "instant",
        "ack_wait": 60 * NANOS_PER_SECOND, "max_ack_pending": 100, "max_deliver": 100,
    }  # fmt: skip
    assert not workers.get("filter_subject") and not workers.get("deliver_subject")  # pull, no filter
    assert DEFAULT_QUEUE.max_tries == 100


async def test_existing_streams_are_never_altered(nats_server):
    async with connected(nats_server.url) as (store, nc):
        await nc.jetstream().add_stream(name="CHORIA_AJ_TASKS", subjects=["CHORIA_AJ.T.*"], max_age=3600)
        assert await ensure_task_streams(store, memory=True) == ["CHORIA_AJ_Q_DEFAULT"]
        tasks = (await api(nc, "STREAM.INFO.CHORIA_AJ_TASKS"))["config"]
    assert tasks["max_age"] == 3600 * NANOS_PER_SECOND and tasks["storage"] == "file"
    assert not tasks.get("description")


async def test_queue_add_defaults(nats_server):
    async with connected(nats_server.url) as (store, nc):
        assert await ensure_queue(store, QueueSpec("EMAIL"))
        assert not await ensure_queue(store, QueueSpec("EMAIL", max_tries=3))  # loaded, not updated
        workers = (await api(nc, "CONSUMER.INFO.CHORIA_AJ_Q_EMAIL.WORKERS"))["config"]
    assert workers["ack_wait"] == 3600 * NANOS_PER_SECOND  # `ajc queue add`: run-time 1h,
    assert (workers["max_ack_pending"], workers["max_deliver"]) == (100, -1)  # concurrent 100, tries -1


# -- one fire --------------------------------------------------------------------------------


async def test_fired_task_record_work_item_and_event_are_gos(nats_server, async_wait_until):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        await ensure_queue(store, QueueSpec("EMAIL"))
        seen = await events(nc)
        task = fire()
        [outcome] = await enqueue_many(store, [task])
        assert outcome.status == "enqueued", outcome
        assert outcome.task_id == task.id and outcome.task_seq == 1
        assert outcome.stored_ns is not None and outcome.error is None

        stored = await last_msg(nc, "CHORIA_AJ_TASKS", f"CHORIA_AJ.T.{task.id}")
        item = await last_msg(nc, "CHORIA_AJ_Q_EMAIL", f"CHORIA_AJ.Q.EMAIL.{task.id}")
        await async_wait_until(lambda: len(seen) >= 1, what="the task_state event")

    # The record, field by field with contract §4.2, then byte for byte.
    record = json.loads(stored.data)
    assert list(record) == GO_TASK_KEYS
    assert record["id"] == task.id and parse_ksuid(task.id)[0] == int(SLOT.timestamp())
    assert (record["type"], record["queue"], record["state"], record["tries"]) == ("email:monthly", "EMAIL", "new", 0)
    assert record["payload"] == "IkludGNJbUZjSWpveGZTST0i"  # the double-encoded CLI payload
    assert record["deadline"] == "2026-08-01T12:00:00Z"  # slot + 12h
    assert record["max_tries"] == 10
    assert record["created"] == format_rfc3339nano(task.created)
    assert stored.data == encode_task(task)

    # The work item and its de-duplication header.
    assert item.data == f'{{"kind":0,"job":"{task.id}"}}'.encode()
    assert item.headers["Nats-Msg-Id"] == task.id

    # The state event (§4.4 step 2).
    [event_msg] = seen
    assert event_msg.subject == f"CHORIA_AJ.E.task_state.{task.id}"
    event = json.loads(event_msg.data)
    assert list(event) == ["event_id", "type", "timestamp", "task_id", "state", "tries", "queue", "task_type",
                           "task_age"]  # fmt: skip
    assert event["type"] == "io.choria.asyncjobs.v1.task_state"
    assert (event["task_id"], event["state"], event["tries"]) == (task.id, "new", 0)
    assert (event["queue"], event["task_type"]) == ("EMAIL", "email:monthly")
    seconds, _ = parse_ksuid(event["event_id"])
    assert event["timestamp"] == format_rfc3339nano(GoTime(seconds * NANOS_PER_SECOND))
    assert 0 < event["task_age"] < 10 * NANOS_PER_SECOND


async def test_second_attempt_at_a_slot_is_a_counted_duplicate(nats_server):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        await ensure_queue(store, QueueSpec("EMAIL"))
        [first] = await enqueue_many(store, [fire()])
        # A new leader, a restart or a retry builds the same ID for the same slot.
        again = await enqueue_many(store, [fire(), fire(schedule("OTHER"))])
        js = nc.jetstream()
        tasks = await js.stream_info("CHORIA_AJ_TASKS")
        queue = await js.stream_info("CHORIA_AJ_Q_EMAIL")
    assert first.status == "enqueued"
    assert [o.status for o in again] == ["duplicate", "enqueued"]
    assert again[0].task_id == first.task_id and not again[0].repaired and again[0].error is None
    assert tasks.state.messages == 2 and queue.state.messages == 2


async def test_the_same_slot_twice_in_one_batch_is_one_task(nats_server):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        await ensure_queue(store, QueueSpec("EMAIL"))
        task = fire()
        outcomes = await enqueue_many(store, [task, task, fire(schedule("B")), task])
        queue = await nc.jetstream().stream_info("CHORIA_AJ_Q_EMAIL")
    assert [o.status for o in outcomes] == ["enqueued", "duplicate", "enqueued", "duplicate"]
    assert queue.state.messages == 2


async def test_crash_between_store_and_work_item_is_repaired_once(nats_server):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        await ensure_queue(store, QueueSpec("EMAIL"))
        task = fire()
        # The earlier attempt stored the record and died before the work item.
        await nc.jetstream().publish(f"CHORIA_AJ.T.{task.id}", encode_task(task))
        [outcome] = await enqueue_many(store, [task])
        [again] = await enqueue_many(store, [task])
        item = await last_msg(nc, "CHORIA_AJ_Q_EMAIL", f"CHORIA_AJ.Q.EMAIL.{task.id}")
        queue = await nc.jetstream().stream_info("CHORIA_AJ_Q_EMAIL")
    assert (outcome.status, outcome.repaired) == ("duplicate", True)
    assert (again.status, again.repaired) == ("duplicate", False)  # the queue de-duplicated it
    assert item.data == f'{{"kind":0,"job":"{task.id}"}}'.encode()
    assert queue.state.messages == 1


async def test_repair_into_a_missing_queue_ends_in_queue_error(nats_server):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        task = fire(schedule(queue="MISSING"))
        ack = await nc.jetstream().publish(f"CHORIA_AJ.T.{task.id}", encode_task(task))
        [outcome] = await enqueue_many(store, [task])
        stored = await last_msg(nc, "CHORIA_AJ_TASKS", f"CHORIA_AJ.T.{task.id}")
    assert (outcome.status, outcome.repaired, outcome.error) == ("queue_error", True, NO_RESPONDERS)
    assert outcome.task_seq == ack.seq and stored.seq == ack.seq + 1
    assert json.loads(stored.data)["state"] == "queue_error"


async def test_a_task_that_already_ran_is_not_repaired(nats_server):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        await ensure_queue(store, QueueSpec("EMAIL"))
        task = fire()
        done = dataclasses.replace(task, state="complete", tries=1)
        await nc.jetstream().publish(f"CHORIA_AJ.T.{task.id}", encode_task(done))
        [outcome] = await enqueue_many(store, [task])
        queue = await nc.jetstream().stream_info("CHORIA_AJ_Q_EMAIL")
    assert (outcome.status, outcome.repaired) == ("duplicate", False)
    assert queue.state.messages == 0


async def test_missing_queue_ends_in_queue_error_as_go(nats_server, async_wait_until):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        seen = await events(nc, "CHORIA_AJ.E.task_state.>")
        task = fire(schedule(queue="MISSING"))
        started = time.monotonic()
        [outcome] = await enqueue_many(store, [task], timeout=10)
        elapsed = time.monotonic() - started
        stored = await last_msg(nc, "CHORIA_AJ_TASKS", f"CHORIA_AJ.T.{task.id}")
        await async_wait_until(lambda: len(seen) >= 2, what="both task_state events")
    assert outcome.status == "queue_error"
    assert outcome.error == NO_RESPONDERS and outcome.state_error is None
    assert elapsed < 5  # no stream, so no resending until the timeout
    assert stored.seq == 2  # re-published over the step-1 record
    assert json.loads(stored.data)["state"] == "queue_error"
    assert stored.data == encode_task(dataclasses.replace(task, state="queue_error", last_err=NO_RESPONDERS))
    first, second = (json.loads(m.data) for m in seen)
    assert (first["state"], "last_error" in first) == ("new", False)
    assert (second["state"], second["last_error"], second["queue"]) == ("queue_error", NO_RESPONDERS, "MISSING")


async def test_a_queue_stream_without_a_responder_yet_is_retried(nats_server, async_wait_until):
    # The queue stream exists but nothing listens on the work item's subject yet (as on a
    # server that has not yet learned of a new R3 stream): the item is sent again, and lands
    # once the stream takes the subject. Simulated by a stream on another subject at first.
    def messages_in() -> int:
        with urllib.request.urlopen(nats_server.monitor_url + "/varz", timeout=2) as resp:
            return int(json.load(resp)["in_msgs"])

    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        config = queue_stream_config(QueueSpec("LATE"))
        await api(nc, "STREAM.CREATE.CHORIA_AJ_Q_LATE", {**config, "subjects": ["elsewhere.>"]})
        before = messages_in()
        enqueue = asyncio.create_task(enqueue_many(store, [fire(schedule(queue="LATE"))], timeout=10))
        # Task store, event, work item, stream check and a second work item at least.
        await async_wait_until(lambda: messages_in() >= before + 5, what="a resent work item")
        assert not enqueue.done()
        await api(nc, "STREAM.UPDATE.CHORIA_AJ_Q_LATE", config)
        [outcome] = await enqueue
        queue = await nc.jetstream().stream_info("CHORIA_AJ_Q_LATE")
    assert (outcome.status, outcome.error) == ("enqueued", None)
    assert queue.state.messages == 1


async def test_duplicate_work_item_ends_in_queue_error(nats_server):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        await ensure_queue(store, QueueSpec("EMAIL"))
        task = fire()
        await nc.jetstream().publish(f"CHORIA_AJ.Q.EMAIL.{task.id}", b"x", headers={"Nats-Msg-Id": task.id})
        [outcome] = await enqueue_many(store, [task])
        stored = await last_msg(nc, "CHORIA_AJ_TASKS", f"CHORIA_AJ.T.{task.id}")
    assert (outcome.status, outcome.error) == ("queue_error", "duplicate work queue item")
    assert json.loads(stored.data)["last_err"] == "duplicate work queue item"


async def test_jetstream_error_on_the_work_item_is_stored_as_jsm_formats_it(nats_server):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        await ensure_queue(store, QueueSpec("FULL", max_entries=1))  # discard new: a full queue refuses
        outcomes = await enqueue_many(store, [fire(schedule("a", queue="FULL")), fire(schedule("b", queue="FULL"))])
        stored = await last_msg(nc, "CHORIA_AJ_TASKS", f"CHORIA_AJ.T.{outcomes[1].task_id}")
    assert [o.status for o in outcomes] == ["enqueued", "queue_error"]
    assert outcomes[1].error == "maximum messages exceeded (10077)"  # jsm.go ApiError.Error()
    assert json.loads(stored.data)["last_err"] == "maximum messages exceeded (10077)"


async def test_unanswered_work_item_is_a_queue_error_after_the_timeout(nats_server):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        await nc.subscribe("CHORIA_AJ.Q.HUNG.>")  # a responder that never answers (Go would wait forever)
        await nc.flush()
        [outcome] = await enqueue_many(store, [fire(schedule(queue="HUNG"))], timeout=0.3)
        stored = await last_msg(nc, "CHORIA_AJ_TASKS", f"CHORIA_AJ.T.{outcome.task_id}")
    assert (outcome.status, outcome.error, outcome.state_error) == ("queue_error", "nats: timeout", None)
    assert json.loads(stored.data)["state"] == "queue_error"


async def test_missing_tasks_stream_is_an_error_and_nothing_else(nats_server):
    async with connected(nats_server.url) as (store, nc):
        await ensure_queue(store, QueueSpec("EMAIL"))
        [outcome] = await enqueue_many(store, [fire()], timeout=0.5)
        queue = await nc.jetstream().stream_info("CHORIA_AJ_Q_EMAIL")
    assert outcome.status == "error" and NO_RESPONDERS in (outcome.error or "")
    assert queue.state.messages == 0


async def test_a_tasks_stream_without_a_responder_yet_is_retried(nats_server, async_wait_until):
    # As for a replicated stream that was just created or whose leader is moving: the first
    # stores are answered "no responders"; they are sent again until the stream answers.
    def messages_in() -> int:
        with urllib.request.urlopen(nats_server.monitor_url + "/varz", timeout=2) as resp:
            return int(json.load(resp)["in_msgs"])

    async with connected(nats_server.url) as (store, nc):
        await ensure_queue(store, QueueSpec("EMAIL"))
        before = messages_in()
        enqueue = asyncio.create_task(enqueue_many(store, [fire()], timeout=10))
        # Two publishes with no stream behind them: the first store and at least one retry.
        await async_wait_until(lambda: messages_in() >= before + 2, what="a retried task store")
        assert not enqueue.done()
        await ensure_task_streams(store)
        [outcome] = await enqueue
        queue = await nc.jetstream().stream_info("CHORIA_AJ_Q_EMAIL")
    assert (outcome.status, outcome.error) == ("enqueued", None)
    assert queue.state.messages == 1


async def test_unanswered_requests_time_out(nats_server):
    count, timeout = 10, 0.5
    async with connected(nats_server.url) as (store, _nc):
        await ensure_task_streams(store)
        nats_server.pause()  # a hung server: sockets open, nothing answers
        try:
            started = time.monotonic()
            outcomes = await enqueue_many(store, [fire(schedule(f"s{i}")) for i in range(count)], timeout=timeout)
            elapsed = time.monotonic() - started
        finally:
            nats_server.resume()
    assert {o.status for o in outcomes} == {"error"}
    assert all(f"timed out after {timeout}s storing the task" in (o.error or "") for o in outcomes)
    # The requests wait together, not one after another: waiting in turn takes count x timeout.
    assert timeout <= elapsed < count * timeout


AUTH_CONFIG = """
authorization {
  users = [
    {user: admin, password: adminpw}
    {user: sched, password: schedpw, permissions: {publish: {allow: ["$JS.API.>"]}, subscribe: {allow: ["_INBOX.>"]}}}
  ]
}
"""


async def test_missing_publish_permission_is_named_not_just_a_timeout(nats_server_factory):
    server = nats_server_factory(extra_config=AUTH_CONFIG)
    admin = ConnectOptions(servers=(server.url,), user="admin", password="adminpw", timeout_s=2.0)
    async with Store.open(admin) as store:
        await ensure_task_streams(store)
    sched = ConnectOptions(servers=(server.url,), user="sched", password="schedpw", timeout_s=0.5)
    async with Store.open(sched) as store:
        task = fire()
        [outcome] = await enqueue_many(store, [task])
    assert outcome.status == "error"
    assert "storing the task: permission denied" in (outcome.error or "")
    assert f"choria_aj.t.{task.id}".lower() in (outcome.error or "").lower()  # nats-py lower-cases -ERR text


async def test_closed_store_raises_before_sending(nats_server):
    async with connected(nats_server.url) as (store, _nc):
        await store.close()
        with pytest.raises(StoreError, match="closed"):
            await enqueue_many(store, [fire()])


async def test_leader_elected_event(nats_server, async_wait_until):
    async with connected(nats_server.url) as (store, nc):
        seen = await events(nc)
        await publish_leader_elected(store, "sched-a")
        await async_wait_until(lambda: seen, what="the leader_elected event")
    [msg] = seen
    assert msg.subject == "CHORIA_AJ.E.leader_election.task_scheduler"
    event = json.loads(msg.data)
    assert list(event) == ["event_id", "type", "timestamp", "name", "component"]
    assert (event["type"], event["name"], event["component"]) == (
        "io.choria.asyncjobs.v1.leader_elected", "sched-a", "task_scheduler",
    )  # fmt: skip


# -- many ------------------------------------------------------------------------------------


async def test_ten_thousand_fires_are_enqueued_pipelined(nats_server):
    n = 10_000
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        await ensure_queue(store, QueueSpec("EMAIL"))
        tasks = [fire(schedule(f"s{i:05d}")) for i in range(n)]
        started = time.perf_counter()
        outcomes = await enqueue_many(store, tasks)
        elapsed = time.perf_counter() - started
        js = nc.jetstream()
        stored = (await js.stream_info("CHORIA_AJ_TASKS")).state.messages
        queued = (await js.stream_info("CHORIA_AJ_Q_EMAIL")).state.messages
    print(f"\nenqueued {n} fires in {elapsed:.2f}s: {n / elapsed:,.0f} tasks/s ({3 * n / elapsed:,.0f} publishes/s)")
    assert [o.status for o in outcomes] == ["enqueued"] * n
    assert [o.task_id for o in outcomes] == [t.id for t in tasks]
    assert stored == n and queued == n
    assert elapsed < 30  # a round trip at a time would be far slower than pipelining


async def test_replicated_streams_on_a_cluster(nats_cluster):
    url = nats_cluster.servers[0].url
    async with connected(url) as (store, nc):
        assert await ensure_task_streams(store, replicas=3) == ["CHORIA_AJ_TASKS", "CHORIA_AJ_Q_DEFAULT"]
        tasks = [fire(schedule(f"s{i}", queue="DEFAULT")) for i in range(200)]
        outcomes = await enqueue_many(store, tasks)
        again = await enqueue_many(store, tasks)
        config = (await api(nc, "STREAM.INFO.CHORIA_AJ_TASKS"))["config"]
    assert config["num_replicas"] == 3
    assert {o.status for o in outcomes} == {"enqueued"}, {o.error for o in outcomes}
    assert {o.status for o in again} == {"duplicate"}, {o.error for o in again}

"""Stranded tasks requeued (issue 9 item 6; ``store/asyncjobs/requeue.py``,
``scheduler/requeue.py``) against a real nats-server.

The fault, without a cluster: a queue stream that exists but does not yet take the work
item's subject answers "no responders" to the item while STREAM.INFO finds the stream, which
is what a publish meets while an R3 queue stream's leader moves. The task then ends in
``queue_error`` as in Go; once the stream takes the subject, the scheduler resends the item
(same ``Nats-Msg-Id``) and moves the record back to ``new``. The cluster version of this is
``tests/faults/test_stranded_tasks.py``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from ajc_gitops.codec import encode_task
from ajc_gitops.store import QueueSpec, enqueue_many, ensure_task_streams, queue_stream_config, requeue_task
from tests.integration.test_enqueue import api, connected, events, fire, last_msg, schedule
from tests.integration.test_scheduler import count, leading, scheduler
from tests.scheduler_support import prepare, put_schedule, read_tasks, record

NS = 1_000_000_000


async def _late_queue(nc: Any, name: str) -> dict[str, Any]:
    """The queue stream, on another subject for now; returns its real config."""
    config = queue_stream_config(QueueSpec(name))
    await api(nc, f"STREAM.CREATE.CHORIA_AJ_Q_{name}", {**config, "subjects": ["elsewhere.>"]})
    return config


async def test_requeue_restores_the_first_record_and_sends_the_item_once(nats_server, async_wait_until):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        config = await _late_queue(nc, "LATE")
        task = fire(schedule(queue="LATE"))
        [outcome] = await enqueue_many(store, [task], timeout=0.3)
        assert (outcome.status, outcome.requeue) == ("queue_error", True)
        # Still refused: the attempt fails, the record is left as it is.
        assert (await requeue_task(store, task, clock_ns=time.time_ns())).status == "failed"
        await api(nc, "STREAM.UPDATE.CHORIA_AJ_Q_LATE", config)
        seen = await events(nc)
        first = await requeue_task(store, task, clock_ns=time.time_ns())
        again = await requeue_task(store, task, clock_ns=time.time_ns())
        stored = await last_msg(nc, "CHORIA_AJ_TASKS", f"CHORIA_AJ.T.{task.id}")
        info = await api(nc, "STREAM.INFO.CHORIA_AJ_Q_LATE")
        await async_wait_until(lambda: seen, what="the task_state event")
    assert (first.status, first.state) == ("requeued", "queue_error")
    assert (again.status, again.state) == ("requeued", "new")  # the item was a duplicate: still one
    assert stored.data == encode_task(task)  # exactly the step-1 record: state new, no last_err
    assert info["state"]["messages"] == 1
    assert json.loads(seen[0].data)["state"] == "new"


async def test_a_task_a_worker_moved_on_is_left_alone(nats_server):
    async with connected(nats_server.url) as (store, nc):
        await ensure_task_streams(store)
        config = await _late_queue(nc, "LATE")
        task = fire(schedule(queue="LATE"))
        [outcome] = await enqueue_many(store, [task], timeout=0.3)
        assert outcome.status == "queue_error"
        await api(nc, "STREAM.UPDATE.CHORIA_AJ_Q_LATE", config)
        active = encode_task(dataclasses.replace(task, state="active", tries=1))
        await nc.jetstream().publish(f"CHORIA_AJ.T.{task.id}", active)
        result = await requeue_task(store, task, clock_ns=time.time_ns())
        stored = await last_msg(nc, "CHORIA_AJ_TASKS", f"CHORIA_AJ.T.{task.id}")
        info = await api(nc, "STREAM.INFO.CHORIA_AJ_Q_LATE")
    assert (result.status, result.state) == ("moved_on", "active")
    assert stored.data == active
    assert info["state"]["messages"] == 0


async def test_a_missing_queue_is_not_requeued(nats_server):
    async with connected(nats_server.url) as (store, _):
        await ensure_task_streams(store)
        [outcome] = await enqueue_many(store, [fire(schedule(queue="MISSING"))], timeout=0.3)
    assert (outcome.status, outcome.requeue) == ("queue_error", False)  # Go's queue_error stands


async def test_scheduler_requeues_a_stranded_task_when_the_queue_answers_again(nats_server, async_wait_until):
    url = nats_server.url
    await prepare(url)
    async with connected(url) as (_, nc):
        config = await _late_queue(nc, "LATE")
    await put_schedule(url, "tick", record("tick", "@every 1s", created_ns=time.time_ns(), queue="LATE"))

    async def states() -> list[str]:
        return [t["state"] for t in await read_tasks(url) if t["type"] == "t:tick"]

    async with scheduler(url) as service:
        await leading(service, async_wait_until)
        await async_wait_until(lambda: _has(states, "queue_error"), timeout=20, what="a stranded task")
        async with connected(url) as (_, nc):
            await api(nc, "STREAM.UPDATE.CHORIA_AJ_Q_LATE", config)
        await async_wait_until(lambda: _all_new(states), timeout=20, what="every task back to new")
        requeued = count(service, "ajc_gitops_scheduler_requeued_total", queue="LATE")
        abandoned = count(service, "ajc_gitops_scheduler_requeue_abandoned_total", queue="LATE")
        pending = count(service, "ajc_gitops_scheduler_requeue_pending")
        async with connected(url) as (_, nc):
            info = await api(nc, "STREAM.INFO.CHORIA_AJ_Q_LATE", {"subjects_filter": ">"})
    tasks = [t for t in await read_tasks(url) if t["type"] == "t:tick"]
    queued = {s.rsplit(".", 1)[-1] for s in info["state"]["subjects"]}
    assert requeued >= 1 and abandoned == 0 and pending == 0
    assert {t["id"] for t in tasks} <= queued  # every task has its work item


async def _has(states: Any, state: str) -> bool:
    return state in await states()


async def _all_new(states: Any) -> bool:
    found = await states()
    return bool(found) and all(s == "new" for s in found)

"""asyncjobs streams, queues and lifecycle events over NATS, as Go creates them (contract §1, §5).

Part of the asyncjobs adapters. Streams are load-or-create: an
existing stream or consumer is never altered, whoever made it. JetStream API calls go through
``Store.api_request``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats.js.errors

from ajc_gitops.codec import encode_leader_elected_event
from ajc_gitops.errors import StoreError
from ajc_gitops.gowire.ksuid import new_ksuid
from ajc_gitops.model import NANOS_PER_SECOND
from ajc_gitops.names import (
    DEFAULT_QUEUE_NAME,
    LEADER_EVENT_SUBJECT,
    QUEUE_STREAM,
    QUEUE_STREAM_PREFIX,
    QUEUE_SUBJECT,
    QUEUE_SUBJECTS,
    TASK_SUBJECT,
    TASKS_STREAM,
)
from ajc_gitops.store.kv.client import Store
from ajc_gitops.store.kv.errors import ERR_CONSUMER_NOT_FOUND, ERR_STREAM_NAME_IN_USE

__all__ = [
    "DEFAULT_QUEUE",
    "QueueSpec",
    "ensure_queue",
    "ensure_task_streams",
    "publish_leader_elected",
    "queue_names",
    "queue_stream_config",
    "tasks_stream_config",
    "workers_consumer_config",
]



# -- streams and queues (contract §1) ------------------------------------------------------


# asyncjobs.go defaults.
_DEFAULT_JOB_RUN_TIME_NS = 3600 * NANOS_PER_SECOND
_DEFAULT_QUEUE_MAX_CONCURRENT = 100


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """Go's ``asyncjobs.Queue`` settings; the defaults are ``ajc queue add``'s (§1)."""

    name: str
    max_age_ns: int = 0
    max_entries: int = 0
    discard_old: bool = False
    max_tries: int = -1
    max_run_time_ns: int = _DEFAULT_JOB_RUN_TIME_NS
    max_concurrent: int = _DEFAULT_QUEUE_MAX_CONCURRENT


# queue.go newDefaultQueue: the implicit queue every Go client load-or-creates.
DEFAULT_QUEUE = QueueSpec(DEFAULT_QUEUE_NAME, max_tries=100, max_run_time_ns=60 * NANOS_PER_SECOND)


def tasks_stream_config(*, replicas: int = 1, memory: bool = False, retention_ns: int = 0) -> dict[str, Any]:
    """``PrepareTasks``: jsm.go's DefaultStream (limits, discard old, -1 limits) plus options."""
    return {
        "name": TASKS_STREAM,
        "description": "Choria Async Jobs Tasks",
        "subjects": [TASK_SUBJECT.format("*")],
        "retention": "limits",
        "max_consumers": -1,
        "max_msgs": -1,
        "max_bytes": -1,
        "max_age": retention_ns,
        "max_msgs_per_subject": 1,
        "max_msg_size": -1,
        "discard": "old",
        "storage": "memory" if memory else "file",
        "num_replicas": max(replicas, 1),
    }


def queue_stream_config(queue: QueueSpec, *, replicas: int = 1, memory: bool = False) -> dict[str, Any]:
    """``createQueue``'s stream: work-queue retention, one message per subject."""
    return {
        "name": QUEUE_STREAM.format(queue.name),
        "description": "Choria Async Jobs Work Queue",
        "subjects": [QUEUE_SUBJECT.format(queue.name, ">")],
        "retention": "workqueue",
        "max_consumers": -1,
        "max_msgs": queue.max_entries if queue.max_entries > 0 else -1,
        "max_bytes": -1,
        "max_age": max(queue.max_age_ns, 0),
        "max_msgs_per_subject": 1,
        "max_msg_size": -1,
        "discard": "old" if queue.discard_old else "new",
        "storage": "memory" if memory else "file",
        "num_replicas": max(replicas, 1),
    }


def workers_consumer_config(queue: QueueSpec) -> dict[str, Any]:
    """``createQueue``'s ``WORKERS`` consumer (jsm.go DefaultConsumer plus options); zero
    settings become Go's defaults: tries -1, run time 1h (DefaultJobRunTime), 100 pending."""
    return {
        "durable_name": "WORKERS",
        "deliver_policy": "all",
        "ack_policy": "explicit",
        "ack_wait": queue.max_run_time_ns or _DEFAULT_JOB_RUN_TIME_NS,
        "max_deliver": queue.max_tries or -1,
        "replay_policy": "instant",
        "max_ack_pending": queue.max_concurrent or _DEFAULT_QUEUE_MAX_CONCURRENT,
    }


async def _create_stream(store: Store, config: dict[str, Any]) -> bool:
    """Create unless it exists; never alters an existing stream. True if we created it."""
    name = config["name"]
    if await store.stream_exists(name):
        return False
    try:
        await store.api_request(f"STREAM.CREATE.{name}", config, what=f"create stream {name}")
    except StoreError as exc:
        cause = exc.__cause__
        if isinstance(cause, nats.js.errors.APIError) and cause.err_code == ERR_STREAM_NAME_IN_USE:
            return False  # someone else created it in between: theirs stays
        raise
    return True


async def _ensure_workers(store: Store, queue: QueueSpec) -> None:
    # Go's LoadOrNewConsumer: create WORKERS only when missing, never update it.
    stream = QUEUE_STREAM.format(queue.name)
    try:
        await store.api_request(f"CONSUMER.INFO.{stream}.WORKERS", None, what=f"consumer {stream} WORKERS")
        return
    except StoreError as exc:
        cause = exc.__cause__
        if not (isinstance(cause, nats.js.errors.APIError) and cause.err_code == ERR_CONSUMER_NOT_FOUND):
            raise
    body = {"stream_name": stream, "config": workers_consumer_config(queue)}
    await store.api_request(f"CONSUMER.DURABLE.CREATE.{stream}.WORKERS", body, what=f"create {stream} WORKERS")


async def ensure_queue(store: Store, queue: QueueSpec, *, replicas: int = 1, memory: bool = False) -> bool:
    """Load-or-create a queue stream and its WORKERS consumer as Go's ``PrepareQueue`` does.
    For tests and ``dev``: the scheduler itself never creates a schedule's queue (§1)."""
    created = await _create_stream(store, queue_stream_config(queue, replicas=replicas, memory=memory))
    await _ensure_workers(store, queue)
    return created


async def ensure_task_streams(
    store: Store, *, replicas: int = 1, memory: bool = False, retention_ns: int = 0
) -> list[str]:
    """What every Go client does at start (§1): load-or-create ``CHORIA_AJ_TASKS`` and the
    ``DEFAULT`` queue with its consumer. Returns the streams we created."""
    created = []
    if await _create_stream(store, tasks_stream_config(replicas=replicas, memory=memory, retention_ns=retention_ns)):
        created.append(TASKS_STREAM)
    if await ensure_queue(store, DEFAULT_QUEUE, replicas=replicas, memory=memory):
        created.append(QUEUE_STREAM.format(DEFAULT_QUEUE.name))
    return created


async def queue_names(store: Store) -> frozenset[str]:
    """The queues that exist, found as Go's ``QueueNames`` finds them: the names of the streams
    whose subjects overlap ``CHORIA_AJ.Q.>``, less the ``CHORIA_AJ_Q_`` prefix. One paged
    ``STREAM.NAMES`` request, whatever the number of queues."""
    names: set[str] = set()
    while True:
        body = {"offset": len(names), "subject": QUEUE_SUBJECTS}
        reply = await store.api_request("STREAM.NAMES", body, what="the queue streams")
        page = [n for n in reply.get("streams") or () if isinstance(n, str)]
        before = len(names)
        names.update(page)
        if not page or len(names) == before or len(names) >= int(reply.get("total") or 0):
            break
    return frozenset(n[len(QUEUE_STREAM_PREFIX) :] for n in names if n.startswith(QUEUE_STREAM_PREFIX))


async def publish_leader_elected(
    store: Store, name: str, *, component: str = "task_scheduler", clock: Callable[[], int] = time.time_ns
) -> None:
    """Core publish of the leader_elected event (§5 OnWon)."""
    body = encode_leader_elected_event(name, component, event_id=new_ksuid(clock() // NANOS_PER_SECOND))
    subject = LEADER_EVENT_SUBJECT.format(component)
    nc, guard = store.client, store.guard("publish leader_elected event", subject)
    with guard:
        await nc.publish(subject, body)
        # A core publish only sits in the client's buffer; flush so "published" means sent.
        await nc.flush(timeout=max(1, int(store.timeout)))

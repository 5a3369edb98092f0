"""NATS JetStream for ajc-gitops: the only package that imports ``nats``.

Two layers: ``kv/`` is the core (a connection, the asyncjobs buckets, complete reads and
revision-guarded writes, as ``Store``); ``asyncjobs/`` adapts it to what asyncjobs does over
NATS (streams and queues, firing tasks, events, the election key, a KV watch, member markers)
through ``Store``'s public members. Every nats-py call runs inside ``map_nats_errors()``, which
turns nats-py exceptions into ``ConnectError`` / ``ConflictError`` / ``StoreError``; nothing
nats-typed leaves this package (STYLE.md "Translate at the boundary"): values come back as the
plain types of ``ajc_gitops.state``. JetStream API calls and KV writes are request/reply with
JSON we build and parse ourselves, so the configuration is exactly what nats.go sends
(contract §1) and the JetStream prefix/domain options apply everywhere.

Outside this package, import from here only.
"""

from __future__ import annotations

from ajc_gitops.store.asyncjobs.election import NatsElectionKV
from ajc_gitops.store.asyncjobs.events import task_events
from ajc_gitops.store.asyncjobs.group import read_holder, read_members, write_member
from ajc_gitops.store.asyncjobs.lookup import get_task_records, iter_task_records, scan_task_records
from ajc_gitops.store.asyncjobs.requeue import queue_duplicate_window, requeue_task
from ajc_gitops.store.asyncjobs.streams import (
    DEFAULT_QUEUE,
    QueueSpec,
    ensure_queue,
    ensure_task_streams,
    publish_leader_elected,
    queue_names,
    queue_stream_config,
    tasks_stream_config,
    workers_consumer_config,
)
from ajc_gitops.store.asyncjobs.sweep import iter_task_records_since
from ajc_gitops.store.asyncjobs.tasks import DUPLICATE_ITEM, NO_RESPONDERS, TIMEOUT, enqueue_many
from ajc_gitops.store.asyncjobs.watch import raise_if_cancelling, watch_keys
from ajc_gitops.store.kv import Store, map_nats_errors

__all__ = [
    "DEFAULT_QUEUE",
    "DUPLICATE_ITEM",
    "NO_RESPONDERS",
    "TIMEOUT",
    "NatsElectionKV",
    "QueueSpec",
    "Store",
    "enqueue_many",
    "ensure_queue",
    "ensure_task_streams",
    "get_task_records",
    "iter_task_records",
    "iter_task_records_since",
    "map_nats_errors",
    "publish_leader_elected",
    "queue_duplicate_window",
    "queue_names",
    "queue_stream_config",
    "raise_if_cancelling",
    "read_holder",
    "read_members",
    "requeue_task",
    "scan_task_records",
    "task_events",
    "tasks_stream_config",
    "watch_keys",
    "workers_consumer_config",
    "write_member",
]

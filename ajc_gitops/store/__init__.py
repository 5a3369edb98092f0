"""The asyncjobs KV buckets over NATS JetStream: the only package that imports ``nats``.

Every nats-py call runs inside ``map_nats_errors()``, which turns nats-py exceptions into
``ConnectError`` / ``ConflictError`` / ``StoreError``; nothing nats-typed leaves this package
(STYLE.md "Translate at the boundary"). JetStream API calls and KV writes are plain
request/reply with JSON we build and parse ourselves, so the bucket configuration is exactly
what nats.go sends (contract §1) and the JetStream prefix/domain options apply everywhere.

Modules: ``model`` (entries, snapshots, write operations), ``errors`` (the error mapping),
``connection``, ``buckets``, ``reads`` and ``writes`` (the parts of ``Store``, combined in
``client``); the asyncjobs streams and queues (``streams``), firing tasks (``tasks``, with
``task_replies``), the election key and KV watch (``watch``), the scheduler group's member
markers (``group``) and task events (``events``) use a ``Store``'s connection. Only this
module's names are imported from ``ajc_gitops.store``; the others by their module.
"""

from __future__ import annotations

from ajc_gitops.names import CONFIG_BUCKET, ELECTIONS_BUCKET, SCHEDULE_PREFIX
from ajc_gitops.state import Entry, Outcome, Snapshot, StreamSummary, WriteOp
from ajc_gitops.store.client import Store
from ajc_gitops.store.errors import map_nats_errors

__all__ = [
    "CONFIG_BUCKET",
    "ELECTIONS_BUCKET",
    "SCHEDULE_PREFIX",
    "Entry",
    "Outcome",
    "Snapshot",
    "Store",
    "StreamSummary",
    "WriteOp",
    "map_nats_errors",
]

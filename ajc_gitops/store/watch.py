"""The scheduler's NATS side: the election key's KV operations and a live KV watch.

Part of the store package (it imports nats; nothing nats-typed leaves it). It uses a
``Store``'s connection through ``Store._raw_connection`` and ``Store.api_prefix``, with every
call under the store's error guard.

The watch is our own ordered push consumer instead of nats-py's ``KeyValue.watch()``: that
one can signal "initial values done" before the initial values arrived (nats.py #842, and
the stale per-message ``num_pending`` of nats.py PR #995) and can stall silently after a
reconnect (nats.py #510). Here a session ends, and a new one starts from the current state,
on any sequence gap, missed heartbeats, a reconnect, or a consumer error status.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NATSClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ajc_gitops.errors import AjcError, ConflictError, StoreError
from ajc_gitops.names import CONFIG_BUCKET, ELECTIONS_BUCKET, SCHEDULE_PREFIX
from ajc_gitops.store.client import Store
from ajc_gitops.store.errors import _decode_reply

__all__ = [
    "ELECTION_KEY",
    "InitialDone",
    "KvDelete",
    "KvPurge",
    "KvPut",
    "NatsElectionKV",
    "WatchEvent",
    "raise_if_cancelling",
    "watch_keys",
]

ELECTION_KEY = "task_scheduler"  # contract §5
_EXPECTED_SEQ = "Nats-Expected-Last-Subject-Sequence"
_KV_OPERATION = "KV-Operation"
_NS = 1_000_000_000
_log = logging.getLogger(__name__)


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that a nats-py call swallowed.

    nats-py awaits through ``asyncio.wait_for``, which on Python 3.11 drops a cancellation
    that races with completion (CPython gh-86296): the task is left "cancelling" but keeps
    running, and a TaskGroup waits for it forever. Long-running loops call this after such
    awaits; ``Task.cancelling()`` stays > 0 exactly while a cancel request is outstanding.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


# -- election -------------------------------------------------------------------------------


class NatsElectionKV:
    """``scheduler.election.ElectionKV`` over the elections bucket (contract §3 KV ops)."""

    def __init__(self, store: Store, *, bucket: str = ELECTIONS_BUCKET, key: str = ELECTION_KEY) -> None:
        self._store = store
        self._bucket = bucket
        self._key = key
        self._subject = f"$KV.{bucket}.{key}"

    async def bucket_ttl(self) -> float:
        """Go reads the TTL from the bucket status (stream max_age), never from config."""
        summary = await self._store.stream_info_summary(self._bucket)
        return float(summary.config.get("max_age", 0) or 0) / _NS

    async def _request(self, value: bytes, headers: dict[str, str], timeout: float, what: str) -> int:
        nc, guard = self._store._raw_connection(f"{what} {self._key}", self._subject)
        with guard:
            reply = _decode_reply(await nc.request(self._subject, value, timeout=timeout, headers=headers))
        seq = reply.get("seq")
        if not isinstance(seq, int):
            raise StoreError(f"{self._store.server}: {what} {self._key}: reply has no sequence")
        return seq

    async def create(self, value: bytes, *, timeout: float) -> int:
        """nats.go ``kv.Create``: expected sequence 0; if the key's last entry is a DEL/PURGE
        marker (a released or deleted key), retry expecting that marker's revision."""
        try:
            return await self._request(value, {_EXPECTED_SEQ: "0"}, timeout, "create")
        except ConflictError:
            tombstone = await self._tombstone_revision(timeout)
            if tombstone is None:
                raise
            return await self._request(value, {_EXPECTED_SEQ: str(tombstone)}, timeout, "create")

    async def update(self, value: bytes, *, revision: int, timeout: float) -> int:
        return await self._request(value, {_EXPECTED_SEQ: str(revision)}, timeout, "update")

    async def delete(self, *, revision: int, timeout: float) -> None:
        await self._request(b"", {_KV_OPERATION: "DEL", _EXPECTED_SEQ: str(revision)}, timeout, "delete")

    async def _tombstone_revision(self, timeout: float) -> int | None:
        """The revision of the key's last entry if that is a DEL/PURGE marker."""
        api = f"{self._store.api_prefix}.STREAM.MSG.GET.KV_{self._bucket}"
        nc, guard = self._store._raw_connection(f"read {self._key}", api)
        body = f'{{"last_by_subj":"{self._subject}"}}'.encode()
        try:
            with guard:
                reply = _decode_reply(await nc.request(api, body, timeout=timeout))
        except ConflictError:
            raise
        except StoreError:
            return None  # no message: the conflict was a live key that just expired
        message = reply.get("message") or {}
        headers = base64.b64decode(message.get("hdrs") or b"").decode(errors="replace")
        for line in headers.split("\r\n")[1:]:
            name, _, val = line.partition(":")
            if name.strip().lower() == _KV_OPERATION.lower() and val.strip() in ("DEL", "PURGE"):
                seq = message.get("seq")
                return seq if isinstance(seq, int) else None
        return None


# -- watch ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KvPut:
    key: str
    value: bytes
    revision: int


@dataclass(frozen=True, slots=True)
class KvDelete:
    key: str
    revision: int


@dataclass(frozen=True, slots=True)
class KvPurge:
    key: str
    revision: int


@dataclass(frozen=True, slots=True)
class InitialDone:
    """Every key's latest entry as of the session's start has been delivered. ``session``
    counts watch sessions: > 1 means the watch was re-created and events may have been
    missed in between (the caller should resync from a snapshot)."""

    session: int
    count: int


WatchEvent = KvPut | KvDelete | KvPurge | InitialDone


class _Restart(Exception):
    """End this watch session and start a new one."""


async def watch_keys(
    store: Store,
    *,
    bucket: str = CONFIG_BUCKET,
    pattern: str = f"{SCHEDULE_PREFIX}*",
    heartbeat_s: float = 5.0,
    retry_s: float = 1.0,
) -> AsyncGenerator[WatchEvent, None]:
    """Latest value per key, an ``InitialDone``, then live changes; forever.

    Go readers watch ``scheduled_tasks.*`` (contract §2.1), so deeper keys are not ours.
    Close it with ``contextlib.aclosing``.
    """
    session = 0
    while True:
        session += 1
        try:
            async for event in _session(store, bucket, pattern, session, heartbeat_s):
                yield event
        except _Restart as exc:
            _log.warning("watch %s %s: re-creating: %s", bucket, pattern, exc)
        except AjcError as exc:
            _log.warning("watch %s %s: %s; retrying in %gs", bucket, pattern, exc, retry_s)
            # A backoff, not a wait for an event: the server or the connection is away.
            await asyncio.sleep(retry_s)


def _consumer_config(inbox: str, subject: str, heartbeat_s: float) -> dict[str, Any]:
    # What nats.go's ordered consumer asks for (ADR-17), starting at the last value per key.
    return {
        "deliver_subject": inbox,
        "deliver_policy": "last_per_subject",
        "filter_subject": subject,
        "ack_policy": "none",
        "replay_policy": "instant",
        "max_deliver": 1,
        "flow_control": True,
        "idle_heartbeat": int(heartbeat_s * _NS),
        "mem_storage": True,
        "num_replicas": 1,
        "inactive_threshold": 30 * _NS,  # the server drops it soon after we vanish
    }


async def _session(
    store: Store, bucket: str, pattern: str, session: int, heartbeat_s: float
) -> AsyncIterator[WatchEvent]:
    stream = f"KV_{bucket}"
    subject = f"$KV.{bucket}.{pattern}"
    strip = len(f"$KV.{bucket}.")
    api = f"{store.api_prefix}.CONSUMER.CREATE.{stream}"
    nc, guard = store._raw_connection("watch", subject)
    reconnects = nc.stats["reconnects"]
    inbox = nc.new_inbox()
    sub: Subscription | None = None
    consumer: str | None = None
    # Our own queue and asyncio.timeout instead of ``sub.next_msg``: that uses wait_for,
    # which on 3.11 can swallow our task's cancellation (CPython gh-86296).
    queue: asyncio.Queue[Msg] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        queue.put_nowait(msg)  # flow control (answered as we consume) bounds this queue

    try:
        with guard:
            sub = await nc.subscribe(inbox, cb=on_msg)
            body = {"stream_name": stream, "config": _consumer_config(inbox, subject, heartbeat_s)}
            info = _decode_reply(await nc.request(api, json.dumps(body).encode(), timeout=5.0))
        consumer = str(info.get("name") or "")
        # The initial values are exactly the first ``boundary`` deliveries, unless some were
        # removed before delivery; then an idle heartbeat tells us nothing more is coming.
        boundary = int(info.get("num_pending") or 0)
        delivered = 0
        done = False
        if boundary == 0:
            done = True
            yield InitialDone(session, 0)
        last_activity = time.monotonic()
        while True:
            raise_if_cancelling()
            if nc.stats["reconnects"] != reconnects:
                raise _Restart("reconnected (the consumer may be gone: nats.py #510)")
            try:
                async with asyncio.timeout(min(1.0, heartbeat_s)):
                    msg = await queue.get()
            except TimeoutError:
                if time.monotonic() - last_activity > 3 * heartbeat_s:
                    raise _Restart(f"no message or heartbeat for {3 * heartbeat_s:g}s") from None
                if nc.is_closed:
                    raise StoreError(f"{store.server}: watch: connection closed") from None
                continue
            last_activity = time.monotonic()
            headers = msg.headers or {}
            status = headers.get("Status")
            if status == "100":
                await _control(nc, msg, headers, guard_store=store)
                last = headers.get("Nats-Last-Consumer")
                if last is not None and int(last) != delivered:
                    raise _Restart(f"heartbeat says {last} delivered, we got {delivered}")
                if not done and not msg.reply and not headers.get("Nats-Consumer-Stalled"):
                    # An idle heartbeat: nothing is pending for us, so the initial values are
                    # all here (entries counted at creation may have been removed since, or
                    # the last message's num_pending was stale, nats.py PR #995).
                    done = True
                    yield InitialDone(session, delivered)
                continue
            if status:
                raise _Restart(f"consumer status {status} {headers.get('Description', '')}".strip())
            meta = msg.metadata
            if meta.sequence.consumer != delivered + 1:
                raise _Restart(f"sequence gap: expected {delivered + 1}, got {meta.sequence.consumer}")
            delivered += 1
            yield _event(msg, strip, meta.sequence.stream)
            # nats.py PR #995: per-message num_pending can read 0 early in a cluster, so also
            # require the creation-time count of initial deliveries.
            if not done and delivered >= boundary and meta.num_pending == 0:
                done = True
                yield InitialDone(session, delivered)
    finally:
        await _cleanup(store, nc, sub, stream, consumer)


def _event(msg: Msg, strip: int, revision: int) -> WatchEvent:
    key = msg.subject[strip:]
    op = (msg.headers or {}).get(_KV_OPERATION, "PUT")
    if op == "DEL":
        return KvDelete(key, revision)
    if op == "PURGE":
        return KvPurge(key, revision)
    return KvPut(key, msg.data, revision)


async def _control(nc: NATSClient, msg: Msg, headers: dict[str, str], *, guard_store: Store) -> None:
    """Answer flow control (and a stalled-consumer hint in a heartbeat) with an empty message."""
    replies = [r for r in (msg.reply, headers.get("Nats-Consumer-Stalled")) if r]
    if not replies:
        return
    _, guard = guard_store._raw_connection("watch flow control")
    with guard:
        for reply in replies:
            await nc.publish(reply, b"")


async def _cleanup(store: Store, nc: NATSClient, sub: Subscription | None, stream: str, consumer: str | None) -> None:
    """Best effort: the consumer's inactive threshold removes it anyway."""
    with contextlib.suppress(Exception):
        if sub is not None:
            await sub.unsubscribe()
    if consumer and nc.is_connected:
        with contextlib.suppress(Exception):
            await nc.request(f"{store.api_prefix}.CONSUMER.DELETE.{stream}.{consumer}", b"", timeout=1.0)

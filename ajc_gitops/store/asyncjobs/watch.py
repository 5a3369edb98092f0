"""A live KV watch for the scheduler: the latest value of every key, then each change.

Part of the asyncjobs adapters (it imports nats; nothing nats-typed leaves it). It uses the
``Store``'s adapter interface (``client``, ``guard``, ``api_prefix``), every call under the
store's error guard.

The watch is our own ordered push consumer instead of nats-py's ``KeyValue.watch()``: that
one can signal "initial values done" before the initial values arrived (nats.py #842, and
the stale per-message ``num_pending`` of nats.py PR #995) and can stall silently after a
reconnect (nats.py #510). Here a session ends, and a new one starts from the current state,
on any sequence gap, missed heartbeats, a reconnect, or a consumer error status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from nats.aio.client import Client as NATSClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ajc_gitops.errors import AjcError, StoreError
from ajc_gitops.names import CONFIG_BUCKET, KV_OPERATION, SCHEDULE_PREFIX, kv_stream, kv_subject
from ajc_gitops.state import InitialDone, KvDelete, KvPurge, KvPut, WatchEvent
from ajc_gitops.store.kv.client import Store
from ajc_gitops.store.kv.errors import decode_reply

__all__ = ["raise_if_cancelling", "watch_keys"]

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


# -- watch ----------------------------------------------------------------------------------


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
    stream = kv_stream(bucket)
    subject = kv_subject(bucket, pattern)
    strip = len(kv_subject(bucket, ""))
    api = f"{store.api_prefix}.CONSUMER.CREATE.{stream}"
    nc, guard = store.client, store.guard("watch", subject)
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
            info = decode_reply(await nc.request(api, json.dumps(body).encode(), timeout=5.0))
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
                msg = queue.get_nowait()  # no timer per message while records pour in
            except asyncio.QueueEmpty:
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
    op = (msg.headers or {}).get(KV_OPERATION, "PUT")
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
    guard = guard_store.guard("watch flow control")
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

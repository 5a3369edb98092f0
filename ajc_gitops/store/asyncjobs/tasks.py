"""Firing tasks over NATS exactly as asyncjobs does (contract §4.4): task record, task_state
event, work item, and ``queue_error`` when the work item is refused.

Part of the asyncjobs adapters: it may import ``nats`` and reaches the connection only
through ``Store``'s adapter members (``client``, ``guard``). Every record and event body comes
from ``codec``. Streams and queues are in ``streams.py``; how a reply is read, and Go's error
texts, in ``task_replies.py``.

``enqueue_many`` runs the publish sequence of ``storage.go:EnqueueTask`` for many tasks at
once: each task is a small state machine driven by its replies, all replies arrive on one
inbox subscription, and at most ``max_in_flight`` tasks are in progress (one request each)
at any time. nats-py's ``request`` gives every call its own future and timer, which caps a
pipeline near 9k requests/s (see ``Store.write_many``); Go has no pipelining at all (one cron
goroutine per fire) and no timeouts (§8 item 17), we have both.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable, Sequence

from nats.aio.msg import Msg

from ajc_gitops.codec import encode_task, encode_task_state_event, encode_work_item
from ajc_gitops.errors import StoreError
from ajc_gitops.gowire.ksuid import new_ksuid
from ajc_gitops.model import NANOS_PER_SECOND, Task
from ajc_gitops.names import (
    EXPECTED_LAST_SUBJECT_SEQ,
    MSG_ID,
    QUEUE_STREAM,
    QUEUE_SUBJECT,
    TASK_EVENT_SUBJECT,
    TASK_SUBJECT,
    TASKS_STREAM,
)
from ajc_gitops.state import EnqueueOutcome
from ajc_gitops.store.asyncjobs.task_replies import (
    DUPLICATE_ITEM,
    NO_RESPONDERS,
    TIMEOUT,
    Reply,
    parse_reply,
    stored_but_never_queued,
)
from ajc_gitops.store.kv.client import Store
from ajc_gitops.store.kv.errors import (
    ERR_JS_TEMPORARILY_UNAVAILABLE,
    ERR_STREAM_NOT_FOUND,
    ERR_WRONG_LAST_SEQUENCE,
    map_nats_errors,
)

__all__ = [
    "DUPLICATE_ITEM",
    "NO_RESPONDERS",
    "TIMEOUT",
    "enqueue_many",
]

_DEFAULT_IN_FLIGHT = 1024


# -- enqueueing (contract §4.4) ------------------------------------------------------------


# A publish answered "no responders" reached no stream, so a resend is safe: a replicated
# stream that was just created, or whose leader is moving, has no subscriber on every server
# for a moment, and every fire sent in that moment would fail. A task store is resent for up
# to one request timeout; a work item only when its queue stream exists (a missing queue is
# a queue_error at once, as in Go).
_RETRY_FIRST_DELAY = 0.02
_RETRY_MAX_DELAY = 0.32

# Stages of one task; each has at most one request outstanding. _QCHECK asks whether the
# queue stream of a work item answered "no responders" exists.
_TASK, _QUEUE, _QERR, _CHECK, _REPAIR, _QCHECK, _DONE = range(7)


def _passing(reply: Reply) -> bool:
    """A refusal that may pass: nothing answered yet, or a cluster node still recovering."""
    return reply.no_responders or reply.err_code == ERR_JS_TEMPORARILY_UNAVAILABLE


class _Pipeline:
    def __init__(
        self, store: Store, tasks: Sequence[Task], *, max_in_flight: int, timeout: float, clock: Callable[[], int]
    ) -> None:
        self._store = store
        self._tasks = tasks
        self._timeout = timeout
        self._clock = clock
        n = len(tasks)
        self._out: list[EnqueueOutcome | None] = [None] * n
        self._stage = [_TASK] * n
        self._seq: list[int | None] = [None] * n
        self._stored: list[int | None] = [None] * n
        self._last_errs: dict[int, str] = {}
        self._repaired: set[int] = set()
        self._requeue: set[int] = set()
        self._retries: dict[tuple[int, int], tuple[float, float]] = {}  # (index, stage) -> (first, next delay)
        self._retrying: set[asyncio.Task[None]] = set()
        self._pending: dict[int, float] = {}  # task index -> monotonic deadline, oldest first
        # The window is a counter and an event rather than a Semaphore: waiting on an Event
        # can be cut short by a timeout without ever losing a permit.
        self._max_in_flight = max(1, max_in_flight)
        self._in_flight = 0
        self._progress = asyncio.Event()  # set whenever a task finishes
        self._remaining = n
        self._errors_mark = store.error_mark()
        self._nc, guard = store.client, store.guard("enqueue")
        with guard:
            self._inbox = self._nc.new_inbox()
        self._strip = len(self._inbox) + 1

    async def run(self) -> list[EnqueueOutcome]:
        if not self._tasks:
            return []
        nc, guard = self._store.client, self._store.guard("enqueue")
        with guard:
            sub = await nc.subscribe(f"{self._inbox}.>", cb=self._on_reply)
        first: dict[str, int] = {}
        try:
            for i, task in enumerate(self._tasks):
                if first.setdefault(task.id, i) != i:
                    # The same slot twice in one batch: racing it against itself would turn
                    # the loser's work item into a queue_error (§4.4 duplicate PubAck).
                    self._in_flight += 1
                    self._finish(i, self._duplicate(i))
                    continue
                while self._in_flight >= self._max_in_flight:
                    await self._wait()
                self._in_flight += 1
                await self._store_task(i)
            while self._remaining:
                await self._wait()
        finally:
            for retry in self._retrying:
                retry.cancel()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        return [o if o is not None else self._fail(i, "not sent") for i, o in enumerate(self._out)]

    async def _wait(self) -> None:
        """Until a task finishes or the oldest request times out (which is then expired)."""
        self._progress.clear()
        oldest = next(iter(self._pending.values()), None)
        delay = self._timeout if oldest is None else max(oldest - time.monotonic(), 0.0)
        try:
            async with asyncio.timeout(delay + 0.001):
                await self._progress.wait()
        except TimeoutError:
            await self._expire()

    async def _expire(self) -> None:
        now = time.monotonic()
        expired = []
        for i, deadline in self._pending.items():
            if deadline > now:
                break  # one timeout for all, so deadlines are in insertion order
            expired.append(i)
        for i in expired:
            del self._pending[i]
            stage = self._stage[i]
            if stage == _TASK:
                self._finish(i, self._fail(i, self._timeout_reason("storing the task")))
            elif stage == _QUEUE:
                await self._queue_failed(i, TIMEOUT)
            elif stage == _QCHECK:  # the queue stream may exist: its leader is unanswered too
                await self._queue_failed(i, NO_RESPONDERS)
            elif stage == _QERR:
                self._finish(i, self._queue_error(i, self._timeout_reason("storing the queue_error state")))
            else:  # _CHECK, _REPAIR: the slot was fired before either way
                self._finish(i, self._duplicate(i))

    def _timeout_reason(self, what: str) -> str:
        # nats-py reports a publish permission violation only to the error callback, and the
        # request then simply goes unanswered: name it rather than a bare timeout.
        denied = [e for e in self._store.errors_since(self._errors_mark) if "permissions violation" in e.lower()]
        if denied:
            return f"{what}: permission denied ({denied[-1]})"
        return f"timed out after {self._timeout:g}s {what}"

    def _store_error(self, exc: Exception, what: str) -> StoreError:
        """``exc`` as ``map_nats_errors`` reports it; raises it when that does not map it.
        Only on a failure: entering that context manager per publish was ~5 % of a fire."""
        try:
            with map_nats_errors(self._store.server, what, permission_error=None):
                raise exc
        except StoreError as mapped:
            return mapped
        raise exc  # not reached: the block always raises

    async def _send(self, i: int, stage: int, subject: str, body: bytes, headers: dict[str, str]) -> None:
        self._stage[i] = stage
        self._pending[i] = time.monotonic() + self._timeout
        try:
            try:
                await self._nc.publish(subject, body, reply=f"{self._inbox}.{i}.{stage}", headers=headers)
            except Exception as raw:
                raise self._store_error(raw, f"enqueue {self._tasks[i].id}") from raw
        except StoreError as exc:  # the connection, not the queue: worth a requeue
            self._pending.pop(i, None)
            if stage == _QUEUE:
                await self._queue_failed(i, str(exc))
            elif stage == _QCHECK:
                await self._queue_failed(i, NO_RESPONDERS)
            elif stage == _QERR:
                self._finish(i, self._queue_error(i, str(exc)))
            elif stage == _TASK:
                self._finish(i, self._fail(i, str(exc)))
            else:
                self._finish(i, self._duplicate(i))

    async def _event(self, task: Task) -> None:
        # §4.4 step 2: a core publish; Go ignores nothing here but a lost event harms no one.
        now = self._clock()
        second = now // NANOS_PER_SECOND
        body = encode_task_state_event(task, event_id=new_ksuid(second), now_ns=now, event_second=second)
        try:
            await self._nc.publish(TASK_EVENT_SUBJECT.format(task.id), body)
        except Exception as raw:
            self._store_error(raw, "task_state event")  # a StoreError is dropped, as before

    async def _on_reply(self, msg: Msg) -> None:
        try:
            index, _, stage_text = msg.subject[self._strip :].partition(".")
            i, stage = int(index), int(stage_text)
        except ValueError:
            return
        if not 0 <= i < len(self._tasks) or self._stage[i] != stage or i not in self._pending:
            return  # a reply after we gave up on that request
        del self._pending[i]
        reply = parse_reply(msg)
        task = self._tasks[i]
        if stage == _TASK:
            if reply.ok and reply.seq is not None:
                self._seq[i], self._stored[i] = reply.seq, self._clock()
                await self._event(task)
                await self._send_work_item(i, _QUEUE)
            elif reply.no_responders and self._resend_later(i, _TASK):
                pass
            elif reply.err_code in ERR_WRONG_LAST_SEQUENCE:
                body = json.dumps({"last_by_subj": TASK_SUBJECT.format(task.id)}).encode()
                await self._send(i, _CHECK, f"{self._store.api_prefix}.STREAM.MSG.GET.{TASKS_STREAM}", body, {})
            else:
                self._finish(i, self._fail(i, reply.text or "PubAck without a sequence"))
        elif stage == _QUEUE:
            if reply.ok and not reply.duplicate:
                self._finish(i, EnqueueOutcome(task.id, task.queue, "enqueued", self._seq[i], self._stored[i]))
            elif reply.no_responders and self._backoff(i, _QUEUE) is not None:
                stream = QUEUE_STREAM.format(task.queue)
                await self._send(i, _QCHECK, f"{self._store.api_prefix}.STREAM.INFO.{stream}", b"", {})
            else:
                await self._queue_failed(i, DUPLICATE_ITEM if reply.ok else reply.text, requeue=_passing(reply))
        elif stage == _QCHECK:
            if not (reply.ok and self._resend_later(i, _QUEUE)):
                # Go's queue_error for a missing queue stands; anything else may pass.
                await self._queue_failed(i, NO_RESPONDERS, requeue=reply.err_code != ERR_STREAM_NOT_FOUND)
        elif stage == _QERR:
            if reply.ok:
                await self._event(self._errored(i))
                self._finish(i, self._queue_error(i, None))
            else:
                self._finish(i, self._queue_error(i, reply.text))
        elif stage == _CHECK:
            seq = stored_but_never_queued(reply.body) if reply.ok else None
            if seq is None:
                self._finish(i, self._duplicate(i))
            else:
                self._seq[i] = seq  # what a queue_error record must expect (step 4)
                await self._send_work_item(i, _REPAIR)
        elif stage == _REPAIR:
            if reply.ok:  # a duplicate ack: the item is (or was, within 2m) there after all
                self._finish(i, self._duplicate(i, repaired=not reply.duplicate))
            else:  # as step 4 would have done had the earlier attempt lived
                self._repaired.add(i)
                await self._queue_failed(i, reply.text, requeue=_passing(reply))

    async def _store_task(self, i: int) -> None:
        """§4.4 step 1: only if the subject is empty, i.e. this slot never fired."""
        task = self._tasks[i]
        await self._send(i, _TASK, TASK_SUBJECT.format(task.id), encode_task(task), {EXPECTED_LAST_SUBJECT_SEQ: "0"})

    async def _send_work_item(self, i: int, stage: int) -> None:
        # Nats-Msg-Id makes a second landing (a resend, a repair) a duplicate, not a second item.
        task = self._tasks[i]
        await self._send(i, stage, QUEUE_SUBJECT.format(task.queue, task.id), encode_work_item(task.id), {
            MSG_ID: task.id})  # fmt: skip

    def _backoff(self, i: int, stage: int) -> tuple[float, float] | None:
        """(first try, delay) for the next resend of this stage; None once resent for a timeout."""
        now = time.monotonic()
        first, delay = self._retries.get((i, stage), (now, _RETRY_FIRST_DELAY))
        return (first, delay) if now + delay - first <= self._timeout else None

    def _resend_later(self, i: int, stage: int) -> bool:
        """Resend this stage's publish after a backoff, unless it has been resent for a timeout."""
        backoff = self._backoff(i, stage)
        if backoff is None:
            return False
        first, delay = backoff
        self._retries[(i, stage)] = (first, min(delay * 2, _RETRY_MAX_DELAY))
        resend = asyncio.create_task(self._resend(i, stage, delay))
        self._retrying.add(resend)
        resend.add_done_callback(self._retrying.discard)
        return True

    async def _resend(self, i: int, stage: int, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._stage[i] == _DONE or i in self._pending:
            return
        if stage == _TASK:
            await self._store_task(i)
        else:
            await self._send_work_item(i, _QUEUE)

    async def _queue_failed(self, i: int, last_err: str, *, requeue: bool = True) -> None:
        """§4.4 step 4: re-store the task as ``queue_error`` on top of the step-1 record.
        ``requeue``: the cause may pass (``EnqueueOutcome.requeue``)."""
        self._last_errs[i] = last_err
        if requeue:
            self._requeue.add(i)
        await self._send(i, _QERR, TASK_SUBJECT.format(self._tasks[i].id), encode_task(self._errored(i)),
                         {EXPECTED_LAST_SUBJECT_SEQ: str(self._seq[i])})  # fmt: skip

    def _errored(self, i: int) -> Task:
        return dataclasses.replace(self._tasks[i], state="queue_error", last_err=self._last_errs[i])

    def _fail(self, i: int, reason: str) -> EnqueueOutcome:
        task = self._tasks[i]
        return EnqueueOutcome(task.id, task.queue, "error", error=f"{self._store.server}: {reason}")

    def _duplicate(self, i: int, *, repaired: bool = False) -> EnqueueOutcome:
        task = self._tasks[i]
        return EnqueueOutcome(task.id, task.queue, "duplicate", repaired=repaired)

    def _queue_error(self, i: int, state_error: str | None) -> EnqueueOutcome:
        task = self._tasks[i]
        return EnqueueOutcome(
            task.id,
            task.queue,
            "queue_error",
            self._seq[i],
            self._stored[i],
            self._last_errs[i],
            state_error,
            repaired=i in self._repaired,
            requeue=i in self._requeue,
        )

    def _finish(self, i: int, outcome: EnqueueOutcome) -> None:
        if self._stage[i] == _DONE:
            return
        self._stage[i] = _DONE
        self._pending.pop(i, None)
        self._out[i] = outcome
        self._in_flight -= 1
        self._remaining -= 1
        self._progress.set()


async def enqueue_many(
    store: Store,
    fires: Sequence[Task],
    *,
    max_in_flight: int = _DEFAULT_IN_FLIGHT,
    timeout: float | None = None,
    clock: Callable[[], int] = time.time_ns,
) -> list[EnqueueOutcome]:
    """Store and enqueue every task (§4.4), pipelined; one outcome per task, in order; never
    raises midway (a closed store raises ``StoreError`` before anything is sent).

    ``timeout`` (default: the store's) applies to each request: an unanswered task store is
    an ``error`` (a retry is safe, the ID is deterministic); an unanswered work-item publish
    is a ``queue_error`` with ``last_err`` ``nats: timeout`` (the item may still have landed,
    and a Go worker runs a ``queue_error`` task it finds in the queue)."""
    pipeline = _Pipeline(
        store,
        fires,
        max_in_flight=max_in_flight,
        timeout=store.timeout if timeout is None else timeout,
        clock=clock,
    )
    return await pipeline.run()

"""Requeueing a stranded task: stored, but its work item was never accepted (a ``queue_error``
after a timeout or "no responders" while a queue stream's leader moved, contract §4.4 step 4).

One attempt, in this order:

1. read the task record (STREAM.MSG.GET ``last_by_subj``, answered by the stream leader), to
   learn its state and the sequence an update must expect. Only ``queue_error``, or ``new``
   with no tries (the ``queue_error`` store itself failed), is ours to requeue; any other
   state means a worker or an operator (``ajc task retry``) has moved it on.
2. publish the work item with ``Nats-Msg-Id`` = task ID, as step 3 does: inside the queue
   stream's duplicate window a copy that landed earlier makes this a duplicate, never a
   second item (the caller keeps to the window: ``scheduler/requeue.py``);
3. store the task as it was first stored (state ``new``, no ``last_err``) with
   ``Nats-Expected-Last-Subject-Sequence`` = the sequence read in 1, as Go's
   ``SaveTaskState`` updates a task, then its task_state event. "Wrong last sequence" means a
   worker took the item in between (a Go worker runs a ``queue_error`` task it finds in its
   queue, ``processor.go``): the task is on its way, nothing to undo.

The item goes before the record so that no moment shows ``new`` without an item.
"""

from __future__ import annotations

import base64
import binascii
import contextlib

from ajc_gitops.codec import decode_task_progress, encode_task, encode_task_state_event, encode_work_item
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
from ajc_gitops.state import RequeueOutcome
from ajc_gitops.store.asyncjobs.task_replies import parse_reply
from ajc_gitops.store.kv.client import Store
from ajc_gitops.store.kv.errors import ERR_WRONG_LAST_SEQUENCE, is_not_found, map_nats_errors

__all__ = ["queue_duplicate_window", "requeue_task"]


async def queue_duplicate_window(store: Store, queue: str) -> int | None:
    """The queue stream's duplicate window in nanoseconds, as its leader reports it; None
    when the stream does not exist. A failed read raises ``StoreError``."""
    stream = QUEUE_STREAM.format(queue)
    try:
        info = await store.api_request(f"STREAM.INFO.{stream}", None, what=f"stream {stream}")
    except StoreError as exc:
        if is_not_found(exc):
            return None
        raise
    window = (info.get("config") or {}).get("duplicate_window")
    return window if isinstance(window, int) and window >= 0 else 0


async def _stored(store: Store, task_id: str) -> tuple[int, str, int] | None:
    """(sequence, state, tries) of the task's record; None when there is none."""
    body = {"last_by_subj": TASK_SUBJECT.format(task_id)}
    try:
        reply = await store.api_request(f"STREAM.MSG.GET.{TASKS_STREAM}", body, what=f"read task {task_id}")
    except StoreError as exc:
        if is_not_found(exc):
            return None
        raise
    message = reply.get("message") or {}
    try:
        record = base64.b64decode(message.get("data") or "", validate=True)
    except (binascii.Error, TypeError):
        record = b""
    progress = decode_task_progress(record)
    seq = message.get("seq")
    if progress is None or not isinstance(seq, int):
        return None
    return seq, progress[0], progress[1]


async def _publish(store: Store, subject: str, body: bytes, headers: dict[str, str], what: str) -> tuple[bool, str]:
    """(accepted, error text): a PubAck, duplicate or not, is acceptance."""
    nc = store.client
    with store.guard(what, subject):
        msg = await nc.request(subject, body, timeout=store.timeout, headers=headers)
    reply = parse_reply(msg)
    if reply.ok:
        return True, ""
    if reply.err_code in ERR_WRONG_LAST_SEQUENCE:
        return False, "wrong last sequence"
    return False, reply.text or "PubAck without a sequence"


async def requeue_task(store: Store, task: Task, *, clock_ns: int) -> RequeueOutcome:
    """One attempt (module doc); every failure is an outcome, never an exception."""
    try:
        found = await _stored(store, task.id)
        if found is None:
            return RequeueOutcome(task.id, "moved_on", state="absent")
        seq, state, tries = found
        if state != "queue_error" and (state, tries) != ("new", 0):
            return RequeueOutcome(task.id, "moved_on", state=state)
        subject = QUEUE_SUBJECT.format(task.queue, task.id)
        ok, error = await _publish(store, subject, encode_work_item(task.id), {MSG_ID: task.id}, f"requeue {task.id}")
        if not ok:
            return RequeueOutcome(task.id, "failed", state=state, error=error)
        if state == "new":
            return RequeueOutcome(task.id, "requeued", state=state)
        record = encode_task(task)  # the task as step 1 stored it: state new, no last_err
        headers = {EXPECTED_LAST_SUBJECT_SEQ: str(seq)}
        ok, error = await _publish(store, TASK_SUBJECT.format(task.id), record, headers, f"restore task {task.id}")
        if not ok and error == "wrong last sequence":
            return RequeueOutcome(task.id, "moved_on", state=state, error=error)
        if not ok:
            return RequeueOutcome(task.id, "failed", state=state, error=error)
    except StoreError as exc:
        return RequeueOutcome(task.id, "failed", error=str(exc))
    second = clock_ns // NANOS_PER_SECOND
    event = encode_task_state_event(task, event_id=new_ksuid(second), now_ns=clock_ns, event_second=second)
    with contextlib.suppress(StoreError), map_nats_errors(store.server, "task_state event"):
        await store.client.publish(TASK_EVENT_SUBJECT.format(task.id), event)  # lost harms no one
    return RequeueOutcome(task.id, "requeued", state=state)

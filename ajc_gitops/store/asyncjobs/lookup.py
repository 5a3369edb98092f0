"""Reading task records back from ``CHORIA_AJ_TASKS`` for ``status`` and ``backfill``.

Two reads, both bounded:

* ``get_task_records``: the record of each given task ID, by subject (``STREAM.MSG.GET`` with
  ``last_by_subj``, answered by the stream leader). Go creates the tasks stream without
  ``allow_direct`` (contract §1), so the leader-answered API is the one that works on every
  asyncjobs install; the requests are pipelined on one inbox subscription, as ``enqueue_many``
  publishes, with a window of requests in flight, never one round trip at a time.
* ``scan_task_records``: for tasks a Go leader created (random IDs, contract §4.3) there is no
  ID to look up. Records whose last write is at or after a start time are read in stream order
  through a pull consumer (``opt_start_time``), stopping at the stream's last sequence when the
  scan began or at ``limit`` messages, whichever comes first; the result says which.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncGenerator, Iterable, Sequence
from datetime import UTC, datetime

from nats.aio.msg import Msg

from ajc_gitops.errors import StoreError
from ajc_gitops.names import TASK_SUBJECT, TASKS_STREAM
from ajc_gitops.state import StoredMessage, TaskScan
from ajc_gitops.store.kv.client import Store
from ajc_gitops.store.kv.errors import ERR_NO_MESSAGE_FOUND

__all__ = ["create_reader", "delete_reader", "get_task_records", "iter_task_records", "scan_task_records"]

_DEFAULT_IN_FLIGHT = 1024
_SCAN_BATCH = 1000
_PREFIX_LEN = len(TASK_SUBJECT.format(""))
_SUBJECT_PREFIX = TASK_SUBJECT.format("").encode()
_DATA_KEY = b'"data":"'


async def get_task_records(
    store: Store, task_ids: Sequence[str], *, max_in_flight: int = _DEFAULT_IN_FLIGHT
) -> dict[str, bytes]:
    """The stored record of every ID that has one (an absent ID has none: never fired).

    Raises ``StoreError`` when a lookup fails or goes unanswered for the store's timeout: a
    status built on a partial read would report slots as missed that were not."""
    found: dict[str, bytes] = {}
    async with contextlib.aclosing(iter_task_records(store, task_ids, max_in_flight=max_in_flight)) as batches:
        async for batch in batches:
            found.update((task_ids[i], record) for i, record in batch)
    return found


async def iter_task_records(
    store: Store, task_ids: Iterable[str], *, max_in_flight: int = _DEFAULT_IN_FLIGHT
) -> AsyncGenerator[list[tuple[int, bytes]], None]:
    """``get_task_records`` as it arrives: batches of (position in ``task_ids``, record), each
    position once, absent IDs never. Lookups stay in flight while the caller works on a
    batch, and ``task_ids`` (which may be a generator) is drawn only as the window frees, so
    both the caller's decoding and its making of the IDs overlap the server's work instead of
    following it (``status`` reads hundreds of thousands). Close it (``contextlib.aclosing``)
    when leaving early."""
    ids = iter(task_ids)
    first = next(ids, None)
    if first is None:
        return
    ids = itertools.chain((first,), ids)
    nc = store.client
    api = f"{store.api_prefix}.STREAM.MSG.GET.{TASKS_STREAM}"
    asked: list[str] = []  # by position
    ready: list[tuple[int, bytes]] = []
    failures: list[str] = []
    window = max(1, max_in_flight)
    resume_at = max(1, window // 2)  # refill in bursts, not one request per reply
    state = {"in_flight": 0, "answered": 0}
    progress = asyncio.Event()
    with store.guard("read task records"):
        inbox = nc.new_inbox()
    strip = len(inbox) + 1

    async def on_reply(msg: Msg) -> None:
        state["in_flight"] -= 1
        state["answered"] += 1
        if state["in_flight"] <= resume_at:
            progress.set()
        data = msg.data
        # The server's reply is {"type":...,"message":{...,"data":"<base64>",...}} or an error;
        # base64 holds no quote, so the body is cut out without decoding the envelope.
        at = data.find(_DATA_KEY)
        if at >= 0:
            start = at + len(_DATA_KEY)
            try:
                index = int(msg.subject[strip:])
            except ValueError:
                return
            ready.append((index, base64.b64decode(data[start : data.index(b'"', start)])))
            return
        _other(msg, strip, asked, ready, failures)

    async def wait_progress(before: int) -> None:
        """Until replies move on; a whole timeout without any is an error."""
        progress.clear()
        try:
            async with asyncio.timeout(store.timeout):
                await progress.wait()
        except TimeoutError:
            if state["answered"] == before:
                raise StoreError(f"{store.server}: no answer reading task records within {store.timeout:g}s") from None

    with store.guard("read task records", api):
        sub = await nc.subscribe(f"{inbox}.*", cb=on_reply)
    try:
        exhausted = False
        while True:
            if not exhausted and state["in_flight"] < window:
                room = window - state["in_flight"]
                more = list(itertools.islice(ids, room))  # drawn outside the guard: the caller's code
                exhausted = len(more) < room
                with store.guard("read task records", api):
                    for task_id in more:
                        state["in_flight"] += 1
                        body = b'{"last_by_subj":"' + _SUBJECT_PREFIX + task_id.encode() + b'"}'
                        await nc.publish(api, body, reply=f"{inbox}.{len(asked)}")
                        asked.append(task_id)
            if failures:
                break
            if ready:
                batch, ready = ready, []
                yield batch  # the lookups in flight go on meanwhile
            elif exhausted and state["in_flight"] == 0:
                break
            else:
                await wait_progress(state["answered"])
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    if failures:
        more_text = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise StoreError(f"{store.server}: reading task records: {failures[0]}{more_text}")


def _other(msg: Msg, strip: int, task_ids: Sequence[str], ready: list[tuple[int, bytes]], failures: list[str]) -> None:
    """A reply without a body: an empty record, "no message" (the ID was never stored), or a
    failure."""
    try:
        reply = json.loads(msg.data)
        index = int(msg.subject[strip:])
    except ValueError:
        failures.append("unreadable reply")
        return
    if "error" not in reply:
        ready.append((index, b""))
        return
    error = reply.get("error") or {}
    if error.get("err_code") != ERR_NO_MESSAGE_FOUND:
        failures.append(f"task {task_ids[index]}: {error.get('description', error)}")


async def scan_task_records(store: Store, *, start: datetime, limit: int) -> TaskScan:
    """Records last written at or after ``start``, in stream order, at most ``limit``;
    ``complete`` when the scan reached the stream's last sequence as of its start."""
    info = await store.api_request(f"STREAM.INFO.{TASKS_STREAM}", None, what="tasks stream state")
    last_seq = int((info.get("state") or {}).get("last_seq", 0) or 0)
    if limit <= 0 or last_seq == 0:
        return TaskScan((), complete=last_seq == 0, scanned=0)
    consumer, pending = await create_reader(store, start, what="scan tasks")
    messages: list[StoredMessage] = []
    complete = True
    try:
        while pending > 0:
            if len(messages) >= limit:
                complete = False
                break
            batch = min(_SCAN_BATCH, limit - len(messages))
            got, pending, reached = await _fetch(store, consumer, batch, last_seq)
            messages.extend(got)
            if reached or not got:
                break
    finally:
        await delete_reader(store, consumer)
    return TaskScan(tuple(m for m in messages if m.seq <= last_seq), complete=complete, scanned=len(messages))


async def create_reader(store: Store, start: datetime, *, what: str) -> tuple[str, int]:
    """An ephemeral consumer on the tasks stream delivering, without acks, every record last
    written at or after ``start``: (its name, how many records it has to deliver)."""
    config = {
        "deliver_policy": "by_start_time",
        "opt_start_time": start.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "ack_policy": "none",
        "filter_subject": TASK_SUBJECT.format("*"),
        "inactive_threshold": 10 * 1_000_000_000,  # gone soon if this process dies reading
        "mem_storage": True,
        "num_replicas": 1,
    }
    created = await store.api_request(
        f"CONSUMER.CREATE.{TASKS_STREAM}", {"stream_name": TASKS_STREAM, "config": config}, what=what
    )
    return str(created.get("name")), int(created.get("num_pending", 0) or 0)


async def delete_reader(store: Store, consumer: str) -> None:
    """Best effort: an undeleted reader expires after its inactivity threshold anyway."""
    with contextlib.suppress(Exception), store.guard("delete task reader"):
        await store.client.publish(f"{store.api_prefix}.CONSUMER.DELETE.{TASKS_STREAM}.{consumer}", b"")


async def _fetch(store: Store, consumer: str, batch: int, last_seq: int) -> tuple[list[StoredMessage], int, bool]:
    """One pull of up to ``batch`` messages: (messages, still pending, reached ``last_seq``)."""
    nc = store.client
    got: list[StoredMessage] = []
    pending = 0
    reached = False
    done = asyncio.Event()
    with store.guard("scan tasks"):
        inbox = nc.new_inbox()

    async def on_msg(msg: Msg) -> None:
        nonlocal pending, reached
        if msg.headers and msg.headers.get("Status"):
            done.set()  # 404/408: nothing more right now
            return
        tokens = (msg.reply or "").split(".")
        # $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ns>.<pending>
        try:
            seq, stamp, pending = int(tokens[-4]), int(tokens[-2]), int(tokens[-1])
        except (ValueError, IndexError):
            return
        got.append(StoredMessage(msg.subject[_PREFIX_LEN:], msg.data, seq, stamp))
        reached = reached or seq >= last_seq
        if len(got) >= batch or pending == 0 or reached:
            done.set()

    with store.guard("scan tasks"):
        sub = await nc.subscribe(inbox, cb=on_msg)
        try:
            request = {"batch": batch, "no_wait": True}
            await nc.publish(
                f"{store.api_prefix}.CONSUMER.MSG.NEXT.{TASKS_STREAM}.{consumer}",
                json.dumps(request).encode(),
                reply=inbox,
            )
            try:
                async with asyncio.timeout(store.timeout):
                    await done.wait()
            except TimeoutError:
                raise StoreError(
                    f"{store.server}: scanning the tasks stream: no answer within {store.timeout:g}s"
                ) from None
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
    return got, pending, reached

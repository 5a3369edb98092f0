"""asyncjobs task_state events as they are published (contract §4.4 step 2), for ``dev``.

Part of the store package: the subscription is the only nats-py object here and never
leaves it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from nats.aio.msg import Msg

from ajc_gitops.codec import decode_task_event
from ajc_gitops.model import TaskEvent
from ajc_gitops.names import TASK_EVENT_SUBJECT
from ajc_gitops.store.kv.client import Store

__all__ = ["task_events"]

_SUBJECT = TASK_EVENT_SUBJECT.format(">")


async def task_events(store: Store) -> AsyncGenerator[TaskEvent, None]:
    """Every task_state event from now on, until the caller stops iterating (use aclosing)."""
    queue: asyncio.Queue[TaskEvent] = asyncio.Queue()

    async def on_msg(msg: Msg) -> None:
        event = decode_task_event(msg.data)
        if event is not None:
            queue.put_nowait(event)

    nc, guard = store.client, store.guard("subscribe to task events", _SUBJECT)
    with guard:
        sub = await nc.subscribe(_SUBJECT, cb=on_msg)
        await nc.flush()
    try:
        while True:
            yield await queue.get()
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()

"""Task records to read back, and the reference read: shared by the tests of the pipelined
lookup (``test_task_lookup.py``) and of the one-pass read (``test_task_sweep.py``)."""

from __future__ import annotations

import dataclasses
import random

import nats
from nats.js.errors import NotFoundError

from ajc_gitops.codec import encode_task
from ajc_gitops.gowire.godate import from_unix
from ajc_gitops.model import GoTime, ScheduledTask
from ajc_gitops.names import TASK_SUBJECT, TASKS_STREAM
from ajc_gitops.scheduler.tasks import build_task, slot_task_ids
from ajc_gitops.store import Store

NS = 1_000_000_000
SLOT = 1_780_000_000 - 1_780_000_000 % 3600


async def stored_one_by_one(url: str, task_ids: list[str]) -> dict[str, bytes]:
    """The reference: one ``STREAM.MSG.GET`` at a time, through nats-py's JetStream API."""
    found: dict[str, bytes] = {}
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for task_id in task_ids:
            try:
                msg = await js.get_last_msg(TASKS_STREAM, TASK_SUBJECT.format(task_id))
            except NotFoundError:
                continue
            found[task_id] = msg.data or b""
    finally:
        await nc.close()
    return found


async def fill(store: Store, rng: random.Random, *, name: str = "lookup") -> list[str]:
    """400 slots of one schedule: some never fired, some rewritten by a worker (later
    revisions, other states), some deleted or purged, two holding what is no Task."""
    st = ScheduledTask(name, "@hourly", "DEFAULT", "t:lookup", created_at=GoTime(0))
    slots = [SLOT - h * 3600 for h in range(400)]
    ids = slot_task_ids(st.name, slots)
    nc = store.client
    written = []
    for slot, task_id in zip(slots, ids, strict=True):
        if rng.random() < 0.2:
            continue  # never fired
        task = build_task(st, from_unix(slot), created=GoTime(slot * NS + NS // 10), task_id=task_id)
        await nc.request(TASK_SUBJECT.format(task_id), encode_task(task), timeout=5)
        written.append(task)
    for task in rng.sample(written, 60):  # a Go worker moved them on: the record is rewritten
        for tries, state in enumerate(("active", rng.choice(["complete", "retry", "terminated"])), 1):
            later = dataclasses.replace(task, state=state, tries=tries, last_err="boom" if state != "complete" else "")
            await nc.request(TASK_SUBJECT.format(task.id), encode_task(later), timeout=5)
    gone = rng.sample(written, 40)
    for task in gone[:20]:
        info = await store.api_request(
            f"STREAM.MSG.GET.{TASKS_STREAM}", {"last_by_subj": TASK_SUBJECT.format(task.id)}, what="seq"
        )
        await store.api_request(f"STREAM.MSG.DELETE.{TASKS_STREAM}", {"seq": info["message"]["seq"]}, what="delete")
    for task in gone[20:]:
        await store.api_request(f"STREAM.PURGE.{TASKS_STREAM}", {"filter": TASK_SUBJECT.format(task.id)}, what="purge")
    never = [i for i in ids if all(t.id != i for t in written)]
    await nc.request(TASK_SUBJECT.format(never[0]), b"", timeout=5)  # an empty record
    await nc.request(TASK_SUBJECT.format(never[1]), b'["not a task"]', timeout=5)
    await nc.flush()
    return ids

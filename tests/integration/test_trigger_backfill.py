"""`trigger` and `backfill` against a real nats-server: the task is the one the scheduler
builds, a trigger never takes a slot's ID, and a backfill creates each missing slot once,
leaving alone slots fired by ajc-gitops (by ID) or by a Go leader (by the bounded scan)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time

import pytest

from ajc_gitops.commands.backfill import run as backfill_run
from ajc_gitops.commands.options import BackfillOptions, TriggerOptions
from ajc_gitops.commands.trigger import run as trigger_run
from ajc_gitops.connect.options import ConnectFlags
from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.errors import ApplyCancelled, CommandError
from ajc_gitops.gowire.godate import from_unix
from ajc_gitops.gowire.gotime import format_rfc3339nano
from ajc_gitops.gowire.ksuid import new_ksuid
from ajc_gitops.model import GoTime, ScheduledTask, Task
from ajc_gitops.names import SCHEDULE_PREFIX
from ajc_gitops.scheduler.tasks import build_task, task_id_for
from ajc_gitops.store import Store, enqueue_many
from tests.integration.test_status import _publish_raw
from tests.scheduler_support import options, prepare, read_tasks, record

NS = 1_000_000_000
PAYLOAD = b'{"report":"nightly"}'


def _hour(now_s: int, back: int) -> int:
    return now_s - now_s % 3600 - back * 3600


def _rfc(seconds: int) -> str:
    return from_unix(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


async def _setup(url: str, now_s: int) -> ScheduledTask:
    await prepare(url)
    created = GoTime((now_s - 30 * 3600) * NS)
    st = ScheduledTask("export", "0 * * * *", "DEFAULT", "t:export", PAYLOAD, 3600 * NS, 3, created)
    async with Store.open(options(url)) as store:
        value = record("export", "0 * * * *", created_ns=created.unix_ns, task_type="t:export", payload=PAYLOAD,
                       deadline_ns=3600 * NS, max_tries=3)  # fmt: skip
        await store.put_raw(SCHEDULE_PREFIX + "export", value)
        [fired] = await enqueue_many(
            store, [build_task(st, from_unix(_hour(now_s, 2)), created=GoTime(time.time_ns()))]
        )
        assert fired.status == "enqueued"
        go_slot = _hour(now_s, 3)
        await _publish_raw(store, Task(new_ksuid(go_slot), "t:export", "DEFAULT", b"null", 3, GoTime(go_slot * NS)))
    return st


def test_backfill_creates_each_missing_slot_once(nats_server: EmbeddedServer) -> None:
    now_s = int(time.time())
    st = asyncio.run(_setup(nats_server.url, now_s))
    flags = ConnectFlags(server=nats_server.url)
    opts = BackfillOptions("export", _rfc(_hour(now_s, 5)), _rfc(_hour(now_s, 1)), flags, auto_approve=True)
    before = asyncio.run(read_tasks(nats_server.url))

    assert backfill_run(opts) == 0
    after = asyncio.run(read_tasks(nats_server.url))
    new = {t["id"] for t in after} - {t["id"] for t in before}
    expected = {task_id_for("export", from_unix(_hour(now_s, back))) for back in (5, 4, 1)}
    assert new == expected  # 3 (ajc-gitops fired) and 3 (a Go leader fired) were left alone
    created = next(t for t in after if t["id"] == task_id_for("export", from_unix(_hour(now_s, 5))))
    model = build_task(st, from_unix(_hour(now_s, 5)), created=GoTime(0))
    assert (created["type"], created["queue"], created["max_tries"], created["state"]) == (
        "t:export",
        "DEFAULT",
        3,
        "new",
    )
    assert created["payload"] == base64.b64encode(model.payload or b"").decode()  # encoded again, as Go does
    assert created["deadline"] == format_rfc3339nano(model.deadline or GoTime(0))

    assert backfill_run(opts) == 0  # again: nothing to create
    assert len(asyncio.run(read_tasks(nats_server.url))) == len(after)


def test_backfill_asks_and_refuses_large_ranges(nats_server: EmbeddedServer) -> None:
    now_s = int(time.time())
    asyncio.run(_setup(nats_server.url, now_s))
    flags = ConnectFlags(server=nats_server.url)
    opts = BackfillOptions("export", _rfc(_hour(now_s, 5)), _rfc(_hour(now_s, 4)), flags)
    count = len(asyncio.run(read_tasks(nats_server.url)))
    with pytest.raises(CommandError, match="--auto-approve"):
        backfill_run(opts, interactive=False)
    with pytest.raises(ApplyCancelled):
        backfill_run(opts, interactive=True, ask=lambda: "no")
    with pytest.raises(CommandError, match="--max-slots"):
        backfill_run(dataclasses.replace(opts, start=_rfc(_hour(now_s, 25)), max_slots=10), interactive=True)
    assert len(asyncio.run(read_tasks(nats_server.url))) == count  # nothing was created
    assert backfill_run(opts, interactive=True, ask=lambda: "yes") == 0
    assert len(asyncio.run(read_tasks(nats_server.url))) == count + 2


def test_trigger_builds_the_schedulers_task_under_a_manual_id(nats_server: EmbeddedServer) -> None:
    now_s = int(time.time())
    st = asyncio.run(_setup(nats_server.url, now_s))
    flags = ConnectFlags(server=nats_server.url)
    now_ns = now_s * NS + 250_000_000
    assert trigger_run(TriggerOptions("export", flags), now_ns=now_ns) == 0
    assert trigger_run(TriggerOptions("export", flags), now_ns=now_ns) == 0  # same instant: a second task
    tasks = asyncio.run(read_tasks(nats_server.url))
    manual = [t for t in tasks if t["created"] == format_rfc3339nano(GoTime(now_ns))]
    assert len(manual) == 2 and manual[0]["id"] != manual[1]["id"]
    model = build_task(st, from_unix(now_s).replace(microsecond=250_000), created=GoTime(now_ns))
    for t in manual:
        assert t["id"] != task_id_for("export", from_unix(now_s))  # never a slot's ID
        assert t["deadline"] == format_rfc3339nano(model.deadline or GoTime(0))
        assert (t["type"], t["queue"], t["max_tries"]) == (model.type, model.queue, model.max_tries)
    with pytest.raises(CommandError, match="no schedule 'nope'"):
        trigger_run(TriggerOptions("nope", flags))

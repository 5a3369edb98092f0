"""Queues that do not exist, against a real nats-server: plan lists the queue streams as Go's
QueueNames does and warns, in one line per queue, with the command that creates it."""

from __future__ import annotations

import asyncio
import json

import pytest

from ajc_gitops.commands import plan as plan_command
from ajc_gitops.commands.options import PlanOptions
from ajc_gitops.store import QueueSpec, Store, ensure_queue, ensure_task_streams, queue_names
from tests.integration.test_plan_apply import flags, manifest, opts

pytestmark = pytest.mark.integration

MANIFEST = """\
schedules:
  - {name: MAIL, schedule: "@daily", queue: EMAIL, task_type: t}
  - {name: MAIL2, schedule: "@daily", queue: EMAIL, task_type: t}
  - {name: TICK, schedule: "@daily", task_type: t}
"""


async def test_plan_warns_of_each_missing_queue_until_it_is_created(nats_server, tmp_path, capsys):
    url = nats_server.url
    async with Store.open(opts(url)) as store:
        await store.ensure_buckets()
        await ensure_task_streams(store)
        assert await queue_names(store) == frozenset({"DEFAULT"})
    paths = manifest(tmp_path, MANIFEST)
    options = PlanOptions((paths,), flags(url), output_format="json")
    assert await asyncio.to_thread(plan_command.run, options) == 0
    (warning,) = json.loads(capsys.readouterr().out)["warnings"]
    assert warning["kind"] == "missing_queue" and warning["schedules"] == ["MAIL", "MAIL2"]
    assert warning["command"] == "ajc queue add EMAIL"
    assert warning["message"].endswith("(MAIL, MAIL2 fire into it); create it with: ajc queue add EMAIL")
    assert await asyncio.to_thread(plan_command.run, PlanOptions((paths,), flags(url))) == 0
    text = capsys.readouterr().out
    assert "  ! missing_queue: queue EMAIL has no stream CHORIA_AJ_Q_EMAIL" in text

    async with Store.open(opts(url)) as store:
        await ensure_queue(store, QueueSpec("EMAIL"))  # what `ajc queue add EMAIL` creates
        assert await queue_names(store) == frozenset({"DEFAULT", "EMAIL"})
    assert await asyncio.to_thread(plan_command.run, options) == 0
    assert json.loads(capsys.readouterr().out)["warnings"] == []


async def test_queue_names_pages_through_many_streams(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await ensure_task_streams(store)
        for i in range(1030):  # more than one STREAM.NAMES page (1024)
            await store.api_request(
                f"STREAM.CREATE.CHORIA_AJ_Q_Q{i}",
                {"name": f"CHORIA_AJ_Q_Q{i}", "subjects": [f"CHORIA_AJ.Q.Q{i}.>"], "storage": "memory"},
                what="create",
            )
        names = await queue_names(store)
    assert len(names) == 1031 and "Q1029" in names and "DEFAULT" in names

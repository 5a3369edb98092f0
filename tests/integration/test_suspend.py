"""Suspend and resume against a real nats-server: apply deletes the record and keeps the
definition in the ownership marker, plan/export/plan files know it, resuming creates the record
over its tombstone, a hand-made schedule needs --adopt, and a running scheduler stops firing a
suspended schedule and fires it again once resumed."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import yaml

from ajc_gitops.codec import decode_marker
from ajc_gitops.commands import apply as apply_command
from ajc_gitops.commands import export as export_command
from ajc_gitops.commands import plan as plan_command
from ajc_gitops.commands.options import ApplyOptions, ExportOptions, PlanOptions
from ajc_gitops.errors import PlanBlocked
from ajc_gitops.names import marker_key
from ajc_gitops.plan.model import Action
from ajc_gitops.plan.planfile import read_plan
from ajc_gitops.plan.suspend import suspension_of
from ajc_gitops.store import Store
from ajc_gitops.sync.state import read_state
from tests.integration.test_plan_apply import flags, manifest, opts
from tests.integration.test_scheduler import leading, scheduler
from tests.scheduler_support import prepare, put_schedule, read_tasks, record, slot_of

pytestmark = pytest.mark.integration

TWO = """\
schedules:
  - name: KEEP
    schedule: "@every 1s"
    task_type: t:keep
  - name: PAUSE
    schedule: "@every 1s"
    task_type: t:pause{extra}
"""
SUSPENDED = TWO.format(extra='\n    suspend: true\n    suspend_reason: "db migration (OPS-1)"')
ACTIVE = TWO.format(extra="")


def _plan(url: str, paths: Path, **kw: object) -> int:
    return plan_command.run(PlanOptions((paths,), flags(url), detailed_exitcode=True, **kw))  # type: ignore[arg-type]


def _apply(url: str, paths: Path, **kw: object) -> int:
    options = ApplyOptions((paths,), flags(url), auto_approve=True, **kw)  # type: ignore[arg-type]
    return apply_command.run(options, interactive=False)


async def test_suspend_then_resume_round_trips_through_plan_apply_export_and_plan_files(nats_server, tmp_path, capsys):
    url = nats_server.url
    paths = manifest(tmp_path, ACTIVE)
    assert await asyncio.to_thread(_apply, url, paths) == 0
    capsys.readouterr()
    paths = manifest(tmp_path, SUSPENDED)
    assert await asyncio.to_thread(_plan, url, paths, output_format="json") == 2
    document = json.loads(capsys.readouterr().out)
    (change,) = [c for c in document["changes"] if c["action"] != "no-op"]
    assert (change["name"], change["action"], change["suspend_reason"]) == ("PAUSE", "suspend", "db migration (OPS-1)")
    assert document["summary"]["suspend"] == 1
    assert await asyncio.to_thread(_apply, url, paths) == 0
    assert "Apply complete: 0 added, 0 changed, 0 destroyed, 1 suspended." in capsys.readouterr().out

    async with Store.open(opts(url)) as store:
        records, markers = await read_state(store)
    assert "scheduled_tasks.PAUSE" not in records.live and "scheduled_tasks.KEEP" in records.live
    tombstone = records.tombstone_revision("scheduled_tasks.PAUSE")
    assert tombstone is not None
    found = suspension_of("PAUSE", markers, records)
    assert found is not None and found.reason == "db migration (OPS-1)" and not found.record_live
    assert found.task is not None and found.task.task_type == "t:pause"
    assert await asyncio.to_thread(_plan, url, paths) == 0  # suspended and staying so: no changes
    capsys.readouterr()

    # Export writes it back as suspended; the export plans as no change.
    assert await asyncio.to_thread(export_command.run, ExportOptions(("PAUSE",), flags(url))) == 0
    exported = yaml.safe_load(capsys.readouterr().out)["schedules"]
    assert exported == [
        {
            "name": "PAUSE",
            "schedule": "@every 1s",
            "queue": "DEFAULT",
            "task_type": "t:pause",
            "suspend": True,
            "suspend_reason": "db migration (OPS-1)",
            "max_tries": 10,
        }
    ]
    export_dir = tmp_path / "exported"
    assert await asyncio.to_thread(export_command.run, ExportOptions((), flags(url), out_dir=export_dir)) == 0
    assert "suspended, so it has no" in (export_dir / "PAUSE.yaml").read_text()
    assert await asyncio.to_thread(_plan, url, export_dir) == 0

    # Resume through a saved plan file: a Create over the tombstone, revision-guarded.
    paths = manifest(tmp_path, ACTIVE)
    saved = tmp_path / "resume.plan"
    assert await asyncio.to_thread(_plan, url, paths, out=saved) == 2
    plan = read_plan(saved.read_bytes(), str(saved))
    (resume,) = [c for c in plan.changes if c.action is not Action.NOOP]
    assert (resume.action, resume.tombstone_revision) == (Action.RESUME, tombstone)
    capsys.readouterr()
    assert await asyncio.to_thread(_apply, url, saved) == 0
    assert "1 resumed." in capsys.readouterr().out
    async with Store.open(opts(url)) as store:
        records, markers = await read_state(store)
    entry = records.live["scheduled_tasks.PAUSE"]
    assert entry.revision > tombstone
    assert decode_marker(markers.live[marker_key("PAUSE")].value or b"").suspended is None
    assert await asyncio.to_thread(_plan, url, paths) == 0


async def test_a_hand_made_schedule_is_suspended_only_with_adopt(nats_server, tmp_path):
    url = nats_server.url
    async with Store.open(opts(url)) as store:
        await store.ensure_buckets()
    await put_schedule(url, "PAUSE", record("PAUSE", "@every 1s", created_ns=time.time_ns(), task_type="t:pause"))
    paths = manifest(tmp_path, SUSPENDED)
    with pytest.raises(PlanBlocked, match=r"schedules\.yaml:5:5: PAUSE was not created by ajc-gitops.*--adopt PAUSE"):
        await asyncio.to_thread(_plan, url, paths)
    assert await asyncio.to_thread(_apply, url, paths, adopt=("PAUSE",)) == 0
    async with Store.open(opts(url)) as store:
        records, markers = await read_state(store)
    assert "scheduled_tasks.PAUSE" not in records.live
    assert suspension_of("PAUSE", markers) is not None


async def test_the_scheduler_stops_firing_a_suspended_schedule_and_fires_it_again_once_resumed(
    nats_server, tmp_path, async_wait_until
):
    url = nats_server.url
    await prepare(url)
    assert await asyncio.to_thread(_apply, url, manifest(tmp_path, ACTIVE)) == 0
    async with scheduler(url) as service:
        await leading(service, async_wait_until)

        async def fired(task_type: str, n: int, after: float) -> bool:
            tasks = await read_tasks(url)
            return sum(1 for t in tasks if t["type"] == task_type and slot_of(t) > after) >= n

        await async_wait_until(lambda: fired("t:pause", 2, 0), timeout=15, what="PAUSE fires")
        assert await asyncio.to_thread(_apply, url, manifest(tmp_path, SUSPENDED)) == 0
        suspended_at = time.time()
        # KEEP goes on firing for 3 s after the suspension; PAUSE does not.
        await async_wait_until(lambda: fired("t:keep", 3, suspended_at + 1), timeout=15, what="KEEP fires")
        assert not await fired("t:pause", 1, suspended_at + 1), "a suspended schedule fired"
        assert await asyncio.to_thread(_apply, url, manifest(tmp_path, ACTIVE)) == 0
        resumed_at = time.time()
        await async_wait_until(lambda: fired("t:pause", 1, resumed_at), timeout=15, what="PAUSE fires once resumed")
    pauses = sorted(slot_of(t) for t in await read_tasks(url) if t["type"] == "t:pause")
    assert not [s for s in pauses if suspended_at + 1 < s < resumed_at - 1], pauses

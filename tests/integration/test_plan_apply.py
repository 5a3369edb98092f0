"""plan and apply against a real nats-server: Go's bytes in and out, Delete-then-Create, stale
plans, conflicts, ownership and prune, permissions, missing buckets. No mocks."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest

from ajc_gitops.commands import apply as apply_command
from ajc_gitops.commands import common
from ajc_gitops.commands import plan as plan_command
from ajc_gitops.commands.options import ApplyOptions, PlanOptions
from ajc_gitops.connect import ConnectFlags, ConnectOptions
from ajc_gitops.embedded import free_ports
from ajc_gitops.errors import AjcError, ApplyRefused, ConnectError, StalePlanError
from ajc_gitops.manifest.load import load_manifests
from ajc_gitops.names import CONFIG_BUCKET, ELECTIONS_BUCKET, marker_key
from ajc_gitops.plan.model import Action, NoticeKind, Plan
from ajc_gitops.plan.planfile import read_plan
from ajc_gitops.state import WriteOp
from ajc_gitops.store import Store
from ajc_gitops.sync.apply import apply_plan
from ajc_gitops.sync.state import read_state

pytestmark = pytest.mark.integration

NOW = datetime(2026, 7, 22, 8, 39, 24, tzinfo=UTC)
# Contract §2.2, byte for byte as Go's `ajc task cron add` writes them.
GO_PLAIN = (
    b'{"name":"EMAIL_MONTHLY_UPDATE","schedule":"0 0 1 * *","queue":"EMAIL","task_type":"email:monthly",'
    b'"payload":null,"deadline":43200000000000,"max_tries":10,"created_at":"2026-07-22T08:39:24.1234567Z"}'
)
GO_CLI_PAYLOAD = (
    b'{"name":"EMAIL_MONTHLY_UPDATE","schedule":"0 0 1 * *","queue":"EMAIL","task_type":"email:monthly",'
    b'"payload":"IntcImFcIjoxfSI=","deadline":43200000000000,"max_tries":10,"created_at":"2026-07-22T08:39:24.1234567Z"}'
)
EMAIL_YAML = """
schedules:
  - name: EMAIL_MONTHLY_UPDATE
    schedule: "0 0 1 * *"
    queue: EMAIL
    task_type: email:monthly
    deadline: 12h
"""
KEY = "scheduled_tasks.EMAIL_MONTHLY_UPDATE"
_CREATED_AT = re.compile(rb'"created_at":"[^"]*"')


def opts(url: str, **kw: Any) -> ConnectOptions:
    kw.setdefault("timeout_s", 2.0)
    return ConnectOptions(servers=(url,), **kw)


def flags(url: str, **kw: Any) -> ConnectFlags:
    kw.setdefault("timeout_s", 2.0)
    return ConnectFlags(server=url, **kw)


def manifest(tmp_path: Path, text: str, name: str = "schedules.yaml") -> Path:
    directory = tmp_path / "manifests"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)
    return directory


def entries(count: int, prefix: str = "s", schedule: str = "@daily") -> str:
    lines = ["schedules:"]
    for i in range(count):
        lines += [f"  - name: {prefix}{i:05d}", f"    schedule: '{schedule}'", "    task_type: t"]
    return "\n".join(lines) + "\n"


async def make_plan(store: Store, paths: Path, *, prune: bool = False, adopt: frozenset[str] = frozenset()) -> Plan:
    loaded = load_manifests([paths], now=NOW)
    assert not loaded.errors, loaded.errors
    return await common.make_plan(store, loaded.schedules, now=NOW, prune=prune, adopt=adopt)


async def raw_put(store: Store, key: str, value: bytes) -> int:
    return await store.put_raw(key, value)


async def live_value(store: Store, key: str) -> bytes | None:
    records, _ = await read_state(store)
    entry = records.live.get(key)
    return entry.value if entry else None


def with_go_time(record: bytes | None) -> bytes:
    assert record is not None
    return _CREATED_AT.sub(b'"created_at":"2026-07-22T08:39:24.1234567Z"', record)


# -- Go's bytes in and out ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "payload_yaml"),
    [(GO_PLAIN, ""), (GO_CLI_PAYLOAD, "    payload: '{\"a\":1}'\n")],
    ids=["no-payload", "cli-json-string-payload"],
)
async def test_go_records_are_read_and_a_matching_manifest_plans_no_change(nats_server, tmp_path, record, payload_yaml):
    paths = manifest(tmp_path, EMAIL_YAML + payload_yaml)
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        await raw_put(store, KEY, record)
        # Made by hand (ajc task cron add): blocked until adopted, never overwritten.
        plan = await make_plan(store, paths)
        assert [n.kind for n in plan.blocked] == [NoticeKind.UNMANAGED_CONFLICT]
        with pytest.raises(ApplyRefused, match="--adopt"):
            await apply_plan(store, plan)
        adopted = await make_plan(store, paths, adopt=frozenset({"EMAIL_MONTHLY_UPDATE"}))
        [change] = adopted.changes
        assert change.action is Action.ADOPT and change.fields == () and change.value is None
        result = await apply_plan(store, adopted)
        assert result.applied == ("EMAIL_MONTHLY_UPDATE",)
        assert await live_value(store, KEY) == record  # adopting writes only the marker
        again = await make_plan(store, paths)
    assert not again.has_changes and not again.notices
    assert [c.action for c in again.changes] == [Action.NOOP]


@pytest.mark.parametrize(
    ("payload_yaml", "go_bytes"),
    [("", GO_PLAIN), ("    payload: '{\"a\":1}'\n", GO_CLI_PAYLOAD)],
    ids=["no-payload", "cli-json-string-payload"],
)
async def test_created_records_are_byte_identical_to_go_except_created_at(
    nats_server, tmp_path, payload_yaml, go_bytes
):
    paths = manifest(tmp_path, EMAIL_YAML + payload_yaml + "    max_tries: 10\n")
    async with Store.open(opts(nats_server.url)) as store:
        plan = await make_plan(store, paths)
        assert [c.action for c in plan.changes] == [Action.CREATE]
        result = await apply_plan(store, plan)
        assert result.complete
        written = await live_value(store, KEY)
    assert with_go_time(written) == go_bytes
    assert written is not None and b'"created_at":"2026-07-22T08:39:24Z"' in written


async def test_legacy_capitalised_record_is_read_as_go_reads_it(nats_server, tmp_path):
    legacy = (
        b'{"Name":"legacy","Schedule":"@daily","Queue":"DEFAULT","Task_Type":"t","Payload":null,'
        b'"Deadline":60000000000,"MaxTries":5,"Created_At":"2022-02-16T10:00:00Z"}'
    )
    # Go binds Deadline (case folding) but not MaxTries, so max_tries is 0 (contract §2.3).
    paths = manifest(
        tmp_path,
        "schedules:\n  - {name: legacy, schedule: '@daily', task_type: t, deadline: 1m, max_tries: 0}\n",
    )
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        await raw_put(store, "scheduled_tasks.legacy", legacy)
        plan = await make_plan(store, paths, adopt=frozenset({"legacy"}))
    [change] = plan.changes
    # The manifest's 0 is stored as 10, as ajc task cron add stores it (docs/compatibility.md);
    # a Go worker gives both 10 tries, so adopting only rewrites the record into today's form.
    assert change.action is Action.ADOPT
    assert [(f.field, f.before, f.after) for f in change.fields] == [("max_tries", "0", "10")]
    assert [n.kind for n in plan.notices] == [NoticeKind.LEGACY_RECORD]
    assert "MaxTries" in plan.notices[0].message


async def test_corrupt_record_shows_in_the_plan_without_crashing(nats_server, tmp_path, capsys):
    paths = manifest(tmp_path, entries(1))
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        await raw_put(store, "scheduled_tasks.broken", b'{"name":"broken","schedule":')
        await raw_put(store, "scheduled_tasks.renamed", GO_PLAIN)  # JSON name differs from the key
    code = await asyncio.to_thread(plan_command.run, PlanOptions((paths,), flags(nats_server.url)))
    out = capsys.readouterr().out
    assert code == 0
    assert "scheduled_tasks.broken" in out and "Go cannot decode this record" in out
    assert "scheduled_tasks.renamed" in out and "differs from the key" in out
    assert "Plan: 1 to add, 0 to change, 0 to destroy." in out


# -- writes ---------------------------------------------------------------------------------


async def test_a_change_is_a_guarded_delete_then_a_create_never_a_put(nats_server, tmp_path, async_wait_until):
    paths = manifest(tmp_path, entries(1))
    async with Store.open(opts(nats_server.url)) as store:
        assert (await apply_plan(store, await make_plan(store, paths))).complete
        nc = await nats.connect(nats_server.url)
        seen: list[tuple[str, bytes]] = []

        async def record(msg: Any) -> None:
            seen.append(((msg.headers or {}).get("KV-Operation", "PUT"), msg.data))

        sub = await nc.subscribe("$KV.CHORIA_AJ_CONFIGURATION.scheduled_tasks.s00000", cb=record)
        await nc.flush()
        paths = manifest(tmp_path, entries(1, schedule="@hourly"))
        plan = await make_plan(store, paths)
        [change] = plan.changes
        assert change.action is Action.UPDATE
        assert [(f.field, f.before, f.after) for f in change.fields] == [("schedule", "@daily", "@hourly")]
        assert (await apply_plan(store, plan)).complete

        await async_wait_until(lambda: len(seen) >= 2, timeout=5)
        await sub.unsubscribe()
        await nc.close()
    assert [op for op, _ in seen] == ["DEL", "PUT"]
    assert b'"schedule":"@hourly"' in seen[1][1]


async def test_missing_buckets_are_created_exactly_as_go_and_existing_ones_are_not_altered(nats_server, tmp_path):
    paths = manifest(tmp_path, entries(1))
    async with Store.open(opts(nats_server.url)) as store:
        assert not await store.buckets_exist()
        result = await apply_plan(store, await make_plan(store, paths), replicas=1, memory=True)
        assert result.created_buckets == (CONFIG_BUCKET, ELECTIONS_BUCKET)
        config = (await store.stream_info_summary(CONFIG_BUCKET)).config
        elections = (await store.stream_info_summary(ELECTIONS_BUCKET)).config
        # A second apply with other settings leaves them alone.
        paths = manifest(tmp_path, entries(2))
        second = await apply_plan(store, await make_plan(store, paths), memory=False)
        assert second.created_buckets == ()
        assert (await store.stream_info_summary(CONFIG_BUCKET)).config["storage"] == "memory"
    for key, value in Store.bucket_config(CONFIG_BUCKET, memory=True).items():
        assert config[key] == value, key
    for key, value in Store.bucket_config(ELECTIONS_BUCKET, memory=True).items():
        assert elections[key] == value, key
    assert config["description"] == "Choria Async Jobs Configuration"
    assert config["max_msgs_per_subject"] == 1 and config["max_age"] == 0 and config["storage"] == "memory"
    assert elections["description"] == "Choria Async Jobs Leader Elections"
    assert elections["max_age"] == 10_000_000_000
    assert config["allow_direct"] is True and config["deny_delete"] is True


async def test_concurrent_change_between_plan_and_apply_is_a_stale_plan_naming_the_key(nats_server, tmp_path):
    paths = manifest(tmp_path, entries(3))
    async with Store.open(opts(nats_server.url)) as store:
        assert (await apply_plan(store, await make_plan(store, paths))).complete
        plan = await make_plan(store, manifest(tmp_path, entries(3, schedule="@hourly")))
        records, _ = await read_state(store)
        rev = records.live["scheduled_tasks.s00001"].revision
        # Someone deletes and recreates s00001 by hand after the plan was made.
        tomb = await store.delete("scheduled_tasks.s00001", revision=rev)
        await store.create("scheduled_tasks.s00001", GO_PLAIN, tombstone_revision=tomb)
        with pytest.raises(StalePlanError) as info:
            await apply_plan(store, plan)
        untouched = await live_value(store, "scheduled_tasks.s00000")
    message = str(info.value)
    assert "scheduled_tasks.s00001" in message and "scheduled_tasks.s00000" not in message
    assert len(message.splitlines()) == 1 and "run plan again" in message
    assert untouched is not None and b'"@daily"' in untouched  # nothing was written


async def test_conflict_during_apply_lists_applied_and_not_applied_and_a_rerun_converges(nats_server, tmp_path):
    paths = manifest(tmp_path, entries(2000))
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        plan = await make_plan(store, paths)
        # A second writer creates s00000 the moment our marker for it lands (after the stale
        # check, before our Create): the Create must fail as a conflict, nothing else.
        nc = await nats.connect(nats_server.url)
        js = nc.jetstream()
        kv = await js.key_value(CONFIG_BUCKET)
        hit = asyncio.Event()

        async def interfere(msg: Any) -> None:
            if not hit.is_set():
                hit.set()
                await kv.create("scheduled_tasks.s00000", GO_PLAIN)

        sub = await nc.subscribe(f"$KV.{CONFIG_BUCKET}.{marker_key('s00000')}", cb=interfere)
        await nc.flush()
        result = await apply_plan(store, plan)
        await sub.unsubscribe()
        await nc.close()
        assert hit.is_set()
        assert [name for name, _ in result.not_applied] == ["s00000"]
        assert "revision changed" in result.not_applied[0][1] and "run plan again" in result.not_applied[0][1]
        assert len(result.applied) == 1999
        # Rerun: the record someone else wrote is now under our marker, so it shows as drift
        # and is replaced by Delete then Create; a third plan has nothing to do.
        rerun = await make_plan(store, paths)
        [change] = [c for c in rerun.changes if c.action is not Action.NOOP]
        assert change.name == "s00000" and change.action is Action.UPDATE and change.drift
        assert (await apply_plan(store, rerun)).complete
        final = await make_plan(store, paths)
    assert not final.has_changes and not final.notices


# -- ownership and prune --------------------------------------------------------------------


async def test_prune_never_touches_hand_made_schedules(nats_server, tmp_path):
    paths = manifest(tmp_path, entries(2))
    async with Store.open(opts(nats_server.url)) as store:
        assert (await apply_plan(store, await make_plan(store, paths))).complete
        await store.create(
            "scheduled_tasks.handmade", GO_PLAIN.replace(b"EMAIL_MONTHLY_UPDATE", b"handmade"), tombstone_revision=None
        )
        paths = manifest(tmp_path, entries(1))  # s00001 left Git
        plan = await make_plan(store, paths, prune=True)
        assert {c.name: c.action for c in plan.changes} == {"s00000": Action.NOOP, "s00001": Action.DELETE}
        assert [(n.kind, n.name) for n in plan.notices] == [(NoticeKind.UNMANAGED, "handmade")]
        result = await apply_plan(store, plan)
        records, markers = await read_state(store)
    assert result.applied == ("s00001",)
    assert set(records.live) == {"scheduled_tasks.s00000", "scheduled_tasks.handmade"}
    assert set(markers.live) == {marker_key("s00000")}


async def test_without_prune_removed_schedules_are_kept_and_reported(nats_server, tmp_path):
    paths = manifest(tmp_path, entries(2))
    async with Store.open(opts(nats_server.url)) as store:
        assert (await apply_plan(store, await make_plan(store, paths))).complete
        plan = await make_plan(store, manifest(tmp_path, entries(1)))
    assert not plan.has_changes
    assert [(n.kind, n.name) for n in plan.notices] == [(NoticeKind.NOT_PRUNED, "s00001")]


async def test_an_apply_that_deletes_every_managed_schedule_needs_allow_empty(nats_server, tmp_path):
    paths = manifest(tmp_path, entries(3))
    async with Store.open(opts(nats_server.url)) as store:
        assert (await apply_plan(store, await make_plan(store, paths))).complete
        # A mis-pathed directory (someone else's schedules) replaces every managed one.
        elsewhere = await make_plan(store, manifest(tmp_path, entries(2, prefix="other"), "o.yaml"), prune=True)
        assert elsewhere.to_add == 2 and elsewhere.to_destroy == 0  # both files are in the directory
        (paths / "schedules.yaml").write_text("schedules: []\n")
        mispathed = await make_plan(store, paths, prune=True)
        assert mispathed.to_add == 2 and mispathed.to_destroy == 3
        with pytest.raises(ApplyRefused, match="deletes all 3 managed schedule"):
            await apply_plan(store, mispathed)
        (paths / "o.yaml").unlink()
        plan = await make_plan(store, paths, prune=True)
        assert plan.to_destroy == 3
        with pytest.raises(ApplyRefused, match="deletes all 3 managed schedule"):
            await apply_plan(store, plan)
        assert len((await read_state(store))[0].live) == 3
        result = await apply_plan(store, plan, allow_empty=True)
        records, markers = await read_state(store)
    assert sorted(result.applied) == ["s00000", "s00001", "s00002"]
    assert not records.live and not markers.live


async def test_drift_is_reported_and_repaired(nats_server, tmp_path, capsys):
    paths = manifest(tmp_path, entries(1))
    async with Store.open(opts(nats_server.url)) as store:
        assert (await apply_plan(store, await make_plan(store, paths))).complete
        records, _ = await read_state(store)
        entry = records.live["scheduled_tasks.s00000"]
        tomb = await store.delete(entry.key, revision=entry.revision)
        assert entry.value is not None
        await store.create(entry.key, entry.value.replace(b"@daily", b"@weekly"), tombstone_revision=tomb)
    code = await asyncio.to_thread(
        plan_command.run, PlanOptions((paths,), flags(nats_server.url), detailed_exitcode=True)
    )
    captured = capsys.readouterr()
    assert code == 2
    assert "drift" in captured.out and "s00000" in captured.out
    assert "warning: drift: 1 managed schedule(s) changed outside Git: s00000" in captured.err


# -- saved plans ----------------------------------------------------------------------------


async def test_saved_plan_round_trip_and_stale_saved_plan(nats_server, tmp_path, capsys):
    paths = manifest(tmp_path, entries(3))
    planfile = tmp_path / "plan.out"
    code = await asyncio.to_thread(
        plan_command.run, PlanOptions((paths,), flags(nats_server.url), out=planfile, detailed_exitcode=True)
    )
    assert code == 2
    saved = read_plan(planfile.read_bytes(), str(planfile))
    assert saved.to_add == 3
    run_apply = apply_command.run
    code = await asyncio.to_thread(
        run_apply,
        ApplyOptions((planfile,), flags(nats_server.url), detailed_exitcode=True),
        interactive=False,
    )
    assert code == 2
    assert "Apply complete: 3 added, 0 changed, 0 destroyed." in capsys.readouterr().out
    # Applying the same file again: every key moved since, so it is stale and names them.
    with pytest.raises(StalePlanError, match=r"scheduled_tasks\.s00000.*scheduled_tasks\.s00001"):
        await asyncio.to_thread(run_apply, ApplyOptions((planfile,), flags(nats_server.url)), interactive=False)
    code = await asyncio.to_thread(
        plan_command.run, PlanOptions((paths,), flags(nats_server.url), detailed_exitcode=True)
    )
    assert code == 0
    assert "No changes." in capsys.readouterr().out


async def test_apply_without_a_terminal_refuses_unless_auto_approve(nats_server, tmp_path, capsys):
    paths = manifest(tmp_path, entries(1))
    with pytest.raises(AjcError, match="--auto-approve") as info:
        await asyncio.to_thread(
            apply_command.run,
            ApplyOptions((paths,), flags(nats_server.url)),
            interactive=False,
        )
    assert info.value.exit_code == 1
    async with Store.open(opts(nats_server.url)) as store:
        assert not await store.buckets_exist()  # nothing was written
    answers = iter(["no", "yes"])
    with pytest.raises(AjcError, match="cancelled"):
        await asyncio.to_thread(
            apply_command.run,
            ApplyOptions((paths,), flags(nats_server.url)),
            interactive=True,
            ask=lambda: next(answers),
        )
    code = await asyncio.to_thread(
        apply_command.run,
        ApplyOptions((paths,), flags(nats_server.url), detailed_exitcode=True),
        interactive=True,
        ask=lambda: next(answers),
    )
    assert code == 2
    assert "Apply complete: 1 added" in capsys.readouterr().out


# -- connection failures --------------------------------------------------------------------


async def test_server_down_is_one_line_naming_the_server_within_the_timeout(tmp_path):
    paths = manifest(tmp_path, entries(1))
    url = f"nats://127.0.0.1:{free_ports(1)[0]}"
    started = time.monotonic()
    with pytest.raises(ConnectError) as info:
        await asyncio.to_thread(plan_command.run, PlanOptions((paths,), flags(url, timeout_s=5.0)))
    assert time.monotonic() - started < 5.0  # refused at once, not at the timeout
    assert url in str(info.value) and len(str(info.value).splitlines()) == 1


AUTH = """
authorization {
  users = [
    {user: admin, password: adminpw}
    {user: reader, password: readerpw, permissions: {
      publish: {allow: ["$JS.API.>"]}
      subscribe: {allow: ["_INBOX.>"]}
    }}
  ]
}
"""


async def test_bad_credentials_are_one_clear_line(nats_server_factory, tmp_path):
    server = nats_server_factory(extra_config=AUTH)
    paths = manifest(tmp_path, entries(1))
    with pytest.raises(ConnectError, match="authorization failed") as info:
        await asyncio.to_thread(
            plan_command.run, PlanOptions((paths,), flags(server.url, user="admin", password="nope"))
        )
    assert server.url in str(info.value) and "nope" not in str(info.value)


async def test_user_without_write_permission_can_plan_but_apply_lists_nothing_applied(nats_server_factory, tmp_path):
    server = nats_server_factory(extra_config=AUTH)
    paths = manifest(tmp_path, entries(2))
    async with Store.open(opts(server.url, user="admin", password="adminpw")) as store:
        await store.ensure_buckets()
    async with Store.open(opts(server.url, user="reader", password="readerpw", timeout_s=1.0)) as store:
        plan = await make_plan(store, paths)
        assert plan.to_add == 2
        started = time.monotonic()
        result = await apply_plan(store, plan)
        assert time.monotonic() - started < 5.0
    assert result.applied == ()
    assert [name for name, _ in result.not_applied] == ["s00000", "s00001"]
    reason = result.not_applied[0][1]
    assert (
        "permission denied: not allowed to publish to $KV.CHORIA_AJ_CONFIGURATION.ajc_gitops.managed.s00000" in reason
    )


async def test_the_plan_json_is_machine_readable(nats_server, tmp_path, capsys):
    paths = manifest(tmp_path, entries(2))
    code = await asyncio.to_thread(
        plan_command.run, PlanOptions((paths,), flags(nats_server.url), output_format="json")
    )
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["summary"]["add"] == 2


# -- housekeeping of markers ----------------------------------------------------------------


async def test_drift_with_unchanged_fields_only_refreshes_the_marker(nats_server, tmp_path):
    paths = manifest(tmp_path, entries(1))
    async with Store.open(opts(nats_server.url)) as store:
        assert (await apply_plan(store, await make_plan(store, paths))).complete
        records, _ = await read_state(store)
        entry = records.live["scheduled_tasks.s00000"]
        assert entry.value is not None
        # Re-added by hand with the same fields: only created_at differs.
        tomb = await store.delete(entry.key, revision=entry.revision)
        rewritten = _CREATED_AT.sub(b'"created_at":"2020-01-01T00:00:00Z"', entry.value)
        await store.create(entry.key, rewritten, tombstone_revision=tomb)
        plan = await make_plan(store, paths)
        [change] = plan.changes
        assert change.action is Action.NOOP and change.drift and not plan.has_changes
        result = await apply_plan(store, plan)
        assert result.applied == ("s00000",)
        assert await live_value(store, entry.key) == rewritten  # the record is left alone
        again = await make_plan(store, paths)
    assert not again.drifted and not again.has_changes


async def test_prune_removes_orphan_markers(nats_server, tmp_path):
    paths = manifest(tmp_path, entries(2))
    async with Store.open(opts(nats_server.url)) as store:
        assert (await apply_plan(store, await make_plan(store, paths))).complete
        records, _ = await read_state(store)
        gone = records.live["scheduled_tasks.s00001"]
        await store.delete(gone.key, revision=gone.revision)  # deleted by hand, marker stays
        paths = manifest(tmp_path, entries(1))
        plan = await make_plan(store, paths, prune=True)
        assert [n.kind for n in plan.notices] == [NoticeKind.ORPHAN_MARKER]
        result = await apply_plan(store, plan)
        _, markers = await read_state(store)
    assert result.applied == ("s00001",)
    assert set(markers.live) == {marker_key("s00000")}


async def test_cluster_apply_creates_replicated_buckets(nats_cluster, tmp_path):
    paths = manifest(tmp_path, entries(50))
    async with Store.open(ConnectOptions(servers=tuple(nats_cluster.urls.split(",")), timeout_s=5)) as store:
        result = await apply_plan(store, await make_plan(store, paths), replicas=3)
        assert result.complete and len(result.applied) == 50
        config = (await store.stream_info_summary(CONFIG_BUCKET)).config
        again = await make_plan(store, paths)
    assert config["num_replicas"] == 3
    assert not again.has_changes


# -- store additions ------------------------------------------------------------------------


async def test_update_is_revision_guarded_and_refused_for_schedules(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        rev = await store.create("ajc_gitops.managed.x", b"1", tombstone_revision=None)
        new = await store.update("ajc_gitops.managed.x", b"2", revision=rev)
        assert new > rev
        outcomes = await store.write_many(
            [
                WriteOp.update("ajc_gitops.managed.x", b"3", revision=rev),  # stale guard
                WriteOp.create("ajc_gitops.managed.y", b"1", tombstone_revision=None),
            ]
        )
        assert [o.status for o in outcomes] == ["conflict", "ok"]
        # Contract §0.3: an Update of a schedule is a Put to Go; never built, never sent.
        with pytest.raises(ValueError, match="Delete then Create"):
            WriteOp.update(KEY, b"x", revision=1)
        with pytest.raises(ValueError, match="Delete then Create"):
            await store.update(KEY, b"x", revision=1)
        sneaky = WriteOp("update", KEY, b"x", 1)
        [outcome] = await store.write_many([sneaky])
    assert outcome.status == "error" and "Delete then Create" in (outcome.error or "")


async def test_a_file_that_is_not_a_plan_is_one_clear_error(nats_server, tmp_path):
    bogus = tmp_path / "plan.json"
    bogus.write_text('{"hello": 1}')
    with pytest.raises(AjcError) as info:
        await asyncio.to_thread(apply_command.run, ApplyOptions((bogus,), flags(nats_server.url)))
    assert str(bogus) in str(info.value) and "not an ajc-gitops plan file" in str(info.value)
    assert info.value.exit_code == 1

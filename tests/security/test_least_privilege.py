"""The least-privilege roles of docs/security.md against a real nats-server that loads
``deploy/nats/ajc-gitops-permissions.conf`` as it is (issue 5 item 3): each role does its whole
job with exactly those permissions (the server logs no violation), and is refused what it does
not need (the planner cannot write: the bucket is unchanged)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg

from ajc_gitops.connect import ConnectOptions
from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.errors import AjcError
from ajc_gitops.model import GoTime, MemberRecord, ScheduledTask
from ajc_gitops.names import CONFIG_BUCKET
from ajc_gitops.scheduler.tasks import build_task
from ajc_gitops.state import InitialDone, KvPut, Snapshot, WatchEvent, WriteOp
from ajc_gitops.store import (
    NatsElectionKV,
    QueueSpec,
    Store,
    enqueue_many,
    ensure_queue,
    ensure_task_streams,
    publish_leader_elected,
    read_holder,
    read_members,
    watch_keys,
    write_member,
)
from tests.security.conftest import MANIFEST, RunCli

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PERMISSIONS = ROOT / "deploy" / "nats" / "ajc-gitops-permissions.conf"
USERS_EXAMPLE = ROOT / "deploy" / "nats" / "ajc-gitops-users.example.conf"
DOC = ROOT / "docs" / "security.md"

ADMIN = "ajc-test-admin"  # unrestricted: sets up and inspects, never the user under test
ROLES = {
    "ajc-ci-planner": "AJC_CI_PLANNER",
    "ajc-ci-applier": "AJC_CI_APPLIER",
    "ajc-scheduler": "AJC_SCHEDULER",
    "ajc-bootstrap": "AJC_BOOTSTRAP",
}
TIMEOUT_S = 1.0  # CLI --timeout for runs that end in a refusal
# A refused request waits the whole timeout: nats-py reports the server's -ERR only to the
# error callback, and the Store maps the timeout to the permission error it saw meanwhile.
REFUSAL_TIMEOUT_S = 0.5

# Version 2 of the manifests: SEC_REPORT changed, SEC_CLEANUP gone, SEC_NEW added.
MANIFEST_V2 = """\
schedules:
  - name: SEC_REPORT
    schedule: "0 7 * * *"
    queue: REPORTS
    task_type: report:daily
    payload: {kind: daily}
  - name: SEC_NEW
    schedule: "@hourly"
    task_type: new
"""


@dataclass(frozen=True, slots=True)
class RoleServer:
    server: EmbeddedServer
    passwords: dict[str, str]

    def options(self, user: str, timeout_s: float = TIMEOUT_S) -> ConnectOptions:
        return ConnectOptions(servers=(self.server.url,), user=user, password=self.passwords[user], timeout_s=timeout_s)

    def args(self, user: str) -> list[str]:
        return ["-s", self.server.url, "--user", user, "--password", self.passwords[user]]

    def violations(self) -> list[str]:
        """The permission refusals nats-server logged, as "user publish|subscribe subject"."""
        found = []
        for line in self.server.log_path.read_text().splitlines():
            m = re.search(r'"\$G/user:([^"]+)" - (\w+) Violation - Subject "([^"]+)"', line)
            if m:
                found.append(f"{m.group(1)} {m.group(2).lower()} {m.group(3)}")
        return found


def _password_variables(passwords: dict[str, str]) -> str:
    # Config variables; the example users file reads them as $AJC_..._PASSWORD.
    return "\n".join(f"{ROLES[user]}_PASSWORD: {json.dumps(pw)}" for user, pw in passwords.items() if user in ROLES)


def role_server(nats_server_factory: Callable[..., EmbeddedServer], permissions: str) -> RoleServer:
    """A server with ``permissions`` (the roles file's text), each role as one user, plus an
    unrestricted admin."""
    passwords = {user: f"pw-{secrets.token_hex(6)}" for user in (*ROLES, ADMIN)}
    users = [f"{{user: {ADMIN}, password: {json.dumps(passwords[ADMIN])}}}"] + [
        f"{{user: {user}, password: {json.dumps(passwords[user])}, permissions: ${var}}}" for user, var in ROLES.items()
    ]
    config = "\n".join([permissions, "authorization {", "  users = [", *users, "  ]", "}"])
    return RoleServer(nats_server_factory(extra_config=config), passwords)


@pytest.fixture
def roles(nats_server_factory: Callable[..., EmbeddedServer]) -> RoleServer:
    """A server with the documented roles, each as one user, plus an unrestricted admin."""
    return role_server(nats_server_factory, PERMISSIONS.read_text())


def _write_manifest(directory: Path, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "schedules.yaml").write_text(text)
    return directory


async def _bucket_state(roles: RoleServer) -> tuple[int, Snapshot, Snapshot]:
    async with Store.open(roles.options(ADMIN)) as store:
        summary = await store.stream_info_summary(CONFIG_BUCKET)
        return summary.last_seq, await store.snapshot("scheduled_tasks."), await store.snapshot("ajc_gitops.")


async def _create_task_streams(roles: RoleServer, user: str) -> list[str]:
    """What Go's ``ajc tasks initialize`` and ``ajc queue add REPORTS`` create (contract §1)."""
    async with Store.open(roles.options(user)) as store:
        created = await ensure_task_streams(store)
        if await ensure_queue(store, QueueSpec("REPORTS")):
            created.append("CHORIA_AJ_Q_REPORTS")
        return created


# -- the documentation shows what is tested ------------------------------------------------


def _fenced_blocks(markdown: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^```[a-z]*\n(.*?)^```$", markdown, re.S | re.M)]


def test_the_doc_shows_the_tested_files_verbatim() -> None:
    blocks = _fenced_blocks(DOC.read_text())
    assert PERMISSIONS.read_text() in blocks
    assert USERS_EXAMPLE.read_text() in blocks


async def test_the_example_users_file_loads_and_every_role_logs_in(
    nats_server_factory: Callable[..., EmbeddedServer], tmp_path: Path
) -> None:
    # The example `include`s the permissions file by a relative path: put it beside the
    # server's config, as an operator would.
    name = "ajc-example"
    (tmp_path / name).mkdir()
    shutil.copy(PERMISSIONS, tmp_path / name / PERMISSIONS.name)
    passwords = {user: f"pw-{secrets.token_hex(6)}" for user in ROLES}
    config = _password_variables(passwords) + "\n" + USERS_EXAMPLE.read_text()
    roles = RoleServer(nats_server_factory(server_name=name, extra_config=config), passwords)
    for user in ROLES:
        async with Store.open(roles.options(user)) as store:  # checks $JS.API.INFO too
            assert store.connected
    assert roles.violations() == []


# -- CI planner and applier -------------------------------------------------------------------


def test_planner_plans_and_exports_but_cannot_apply(roles: RoleServer, run_cli: RunCli, tmp_path: Path) -> None:
    v1 = _write_manifest(tmp_path / "v1", MANIFEST)
    v2 = _write_manifest(tmp_path / "v2", MANIFEST_V2)
    assert run_cli("apply", str(v1), *roles.args("ajc-bootstrap"), "--auto-approve").code == 0
    before = asyncio.run(_bucket_state(roles))
    planner = roles.args("ajc-ci-planner")

    planned = run_cli("plan", str(v2), *planner, "--prune", "--detailed-exitcode")
    assert planned.code == 2, planned.text
    assert "Plan: 1 to add, 1 to change, 1 to destroy." in planned.out
    exported = run_cli("export", *planner)
    assert exported.code == 0 and "name: SEC_CLEANUP" in exported.out, exported.text
    assert roles.violations() == []  # reading needed nothing beyond the role

    applied = run_cli("apply", str(v2), *planner, "--prune", "--auto-approve", "--timeout", str(TIMEOUT_S))
    assert applied.code == 1, applied.text
    # It stops at its first refused request (today: apply's check that both buckets exist);
    # the direct write attempts are in test_each_role_is_refused_what_it_does_not_need.
    error = applied.error_line()
    assert re.fullmatch(r"error: .*permission denied: not allowed to publish to \$\S+", error), error
    assert asyncio.run(_bucket_state(roles)) == before  # nothing was written
    refused = roles.violations()
    assert refused and all(v.startswith("ajc-ci-planner publish ") for v in refused), refused


def test_applier_applies_on_bootstrapped_buckets(roles: RoleServer, run_cli: RunCli, tmp_path: Path) -> None:
    v1 = _write_manifest(tmp_path / "v1", MANIFEST)
    v2 = _write_manifest(tmp_path / "v2", MANIFEST_V2)
    applier = roles.args("ajc-ci-applier")
    # On an empty account the applier is told what is missing (docs/security.md, bootstrap).
    refused = run_cli("apply", str(v1), *applier, "--auto-approve", "--timeout", str(TIMEOUT_S))
    assert refused.code == 1
    assert refused.error_line().endswith(
        "create bucket CHORIA_AJ_CONFIGURATION: permission denied: "
        "not allowed to publish to $JS.API.STREAM.CREATE.KV_CHORIA_AJ_CONFIGURATION"
    )
    assert roles.violations() == ["ajc-ci-applier publish $JS.API.STREAM.CREATE.KV_CHORIA_AJ_CONFIGURATION"]

    bootstrapped = run_cli("apply", str(v1), *roles.args("ajc-bootstrap"), "--auto-approve")
    assert "Created CHORIA_AJ_CONFIGURATION, CHORIA_AJ_ELECTIONS" in bootstrapped.out, bootstrapped.text
    assert asyncio.run(_create_task_streams(roles, "ajc-bootstrap")) == [
        "CHORIA_AJ_TASKS",
        "CHORIA_AJ_Q_DEFAULT",
        "CHORIA_AJ_Q_REPORTS",
    ]
    applied = run_cli("apply", str(v2), *applier, "--prune", "--auto-approve", "--detailed-exitcode")
    assert applied.code == 2, applied.text
    assert "Apply complete: 1 added, 1 changed, 1 destroyed." in applied.out
    assert run_cli("plan", str(v2), *applier, "--prune", "--detailed-exitcode").code == 0
    assert len(roles.violations()) == 1  # only the refusal above


# -- scheduler ------------------------------------------------------------------------------

RECORD = (
    b'{"name":"SEC_REPORT","schedule":"0 6 * * *","queue":"REPORTS","task_type":"report:daily",'
    b'"payload":null,"max_tries":10,"created_at":"2026-07-22T08:39:24Z"}'
)


@contextlib.asynccontextmanager
async def _events(roles: RoleServer) -> AsyncIterator[list[Msg]]:
    """What the admin sees on CHORIA_AJ.E.> (core publishes leave no other trace)."""
    seen: list[Msg] = []

    async def collect(msg: Msg) -> None:
        seen.append(msg)

    nc = await nats.connect(roles.server.url, user=ADMIN, password=roles.passwords[ADMIN])
    try:
        await nc.subscribe("CHORIA_AJ.E.>", cb=collect)
        await nc.flush()
        yield seen
    finally:
        await nc.close()


async def _until_initial_done(events: AsyncIterator[WatchEvent]) -> list[WatchEvent]:
    got: list[WatchEvent] = []
    async for event in events:
        got.append(event)
        if isinstance(event, InitialDone):
            return got
    raise AssertionError("the watch ended")


async def test_scheduler_does_every_store_operation_with_its_role_alone(
    roles: RoleServer, async_wait_until: Callable[..., Awaitable[Any]]
) -> None:
    async with Store.open(roles.options(ADMIN)) as admin:
        await admin.ensure_buckets()
        await ensure_task_streams(admin)
        await ensure_queue(admin, QueueSpec("REPORTS"))
        await admin.create("scheduled_tasks.SEC_REPORT", RECORD, tombstone_revision=None)

    async with _events(roles) as events, Store.open(roles.options("ajc-scheduler", 5.0)) as store:
        # Start-up (scheduler/runner.py): load-or-create finds everything in place.
        assert await store.ensure_buckets() == []
        assert await ensure_task_streams(store) == []

        # Election (contract §5): TTL from the bucket, Create, CAS Update, guarded Delete, and
        # a Create over the tombstone (which reads the last message of the key).
        election = NatsElectionKV(store)
        assert await election.bucket_ttl() == 10.0
        won = await election.create(b"sched-a", timeout=2.0)
        refreshed = await election.update(b"sched-a", revision=won, timeout=2.0)
        await election.delete(revision=refreshed, timeout=2.0)
        assert await election.create(b"sched-a", timeout=2.0) > refreshed

        # The group (scheduler/group.py): its own member marker, the others', the holder.
        await write_member(store, MemberRecord(name="sched-a", started_ns=1))
        assert [m.name for m in await read_members(store)] == ["sched-a"]
        assert (await read_holder(store, timeout=2.0)).name == "sched-a"

        # Following the schedules: the watch, then a resync from a snapshot.
        async with contextlib.aclosing(watch_keys(store, heartbeat_s=1.0)) as watch:
            initial = await asyncio.wait_for(_until_initial_done(watch), 10)
        assert [e.key for e in initial if isinstance(e, KvPut)] == ["scheduled_tasks.SEC_REPORT"]
        await store.stream_info_summary(CONFIG_BUCKET)
        assert list((await store.snapshot()).live) == ["scheduled_tasks.SEC_REPORT"]
        (resynced,) = await store.snapshots(("scheduled_tasks.",))
        assert list(resynced.live) == ["scheduled_tasks.SEC_REPORT"]
        assert await store._leader_has("KV_CHORIA_AJ_CONFIGURATION", 1)  # a resync that looks behind

        # Firing (contract §4.4): task record, work item, state event; a second attempt at the
        # same slot is found by reading the task's last message.
        schedule = ScheduledTask(
            name="SEC_REPORT", schedule="0 6 * * *", queue="REPORTS", task_type="report:daily", payload=None
        )
        task = build_task(schedule, datetime(2026, 8, 1, 6, tzinfo=UTC), created=GoTime(0))
        [first] = await enqueue_many(store, [task])
        [again] = await enqueue_many(store, [task])
        assert (first.status, again.status) == ("enqueued", "duplicate"), (first, again)
        await publish_leader_elected(store, "sched-a")

        subjects = await async_wait_until(
            lambda: {m.subject for m in events} if len(events) >= 2 else None, 5.0, "the scheduler's events"
        )
    assert subjects == {f"CHORIA_AJ.E.task_state.{task.id}", "CHORIA_AJ.E.leader_election.task_scheduler"}
    assert roles.violations() == []


async def test_large_reads_stay_within_the_roles(roles: RoleServer) -> None:
    # A few MB make the server ask for flow control (it stalls at ~2 MB without a reply), the
    # reason every reading role may publish to $JS.FC.KV_CHORIA_AJ_CONFIGURATION.>.
    count, value = 1500, b"x" * 2048
    async with Store.open(roles.options(ADMIN, 5.0)) as admin:
        await admin.ensure_buckets()
        ops = [WriteOp.create(f"scheduled_tasks.big{i:05d}", value, tombstone_revision=None) for i in range(count)]
        assert {o.status for o in await admin.write_many(ops)} == {"ok"}
    for user in ("ajc-ci-planner", "ajc-ci-applier", "ajc-scheduler"):
        async with Store.open(roles.options(user, 5.0)) as store:
            assert len(await store.snapshot()) == count
    for user in ("ajc-ci-planner", "ajc-ci-applier"):
        async with Store.open(roles.options(user, 5.0)) as store:
            records, _markers = await store.snapshots(("scheduled_tasks.", "ajc_gitops.managed."))
            assert len(records) == count
            # What a read that looks behind the stream leader asks (Store.snapshots).
            assert await store._leader_has("KV_CHORIA_AJ_CONFIGURATION", count)
    async with (
        Store.open(roles.options("ajc-scheduler", 5.0)) as store,
        contextlib.aclosing(watch_keys(store, heartbeat_s=1.0)) as watch,
    ):
        events = await asyncio.wait_for(_until_initial_done(watch), 20)
    assert events[-1] == InitialDone(1, count)
    assert roles.violations() == []


# -- what each role is refused ----------------------------------------------------------------

Attempt = Callable[[Store], Awaitable[object]]


async def _write_schedule(store: Store) -> object:
    return await store.create("scheduled_tasks.EVIL", RECORD, tombstone_revision=None)


async def _delete_schedule(store: Store) -> object:
    return await store.delete("scheduled_tasks.SEC_REPORT", revision=1)


async def _write_marker(store: Store) -> object:
    return await store.create("ajc_gitops.managed.EVIL", b"{}", tombstone_revision=None)


async def _take_the_election(store: Store) -> object:
    return await NatsElectionKV(store).create(b"evil", timeout=REFUSAL_TIMEOUT_S)


async def _create_a_queue(store: Store) -> object:
    return await ensure_queue(store, QueueSpec("EVIL"))


async def _enqueue(store: Store) -> object:
    schedule = ScheduledTask(name="EVIL", schedule="@daily", queue="REPORTS", task_type="evil", payload=None)
    [outcome] = await enqueue_many(store, [build_task(schedule, datetime(2026, 8, 1, tzinfo=UTC), created=GoTime(0))])
    if outcome.status != "enqueued":
        raise AjcError(outcome.error or outcome.status)
    return outcome


async def _delete_the_bucket(store: Store) -> object:
    # No public Store call deletes a stream (nothing in ajc-gitops may); the Store's own
    # request path still maps the refusal.
    return await store.api_request("STREAM.DELETE.KV_CHORIA_AJ_CONFIGURATION", None, what="delete the bucket")


REFUSED: dict[str, list[Attempt]] = {
    "ajc-ci-planner": [
        _write_schedule,
        _delete_schedule,
        _write_marker,
        _take_the_election,
        _enqueue,
        _create_a_queue,
        _delete_the_bucket,
    ],
    "ajc-ci-applier": [_take_the_election, _enqueue, _create_a_queue, _delete_the_bucket],
    "ajc-scheduler": [_write_schedule, _delete_schedule, _write_marker, _create_a_queue, _delete_the_bucket],
    "ajc-bootstrap": [_take_the_election, _enqueue, _delete_the_bucket],
}


@pytest.mark.parametrize("user", list(REFUSED))
async def test_each_role_is_refused_what_it_does_not_need(roles: RoleServer, user: str) -> None:
    async with Store.open(roles.options(ADMIN)) as admin:
        await admin.ensure_buckets()
        await ensure_task_streams(admin)
        await ensure_queue(admin, QueueSpec("REPORTS"))
        await admin.create("scheduled_tasks.SEC_REPORT", RECORD, tombstone_revision=None)
    before = await _bucket_state(roles)
    async with Store.open(roles.options(user, REFUSAL_TIMEOUT_S)) as store:
        for attempt in REFUSED[user]:
            with pytest.raises(AjcError, match="permission denied") as info:
                await attempt(store)
            assert len(str(info.value).splitlines()) == 1, (attempt.__name__, str(info.value))
    assert await _bucket_state(roles) == before
    assert {v.split()[0] for v in roles.violations()} == {user}

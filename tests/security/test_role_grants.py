"""Every grant of the CI planner, CI applier and bootstrap roles is needed (issue 9 item 4):
each role does its real work through the CLI (``plan`` and ``export``; ``apply`` and ``plan``;
``apply`` on an empty account and the asyncjobs streams) against a real nats-server with the
documented permissions, and, with any one grant taken out, that work fails (an exit code or
output that differs, or a refusal in nats-server's log). Grants no such path can show needed
are in ``KEPT``, each with its reason (docs/security.md, "Is every grant needed?").

The scheduler role's cycle is in ``test_scheduler_role_process.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.errors import AjcError
from ajc_gitops.store import QueueSpec, Store, ensure_queue, ensure_task_streams
from tests.security import test_least_privilege
from tests.security.conftest import MANIFEST, MANIFEST_NAMES, RunCli
from tests.security.grants import permission_lines, reduced_server, role_grants
from tests.security.test_least_privilege import ADMIN, MANIFEST_V2, ROLES, RoleServer

pytestmark = pytest.mark.integration
roles = test_least_privilege.roles  # the fixture: a server with the documented roles

# Short enough that a refused request (which waits the whole timeout) ends soon, long enough
# for every granted request on a loaded 2-core machine.
TIMEOUT = "3"
USERS = {role: user for user, role in ROLES.items()}


def _manifest(directory: Path, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    (directory / "schedules.yaml").write_text(text)
    return directory


def _check(result_ok: bool, what: str, text: str) -> None:
    assert result_ok, f"{what}:\n{text}"
    assert permission_lines(text) == [], permission_lines(text)


async def _streams_and_queues(roles: RoleServer, user: str) -> list[str]:
    """What Go's ``ajc tasks initialize`` and ``ajc queue add REPORTS`` create (contract §1); the
    scheduler makes the same calls at start on an account it may create streams in."""
    async with Store.open(roles.options(user, float(TIMEOUT))) as store:
        created = await ensure_task_streams(store)
        if await ensure_queue(store, QueueSpec("REPORTS")):
            created.append("CHORIA_AJ_Q_REPORTS")
        return created


def _bootstrap_as_admin(roles: RoleServer, run_cli: RunCli, tmp_path: Path) -> None:
    applied = run_cli("apply", str(_manifest(tmp_path / "v1", MANIFEST)), *roles.args(ADMIN), "--auto-approve")
    assert applied.code == 0, applied.text
    asyncio.run(_streams_and_queues(roles, ADMIN))


def _planner_work(roles: RoleServer, run_cli: RunCli, tmp_path: Path) -> None:
    _bootstrap_as_admin(roles, run_cli, tmp_path)
    planner = [*roles.args(USERS["AJC_CI_PLANNER"]), "--timeout", TIMEOUT]
    v2 = _manifest(tmp_path / "v2", MANIFEST_V2)
    planned = run_cli("plan", str(v2), *planner, "--prune", "--detailed-exitcode")
    ok = planned.code == 2 and "Plan: 1 to add, 1 to change, 1 to destroy." in planned.out
    _check(ok, "plan", planned.text)
    exported = run_cli("export", *planner)
    ok = exported.code == 0 and all(f"name: {name}" in exported.out for name in MANIFEST_NAMES)
    _check(ok, "export", exported.text)


def _applier_work(roles: RoleServer, run_cli: RunCli, tmp_path: Path) -> None:
    _bootstrap_as_admin(roles, run_cli, tmp_path)
    applier = [*roles.args(USERS["AJC_CI_APPLIER"]), "--timeout", TIMEOUT]
    v2 = _manifest(tmp_path / "v2", MANIFEST_V2)
    applied = run_cli("apply", str(v2), *applier, "--prune", "--auto-approve", "--detailed-exitcode")
    ok = applied.code == 2 and "Apply complete: 1 added, 1 changed, 1 destroyed." in applied.out
    _check(ok, "apply", applied.text)
    planned = run_cli("plan", str(v2), *applier, "--prune", "--detailed-exitcode")
    _check(planned.code == 0, "plan after apply", planned.text)


def _bootstrap_work(roles: RoleServer, run_cli: RunCli, tmp_path: Path) -> None:
    user = USERS["AJC_BOOTSTRAP"]
    v1 = _manifest(tmp_path / "v1", MANIFEST)
    applied = run_cli("apply", str(v1), *roles.args(user), "--timeout", TIMEOUT, "--auto-approve")
    ok = applied.code == 0 and "Created CHORIA_AJ_CONFIGURATION, CHORIA_AJ_ELECTIONS" in applied.out
    _check(ok, "apply on an empty account", applied.text)
    try:
        created = asyncio.run(_streams_and_queues(roles, user))
    except AjcError as exc:
        raise AssertionError(f"creating the asyncjobs streams: {exc}") from None
    assert created == ["CHORIA_AJ_TASKS", "CHORIA_AJ_Q_DEFAULT", "CHORIA_AJ_Q_REPORTS"], created
    again = run_cli("plan", str(v1), *roles.args(user), "--timeout", TIMEOUT, "--detailed-exitcode")
    _check(again.code == 0, "plan after the bootstrap", again.text)


Work = Callable[[RoleServer, RunCli, Path], None]
WORK: dict[str, Work] = {
    "AJC_CI_PLANNER": _planner_work,
    "AJC_CI_APPLIER": _applier_work,
    "AJC_BOOTSTRAP": _bootstrap_work,
}

# Grants the work above does not reach, each kept for the path named here (docs/security.md,
# "Is every grant needed?"). The same paths of a read are the scheduler's KEPT ones.
_STALL = "a read that stalls short of its count (keys purged meanwhile) asks its consumer"
_LARGE = "flow control of a large read (a few MB of schedules; test_large_reads_stay_within_the_roles)"
_BEHIND = "a read that looks behind a lagging replica asks the stream leader (cluster)"
KEPT: dict[str, dict[str, str]] = {
    "AJC_CI_PLANNER": {
        "$JS.API.CONSUMER.INFO.KV_CHORIA_AJ_CONFIGURATION.*": _STALL,
        "$JS.FC.KV_CHORIA_AJ_CONFIGURATION.>": _LARGE,
        "$JS.API.STREAM.MSG.GET.KV_CHORIA_AJ_CONFIGURATION": _BEHIND,
    },
    "AJC_CI_APPLIER": {
        "$JS.API.CONSUMER.INFO.KV_CHORIA_AJ_CONFIGURATION.*": _STALL,
        "$JS.FC.KV_CHORIA_AJ_CONFIGURATION.>": _LARGE,
        "$JS.API.STREAM.MSG.GET.KV_CHORIA_AJ_CONFIGURATION": _BEHIND,
    },
    "AJC_BOOTSTRAP": {
        "$JS.API.CONSUMER.INFO.KV_CHORIA_AJ_CONFIGURATION.*": _STALL,
        "$JS.FC.KV_CHORIA_AJ_CONFIGURATION.>": _LARGE,
    },
}


def _work(role: str, roles: RoleServer, run_cli: RunCli, tmp_path: Path) -> None:
    WORK[role](roles, run_cli, tmp_path)
    assert roles.violations() == []


@pytest.mark.parametrize("role", list(WORK))
def test_each_role_does_its_work_with_its_grants(role: str, roles: RoleServer, run_cli: RunCli, tmp_path: Path) -> None:
    """The baseline the removals below are measured against: with the documented grants the
    work succeeds and nothing is refused."""
    _work(role, roles, run_cli, tmp_path)


def test_the_kept_grants_are_the_roles_own() -> None:
    for role, kept in KEPT.items():
        assert set(kept) <= set(role_grants(role)), role


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("role", "grant"), [(role, g) for role in WORK for g in role_grants(role) if g not in KEPT[role]]
)
def test_each_grant_is_needed(
    role: str,
    grant: str,
    nats_server_factory: Callable[..., EmbeddedServer],
    run_cli: RunCli,
    tmp_path: Path,
) -> None:
    """Without ``grant`` the role's work fails somewhere, or a refusal is logged."""
    reduced = reduced_server(nats_server_factory, role, grant)
    with pytest.raises(AssertionError):
        _work(role, reduced, run_cli, tmp_path)

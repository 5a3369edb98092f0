"""A real ``ajc-gitops scheduler`` process under the ``AJC_SCHEDULER`` role of
``deploy/nats/ajc-gitops-permissions.conf``, through a whole working life: it campaigns, leads,
fires, follows a schedule added while it runs, keeps firing and resyncs after the NATS server
restarts under it, and releases the election key on SIGTERM. Neither its log nor the server's
shows a permission refusal. ``test_least_privilege.py`` replays the store calls one by one;
this is the process itself, so a call added to the scheduler without its grant fails here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ajc_gitops.embedded import EmbeddedServer
from ajc_gitops.names import ELECTIONS_BUCKET
from ajc_gitops.scheduler.runner import SHORT_TTL_ENV
from ajc_gitops.store import Store, ensure_task_streams, read_holder
from tests.scheduler_support import SHORT_TTL, fired_after, put_schedule, record
from tests.security import test_least_privilege
from tests.security.grants import admin_url, permission_lines, reduced_server, role_grants
from tests.security.test_least_privilege import ADMIN, RoleServer
from tests.waiting import wait_until

pytestmark = pytest.mark.integration
roles = test_least_privilege.roles  # the fixture: a server with the documented roles

NAME = "sched-role"
USER = "ajc-scheduler"
ROLE = "AJC_SCHEDULER"
# Win: up to TTL + 2 intervals; first fires need a second or two more.
LEAD_S = 3 * SHORT_TTL + 5
POLL_S = 0.2


async def _prepare(roles: RoleServer) -> None:
    """What the bootstrap role (or Go's ``ajc``) creates, with the tests' short election TTL."""
    async with Store.open(roles.options(ADMIN, 5.0)) as admin:
        config = Store.bucket_config(ELECTIONS_BUCKET)
        config["max_age"] = config["duplicate_window"] = int(SHORT_TTL * 1e9)
        await admin.api_request(f"STREAM.CREATE.KV_{ELECTIONS_BUCKET}", config, what="short-TTL elections")
        await admin.ensure_buckets()
        await ensure_task_streams(admin)


async def _holder(roles: RoleServer) -> str | None:
    async with Store.open(roles.options(ADMIN, 5.0)) as admin:
        return (await read_holder(admin, timeout=2.0)).name


def _put(roles: RoleServer, name: str) -> None:
    asyncio.run(put_schedule(admin_url(roles), name, record(name, "@every 1s", created_ns=time.time_ns())))


def _cycle(roles: RoleServer, tmp_path: Path) -> None:
    """The whole working life of one scheduler process under the role; fails at the first step
    that does not happen, or on any permission refusal in its log or the server's."""
    asyncio.run(_prepare(roles))
    admin = admin_url(roles)
    _put(roles, "before")
    env = {**os.environ, SHORT_TTL_ENV: "1", "NO_COLOR": "1"}
    for var in ("NATS_URL", "NATS_CONTEXT", "NATS_USER", "NATS_PASSWORD", "AJC_SCHEDULER_NAME"):
        env.pop(var, None)
    log_path = tmp_path / "scheduler.log"
    cmd = [sys.executable, "-m", "ajc_gitops", "scheduler", NAME, "-s", roles.server.url, "--user", USER,
           "--password", roles.passwords[USER], "--log-format", "json"]  # fmt: skip
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env)
    try:
        # Campaign and lead, then fire.
        wait_until(lambda: asyncio.run(_holder(roles)) == NAME, LEAD_S, "the scheduler to lead", POLL_S)
        started = time.time()
        wait_until(lambda: fired_after(admin, started, 2, ("t:before",)), 15, "fires", POLL_S)
        # Follow: a schedule written while it runs.
        _put(roles, "during")
        added = time.time()
        wait_until(lambda: fired_after(admin, added, 2, ("t:during",)), 15, "the added schedule's fires", POLL_S)
        # The server restarts under it: it reconnects, re-watches, resyncs and fires on.
        roles.server.restart()
        back = time.time()
        _put(roles, "after")
        wait_until(
            lambda: fired_after(admin, back + 1, 2, ("t:before", "t:during", "t:after")),
            30,
            "fires of every schedule after the restart",
            POLL_S,
        )
        assert proc.poll() is None, "the scheduler exited"
        # SIGTERM: exit 0 and the key released (deleted, not left to expire).
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert asyncio.run(_holder(roles)) is None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert permission_lines(text) == [], permission_lines(text)
    assert roles.violations() == []
    messages = [json.loads(line)["msg"] for line in text.splitlines() if line.startswith("{")]
    assert any(m.startswith("leading:") for m in messages), messages[:20]


def test_the_scheduler_process_runs_a_whole_cycle_with_its_role_alone(roles: RoleServer, tmp_path: Path) -> None:
    _cycle(roles, tmp_path)


# -- every grant of the role is needed ------------------------------------------------------

# Grants the cycle above does not reach, each kept for the path named here (docs/security.md,
# "Is every grant needed?"); the first three are replayed by test_least_privilege.py.
KEPT = {
    "$JS.API.STREAM.MSG.GET.KV_CHORIA_AJ_CONFIGURATION": "a resync that looks behind a lagging replica",
    "$JS.FC.KV_CHORIA_AJ_CONFIGURATION.>": "flow control of a large read (a few MB of schedules)",
    "$JS.API.STREAM.MSG.GET.CHORIA_AJ_TASKS": "a second attempt at a slot (another leader fired it)",
    "$JS.API.STREAM.INFO.CHORIA_AJ_Q_DEFAULT": "a work item answered 'no responders'",
    "$JS.API.CONSUMER.INFO.KV_CHORIA_AJ_CONFIGURATION.*": "a resync whose read stalls short of its count",
}


def test_the_kept_grants_are_the_roles_own() -> None:
    assert set(KEPT) <= set(role_grants(ROLE))


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("grant", [g for g in role_grants(ROLE) if g not in KEPT])
def test_each_scheduler_grant_is_needed(
    grant: str, nats_server_factory: Callable[..., EmbeddedServer], tmp_path: Path
) -> None:
    """Without ``grant`` some step of the cycle fails, or a refusal is logged."""
    reduced = reduced_server(nats_server_factory, ROLE, grant)
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        _cycle(reduced, tmp_path)

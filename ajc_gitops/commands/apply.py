"""`ajc-gitops apply`: apply a saved plan exactly, or plan, show, confirm and apply."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from ajc_gitops import output
from ajc_gitops.commands import common
from ajc_gitops.commands.options import ApplyOptions
from ajc_gitops.errors import AjcError, ApplyCancelled, ApplyIncomplete, CommandError
from ajc_gitops.manifest.load import MANIFEST_SUFFIXES, LoadResult
from ajc_gitops.plan.model import Action, Plan
from ajc_gitops.plan.planfile import read_plan
from ajc_gitops.render.plan_common import summary as plan_summary
from ajc_gitops.store import Store
from ajc_gitops.sync.apply import ApplyResult, apply_plan, check_allowed, work

PROMPT = "Do you want to apply these changes? Only 'yes' will be accepted:"
_LISTED = 20


def saved_plan_path(paths: Sequence[Path]) -> Path | None:
    """A single argument naming a file that is not a YAML manifest is a saved plan."""
    if len(paths) == 1 and paths[0].is_file() and paths[0].suffix not in MANIFEST_SUFFIXES:
        return paths[0]
    return None


def read_saved_plan(path: Path) -> Plan:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AjcError(f"{path}: cannot read the plan file: {exc.strerror or exc}") from exc
    return read_plan(data, str(path))


def _stdin_prompt() -> str:
    output.write(PROMPT)
    return sys.stdin.readline().strip()


def summary(plan: Plan, applied: Sequence[str], *, complete: bool = True) -> str:
    done = set(applied)
    counts = {a: sum(1 for c in plan.changes if c.action is a and c.name in done) for a in Action}
    changed = counts[Action.UPDATE] + counts[Action.ADOPT]
    head = "Apply complete" if complete else "Apply incomplete"
    text = f"{head}: {counts[Action.CREATE]} added, {changed} changed, {counts[Action.DELETE]} destroyed"
    if counts[Action.SUSPEND]:
        text += f", {counts[Action.SUSPEND]} suspended"
    if counts[Action.RESUME]:
        text += f", {counts[Action.RESUME]} resumed"
    return text + "."


async def _confirm(plan: Plan, opts: ApplyOptions, *, interactive: bool, ask: Callable[[], str]) -> None:
    if opts.auto_approve or not plan.has_changes:
        return
    if not interactive:
        raise CommandError(
            "refusing to apply without confirmation: stdin is not a terminal; review the plan and "
            "pass --auto-approve, or save it with 'plan --out FILE' and run 'apply FILE'"
        )
    if await common.ask_in_thread(ask) != "yes":
        raise ApplyCancelled("apply cancelled: only 'yes' is accepted; nothing was changed")


async def _apply(
    saved: Plan | None,
    loaded: LoadResult | None,
    opts: ApplyOptions,
    adopt: frozenset[str],
    *,
    now: datetime,
    interactive: bool,
    ask: Callable[[], str],
) -> tuple[Plan, ApplyResult | None] | None:
    """The plan and what applying it did; None once schedules the server would refuse have
    been shown."""
    async with Store.open(common.connect_options(opts.connect)) as store:
        if saved is not None:
            plan = saved
            common.saved_plan_fits_server(plan, store)
            output.write(f"Applying the plan saved at {plan.created_at}: {plan_summary(plan)}")
            if plan.server != store.server:
                output.error(f"note: the plan was made against {plan.server}; applying it to {store.server}")
        else:
            assert loaded is not None
            if not common.fits_server(loaded, store):
                return None
            plan = await common.make_plan(store, loaded.schedules, now=now, prune=opts.prune, adopt=adopt)
            output.write(common.render_plan(plan, "text"))
            common.report_drift(plan)
        check_allowed(plan, allow_empty=opts.allow_empty)  # before asking anyone
        if not work(plan):
            return plan, None
        if saved is None:
            await _confirm(plan, opts, interactive=interactive, ask=ask)
        return plan, await apply_plan(
            store, plan, allow_empty=opts.allow_empty, replicas=opts.replicas, memory=opts.memory
        )


def run(
    opts: ApplyOptions,
    *,
    now: datetime | None = None,
    interactive: bool | None = None,
    ask: Callable[[], str] = _stdin_prompt,
) -> int:
    now = now or datetime.now(UTC)
    if not 1 <= opts.replicas <= 5:
        raise CommandError(f"--replicas must be between 1 and 5 (a JetStream limit), not {opts.replicas}")
    adopt = common.adopt_names(opts.adopt)
    saved_path = saved_plan_path(opts.paths)
    saved: Plan | None = None
    loaded: LoadResult | None = None
    if saved_path is not None:
        if opts.prune or opts.adopt:
            raise CommandError("--prune and --adopt are decided when planning; a saved plan is applied as it is")
        saved = read_saved_plan(saved_path)
    else:
        loaded = common.load_desired(opts.paths, now=now)
        if loaded is None:
            return common.EXIT_ERROR
    if interactive is None:
        interactive = sys.stdin.isatty()
    outcome = asyncio.run(_apply(saved, loaded, opts, adopt, now=now, interactive=interactive, ask=ask))
    if outcome is None:
        return common.EXIT_ERROR
    plan, result = outcome
    if result is None:
        if saved_path is not None:  # the plan shown above already says so otherwise
            output.write("No changes. The store matches the manifests.")
        return common.EXIT_OK
    if result.created_buckets:
        output.write(f"Created {', '.join(result.created_buckets)} with the settings asyncjobs uses.")
    output.write(summary(plan, result.applied, complete=result.complete))
    if result.not_applied:
        output.write(f"Not applied ({len(result.not_applied)}):")
        for name, reason in result.not_applied[:_LISTED]:
            output.write(f"  - {name}: {reason}")
        if len(result.not_applied) > _LISTED:
            output.write(f"  ... and {len(result.not_applied) - _LISTED} more")
        first, why = result.not_applied[0]
        raise ApplyIncomplete(
            f"apply incomplete: {len(result.applied)} applied, {len(result.not_applied)} not applied "
            f"(listed above); first {first}: {why}; fix that, then run plan and apply again to converge"
        )
    if opts.detailed_exitcode and plan.has_changes:
        return common.EXIT_CHANGES
    return common.EXIT_OK

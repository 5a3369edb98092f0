"""`ajc-gitops plan`: what apply would change in the live store, optionally saved to a file."""

from __future__ import annotations

import asyncio
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from ajc_gitops import output
from ajc_gitops.commands import common
from ajc_gitops.commands.options import PlanOptions
from ajc_gitops.errors import AjcError, PlanBlocked
from ajc_gitops.manifest.load import LoadResult
from ajc_gitops.plan.model import Plan
from ajc_gitops.plan.planfile import write_plan
from ajc_gitops.store import Store


def save_plan(plan: Plan, path: Path) -> None:
    """Write the plan file atomically: a half-written plan must never be applied."""
    data = write_plan(plan)
    directory = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise AjcError(f"{path}: cannot write the plan file: {exc.strerror or exc}") from exc


def finish(plan: Plan, *, detailed_exitcode: bool) -> int:
    common.report_drift(plan)
    if plan.blocked:
        raise PlanBlocked(
            f"the plan has {len(plan.blocked)} blocking notice(s) (shown above) and apply would refuse it; "
            f"first: {plan.blocked[0].message}"
        )
    if detailed_exitcode and plan.has_changes:
        return common.EXIT_CHANGES
    return common.EXIT_OK


async def _plan(opts: PlanOptions, loaded: LoadResult, *, now: datetime, adopt: frozenset[str]) -> Plan | None:
    """The plan, or None once schedules the server would refuse have been shown."""
    async with Store.open(common.connect_options(opts.connect)) as store:
        if not common.fits_server(loaded, store, opts.output_format):
            return None
        return await common.make_plan(store, loaded.schedules, now=now, prune=opts.prune, adopt=adopt)


def run(opts: PlanOptions, *, now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    adopt = common.adopt_names(opts.adopt)
    loaded = common.load_desired(opts.paths, now=now, output_format=opts.output_format)
    if loaded is None:
        return common.EXIT_ERROR
    plan = asyncio.run(_plan(opts, loaded, now=now, adopt=adopt))
    if plan is None:
        return common.EXIT_ERROR
    output.write(common.render_plan(plan, opts.output_format))
    if opts.out is not None:
        save_plan(plan, opts.out)
        output.error(f"Saved the plan to {opts.out}; apply exactly this plan with: ajc-gitops apply {opts.out}")
    return finish(plan, detailed_exitcode=opts.detailed_exitcode)

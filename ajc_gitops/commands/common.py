"""What plan, apply, export and dev share: connection options, manifests or their problems,
planning against the live store, and the exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from ajc_gitops import output
from ajc_gitops.connect import ConnectFlags, ConnectOptions, resolve_connect_options
from ajc_gitops.errors import CommandError
from ajc_gitops.manifest.load import DesiredSchedule, LoadResult, load_manifests
from ajc_gitops.plan.diff import compute_plan
from ajc_gitops.plan.model import Plan
from ajc_gitops.plan.queues import unchecked_warning
from ajc_gitops.render.plan import PLAN_RENDERERS
from ajc_gitops.render.problems import RENDERERS as PROBLEM_RENDERERS
from ajc_gitops.rules import name_problem
from ajc_gitops.store import Store
from ajc_gitops.sync.state import read_queues, read_state

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2  # --detailed-exitcode: changes present (plan) or applied (apply), as Terraform


def connect_options(flags: ConnectFlags) -> ConnectOptions:
    return resolve_connect_options(flags, os.environ)


def load_desired(paths: Sequence[Path], *, now: datetime, output_format: str = "text") -> LoadResult | None:
    """The manifests, or ``None`` after printing their problems the way ``validate`` does.

    Warnings alone do not block; they go to stderr so stdout stays the plan (JSON stays JSON).
    """
    result = load_manifests(paths, now=now)
    if result.errors or result.missing_paths:
        render = PROBLEM_RENDERERS.get(output_format, PROBLEM_RENDERERS["text"])
        output.write(render(result))
        return None
    for problem in result.problems:
        output.error(str(problem))
    return result


def adopt_names(values: Iterable[str]) -> frozenset[str]:
    """``--adopt`` may be repeated and each may be a comma list (names never contain commas)."""
    names = {name.strip() for value in values for name in value.split(",") if name.strip()}
    for name in sorted(names):
        if (problem := name_problem(name)) is not None:
            raise CommandError(f"--adopt {name!r}: {problem}")
    return frozenset(names)


async def make_plan(
    store: Store,
    desired: Sequence[DesiredSchedule],
    *,
    now: datetime,
    prune: bool,
    adopt: frozenset[str],
) -> Plan:
    """Read records and markers (complete, contract §2.1) and the queues that exist, and diff
    them against ``desired``."""
    records, markers = await read_state(store)
    queues, unlisted = await read_queues(store)
    plan = compute_plan(
        desired, records, markers, now=now, server=store.server, prune=prune, adopt=adopt, queues=queues
    )
    return plan if unlisted is None else replace(plan, warnings=(*plan.warnings, unchecked_warning(unlisted)))


def render_plan(plan: Plan, output_format: str) -> str:
    return PLAN_RENDERERS[output_format](plan, color=output_format == "text" and output.use_color(sys.stdout))


def report_drift(plan: Plan) -> None:
    """Drift (a managed schedule changed outside Git) also goes to stderr, whatever the format."""
    drifted = [c.name for c in plan.drifted]
    if drifted:
        shown = ", ".join(drifted[:10]) + (f" and {len(drifted) - 10} more" if len(drifted) > 10 else "")
        output.error(f"warning: drift: {len(drifted)} managed schedule(s) changed outside Git: {shown}")

"""What plan, apply, export and dev share: connection options, manifests or their problems,
planning against the live store, and the exit codes."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from ajc_gitops import output
from ajc_gitops.connect import ConnectFlags, ConnectOptions, resolve_connect_options
from ajc_gitops.errors import ApplyRefused, CommandError
from ajc_gitops.manifest.fit import size_problems, too_large
from ajc_gitops.manifest.load import DesiredSchedule, LoadResult, load_manifests, sized
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
    Sizes are checked once connected (``fits_server``), against the server's own max_payload.
    """
    result = load_manifests(paths, now=now, max_payload=None)
    if result.errors or result.missing_paths:
        _show_problems(result, output_format)
        return None
    for problem in result.problems:
        output.error(str(problem))
    return result


def _show_problems(result: LoadResult, output_format: str) -> None:
    render = PROBLEM_RENDERERS.get(output_format, PROBLEM_RENDERERS["text"])
    output.write(render(result))


def fits_server(loaded: LoadResult, store: Store, output_format: str = "text") -> bool:
    """Whether every record and task the schedules make fits the connected server's
    max_payload; if not, its problems are shown as ``validate`` shows them."""
    limit = f"the max_payload of {store.max_payload:,} bytes of {store.server}"
    problems = size_problems(sized(loaded.schedules), store.max_payload, limit)
    if problems:
        _show_problems(replace(loaded, problems=tuple(problems)), output_format)
    return not problems


def saved_plan_fits_server(plan: Plan, store: Store) -> None:
    """A saved plan may have been made against another server: check what it would write."""
    limit = f"the max_payload of {store.max_payload:,} bytes of {store.server}"
    for change in plan.changes:
        if change.desired is not None and change.value is not None:
            message = too_large(change.desired, store.max_payload, limit)
            if message is not None:
                raise ApplyRefused(f"{change.source or change.name}: {message}; nothing was applied")


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


async def ask_in_thread(ask: Callable[[], str]) -> str:
    """Ask in a daemon thread, so the NATS connection keeps answering pings while a person
    reads the plan. Not ``asyncio.to_thread``: on ^C, ``asyncio.run`` would wait for that
    executor thread, i.e. for the person to press Enter."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str] = loop.create_future()

    def run() -> None:
        try:
            text = ask()
        except BaseException as exc:  # EOF or a closed stdin: deliver it to the waiting side
            loop.call_soon_threadsafe(settle_answer, answer, None, exc)
        else:
            loop.call_soon_threadsafe(settle_answer, answer, text, None)

    threading.Thread(target=run, name="ajc-gitops-confirm", daemon=True).start()
    return await answer


def settle_answer(future: asyncio.Future[str], text: str | None, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(text or "")

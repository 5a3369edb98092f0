"""`ajc-gitops status`: what each schedule is and what became of its slots (read-only)."""

from __future__ import annotations

import asyncio
import datetime
import os
import time

from ajc_gitops import output
from ajc_gitops.commands import common
from ajc_gitops.commands.options import StatusOptions
from ajc_gitops.errors import UsageError
from ajc_gitops.gowire.durations import DurationError, parse_duration
from ajc_gitops.render.status import STATUS_RENDERERS
from ajc_gitops.rules import name_problem
from ajc_gitops.scheduler.runner import host_zone
from ajc_gitops.scheduler.status import READ_MODES, StatusQuery, read_status
from ajc_gitops.status.model import SlotKind, StatusReport
from ajc_gitops.store import Store

__all__ = ["EXIT_ALERT", "FAIL_ON", "failing", "parse_fail_on", "parse_since", "run"]

EXIT_ALERT = 3  # --fail-on: a condition named holds (0 and 1 keep their usual meaning)
FAIL_ON = ("missed", "failed", "unknown")
MAX_SINCE = datetime.timedelta(days=31)


def parse_since(text: str) -> datetime.timedelta:
    try:
        ns = parse_duration(text)
    except DurationError as exc:
        raise UsageError(f"--since: {exc}") from None
    since = datetime.timedelta(microseconds=ns // 1000)
    if not datetime.timedelta(0) < since <= MAX_SINCE:
        raise UsageError(f"--since must be more than 0 and at most {MAX_SINCE.days} days (720h), not {text!r}")
    return since


def parse_fail_on(values: tuple[str, ...]) -> frozenset[str]:
    chosen = {v.strip() for value in values for v in value.split(",") if v.strip()}
    bad = sorted(chosen - set(FAIL_ON))
    if bad:
        raise UsageError(f"--fail-on {bad[0]!r}: choose from {', '.join(FAIL_ON)}")
    return frozenset(chosen)


def failing(report: StatusReport, fail_on: frozenset[str]) -> list[str]:
    """The --fail-on conditions that hold, as words for the stderr line."""
    found = []
    if "missed" in fail_on and (n := report.total(SlotKind.MISSED)):
        found.append(f"{n} missed slot(s)")
    if "failed" in fail_on and (n := report.failed):
        found.append(f"{n} failed task(s)")
    if "unknown" in fail_on and (n := report.total(SlotKind.UNKNOWN)):
        found.append(f"{n} slot(s) that could not be told")
    return found


def run(opts: StatusOptions, *, now_ns: int | None = None) -> int:
    if opts.output_format not in STATUS_RENDERERS:
        raise UsageError(f"--format must be one of {', '.join(STATUS_RENDERERS)}, not {opts.output_format!r}")
    for name in opts.names:
        if (problem := name_problem(name)) is not None:
            raise UsageError(f"schedule {name!r}: {problem}")
    if opts.scan_limit < 0:
        raise UsageError("--scan-limit must not be negative")
    if opts.read not in READ_MODES:
        raise UsageError(f"--read must be one of {', '.join(READ_MODES)}, not {opts.read!r}")
    fail_on = parse_fail_on(opts.fail_on)
    query = StatusQuery(
        names=tuple(opts.names),
        since=parse_since(opts.since),
        zone=host_zone(os.environ),
        scan_limit=opts.scan_limit,
        read=opts.read,
    )

    async def main() -> StatusReport:
        async with Store.open(common.connect_options(opts.connect)) as store:
            return await read_status(store, query, now_ns=now_ns or time.time_ns())

    report = asyncio.run(main())
    output.write(STATUS_RENDERERS[opts.output_format](report))
    if report.not_found:
        output.error(f"error: no such schedule: {', '.join(report.not_found)}")
        return common.EXIT_ERROR
    if problems := failing(report, fail_on):
        output.error(f"status: {'; '.join(problems)} (--fail-on {','.join(sorted(fail_on))})")
        return EXIT_ALERT
    return common.EXIT_OK

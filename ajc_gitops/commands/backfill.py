"""`ajc-gitops backfill NAME --from T --to T`: create the task of every slot in the range that
has none, each under its slot's deterministic ID, after showing the slots and asking."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable

from ajc_gitops import output
from ajc_gitops.commands import common
from ajc_gitops.commands.options import BackfillOptions
from ajc_gitops.commands.status import EXIT_ALERT
from ajc_gitops.errors import ApplyCancelled, CommandError, UsageError
from ajc_gitops.gowire.gotime import GoTimeParseError, parse_rfc3339
from ajc_gitops.model import NANOS_PER_SECOND
from ajc_gitops.render.status import slot_line
from ajc_gitops.rules import name_problem
from ajc_gitops.scheduler.manual import BackfillPlan, create_backfill, plan_backfill
from ajc_gitops.scheduler.runner import host_zone
from ajc_gitops.status.model import SlotKind
from ajc_gitops.store import Store

__all__ = ["PROMPT", "run"]

PROMPT = "Create these tasks? Only 'yes' will be accepted:"
MAX_SLOTS_CEILING = 1_000_000
_SHOWN = 200


def _instant(flag: str, text: str) -> int:
    try:
        return parse_rfc3339(text).unix_ns // NANOS_PER_SECOND
    except GoTimeParseError:
        raise UsageError(f"{flag} {text!r} is not an RFC3339 time; write it like 2026-12-01T02:00:00Z") from None


def _stdin_prompt() -> str:
    output.write(PROMPT)
    return sys.stdin.readline().strip()


_VERBS = {SlotKind.MISSED: "create", SlotKind.UNKNOWN: "skip  ", SlotKind.PENDING: "skip  "}


def _show(plan: BackfillPlan, name: str) -> None:
    slots = plan.slots
    for slot in slots[:_SHOWN]:
        output.write(f"  {_VERBS.get(slot.kind, 'keep  ')} {slot_line(slot)}")
    if len(slots) > _SHOWN:
        output.write(f"  ... and {len(slots) - _SHOWN} more")
    skipped = sum(1 for s in slots if s.kind in (SlotKind.UNKNOWN, SlotKind.PENDING))
    output.write(
        f"{name}: {len(slots)} slot(s) in the range, {len(plan.to_create)} to create, "
        f"{len(slots) - len(plan.to_create) - skipped} already have their task"
        + (f", {skipped} left alone (cannot tell, or too recent)" if skipped else "")
    )


def run(
    opts: BackfillOptions,
    *,
    now_ns: int | None = None,
    interactive: bool | None = None,
    ask: Callable[[], str] = _stdin_prompt,
) -> int:
    if (problem := name_problem(opts.name)) is not None:
        raise UsageError(f"schedule {opts.name!r}: {problem}")
    if not 1 <= opts.max_slots <= MAX_SLOTS_CEILING:
        raise UsageError(f"--max-slots must be between 1 and {MAX_SLOTS_CEILING:,}, not {opts.max_slots}")
    start, end = _instant("--from", opts.start), _instant("--to", opts.end)
    now = now_ns or time.time_ns()
    if end < start:
        raise UsageError(f"--to {opts.end} is before --from {opts.start}")
    if end > now // NANOS_PER_SECOND:
        raise UsageError(f"--to {opts.end} is in the future: only slots that are due can be backfilled")
    if interactive is None:
        interactive = sys.stdin.isatty()

    async def main() -> tuple[BackfillPlan, int]:
        async with Store.open(common.connect_options(opts.connect)) as store:
            plan = await plan_backfill(
                store,
                opts.name,
                start,
                end,
                now_ns=now,
                zone=host_zone(os.environ),
                scan_limit=opts.scan_limit,
                max_slots=opts.max_slots,
            )
            _show(plan, opts.name)
            if not plan.to_create:
                return plan, 0
            if not opts.auto_approve:
                if not interactive:
                    raise CommandError(
                        "refusing to backfill without confirmation: stdin is not a terminal; "
                        "review the slots above and pass --auto-approve"
                    )
                if await common.ask_in_thread(ask) != "yes":
                    raise ApplyCancelled("backfill cancelled: only 'yes' is accepted; nothing was created")
            outcomes = await create_backfill(store, plan, now_ns=time.time_ns())
            failed = [o for o in outcomes if o.status == "error"]
            created = sum(1 for o in outcomes if o.status in ("enqueued", "queue_error"))
            already = sum(1 for o in outcomes if o.status == "duplicate")
            output.write(f"Backfill: {created} task(s) created, {already} slot(s) already had theirs.")
            for o in [o for o in outcomes if o.status == "queue_error"][:10]:
                output.error(f"warning: task {o.task_id} is in queue_error: {o.error} (ajc queue add {o.queue})")
            for o in failed[:10]:
                output.error(f"error: task {o.task_id} not created: {o.error}")
            return plan, len(failed)

    plan, failed = asyncio.run(main())
    if failed:
        raise CommandError(f"backfill {opts.name}: {failed} task(s) not created (listed above); run it again")
    if unknown := [s for s in plan.slots if s.kind is SlotKind.UNKNOWN]:
        # Creating one could repeat a fire a Go leader made (its task IDs are random): skipped,
        # named above, and said in the exit code so a script does not take the range as done.
        reasons = "; ".join(sorted({s.note for s in unknown if s.note}))
        output.error(
            f"warning: backfill {opts.name}: {len(unknown)} slot(s) not created because a Go leader may have "
            f"fired them ({reasons}); raise --scan-limit (now {opts.scan_limit:,}) if the scan stopped early, "
            f"or check them with: ajc-gitops status {opts.name}"
        )
        return EXIT_ALERT
    return common.EXIT_OK

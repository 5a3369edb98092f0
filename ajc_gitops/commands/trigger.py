"""`ajc-gitops trigger NAME`: one task of a schedule now, as the scheduler would create it."""

from __future__ import annotations

import asyncio
import time

from ajc_gitops import output
from ajc_gitops.commands import common
from ajc_gitops.commands.options import TriggerOptions
from ajc_gitops.errors import CommandError, UsageError
from ajc_gitops.model import Task
from ajc_gitops.rules import name_problem
from ajc_gitops.scheduler.manual import trigger
from ajc_gitops.state import EnqueueOutcome
from ajc_gitops.store import Store

__all__ = ["run"]


def run(opts: TriggerOptions, *, now_ns: int | None = None) -> int:
    if (problem := name_problem(opts.name)) is not None:
        raise UsageError(f"schedule {opts.name!r}: {problem}")

    async def main() -> tuple[Task, EnqueueOutcome]:
        async with Store.open(common.connect_options(opts.connect)) as store:
            return await trigger(store, opts.name, now_ns=now_ns or time.time_ns())

    task, outcome = asyncio.run(main())
    if outcome.status == "enqueued":
        output.write(f"Created task {task.id} ({task.type}) in queue {task.queue}, manual fire of {opts.name}.")
        return common.EXIT_OK
    if outcome.status == "queue_error":
        raise CommandError(
            f"task {task.id} stored but not enqueued (queue_error): {outcome.error}; "
            f"create the queue (ajc queue add {task.queue}), then: ajc task retry {task.id} -q {task.queue}"
        )
    raise CommandError(f"task {task.id} not created: {outcome.error or outcome.status}")

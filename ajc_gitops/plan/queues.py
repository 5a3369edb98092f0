"""Queues that do not exist. asyncjobs never creates a schedule's queue when it fires: the work
item of a queue without its ``CHORIA_AJ_Q_<queue>`` stream is refused, and every fire of such a
schedule ends as a ``queue_error`` task. Pure: the names of the queues that exist come in (the
store lists them as Go's ``QueueNames`` does); ``plan`` warns with this and ``status`` can too.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from ajc_gitops.names import QUEUE_STREAM
from ajc_gitops.plan.model import PlanWarning, WarningKind

__all__ = ["fix_command", "missing_queues", "unchecked_warning"]

_LISTED = 5  # schedule names in one line before "and N more"


def fix_command(queue: str) -> str:
    """The asyncjobs CLI command that creates ``queue`` with Go's defaults (``ajc queue add``,
    an alias of ``ajc queues new``; see ``--help`` for its limits and replicas)."""
    return f"ajc queue add {queue}"


def _names(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def missing_queues(schedules: Iterable[tuple[str, str]], existing: Collection[str]) -> tuple[PlanWarning, ...]:
    """One warning per queue that ``(schedule name, queue)`` pairs fire into and that is not in
    ``existing``, sorted by queue, naming its schedules and the command that creates it."""
    waiting: dict[str, list[str]] = {}
    for name, queue in schedules:
        if queue not in existing:
            waiting.setdefault(queue, []).append(name)
    warnings = []
    for queue in sorted(waiting):
        names = tuple(sorted(set(waiting[queue])))
        command = fix_command(queue)
        verb = "fire" if len(names) > 1 else "fires"
        warnings.append(
            PlanWarning(
                WarningKind.MISSING_QUEUE,
                f"queue {queue} has no stream {QUEUE_STREAM.format(queue)}, so every fire ends as queue_error "
                f"({_names(names)} {verb} into it); create it with: {command}",
                queue=queue,
                schedules=names,
                command=command,
            )
        )
    return tuple(warnings)


def unchecked_warning(reason: str) -> PlanWarning:
    """The queue streams could not be listed (``reason``), so no queue was checked."""
    return PlanWarning(
        WarningKind.QUEUES_UNCHECKED,
        f"could not list the queue streams, so no schedule's queue was checked: {reason} "
        "(allow $JS.API.STREAM.NAMES, docs/security.md)",
    )

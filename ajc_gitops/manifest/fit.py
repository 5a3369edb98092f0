"""Whether a schedule fits a server's ``max_payload``: its record, and the task record each of
its fires stores, which holds the payload base64-encoded once more (issue: a schedule that
applies but can never fire)."""

from __future__ import annotations

from collections.abc import Iterable

from ajc_gitops import codec
from ajc_gitops.model import ScheduledTask
from ajc_gitops.problems import Location, Problem

__all__ = ["size_problems", "too_large"]


def too_large(task: ScheduledTask, max_payload: int, limit: str) -> str | None:
    """Why a server with ``max_payload`` (described by ``limit``) would refuse the schedule's
    record or every task it fires, or None. A task record holds the payload base64-encoded
    once more than the schedule record does, so it is nearly always the larger."""
    size, what = max(
        (codec.fire_publish_size(task), "the task record each fire stores"),
        (codec.record_publish_size(task), "the schedule record"),
    )
    if size <= max_payload:
        return None
    return (
        f"payload of {len(task.payload or b''):,} bytes makes {what} {size:,} bytes, above {limit}; "
        "store large data elsewhere and pass a reference"
    )


def size_problems(schedules: Iterable[tuple[ScheduledTask, Location]], max_payload: int, limit: str) -> list[Problem]:
    """One problem per schedule that does not fit, at its location (its payload's line)."""
    return [
        Problem(location, message)
        for task, location in schedules
        if (message := too_large(task, max_payload, limit)) is not None
    ]

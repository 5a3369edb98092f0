"""What every plan renderer shares: the summary sentence, field text, the symbol of each
action, and where a change's manifest entry is. Presentation only; the plan holds the facts."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ajc_gitops.plan.fields import is_string_field
from ajc_gitops.plan.model import Action, Change, FieldChange, Plan

NO_CHANGES = "No changes. The store matches the manifests."
SYMBOL = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.ADOPT: "~",
    Action.DELETE: "-",
    Action.SUSPEND: "#",  # commented out, in a manner of speaking
    Action.RESUME: ">",
    Action.NOOP: " ",
}
VERB = {
    Action.CREATE: "create",
    Action.UPDATE: "update",
    Action.ADOPT: "adopt",
    Action.DELETE: "destroy",
    Action.SUSPEND: "suspend",
    Action.RESUME: "resume",
    Action.NOOP: "no-op",
}
DRIFT_NOTE = "(drifted: changed outside Git)"
_SOURCE = re.compile(r"(?P<path>.+):(?P<line>[0-9]+):(?P<col>[0-9]+)")


def summary(plan: Plan) -> str:
    """The last line of every format: Terraform's sentence, or that nothing would change."""
    if not plan.has_changes and not plan.blocked:
        return NO_CHANGES
    text = f"Plan: {plan.to_add} to add, {plan.to_change} to change, {plan.to_destroy} to destroy"
    # Terraform's sentence stays as it is for plans without suspensions, which scripts may match.
    if plan.to_suspend:
        text += f", {plan.to_suspend} to suspend"
    if plan.to_resume:
        text += f", {plan.to_resume} to resume"
    return text + "."


def suspend_lines(change: Change) -> list[str]:
    """What a suspend or resume does, in words (the fields only show what else changes)."""
    if change.action is Action.RESUME:
        return ["resumes: the record is created again, so schedulers fire it"]
    if change.action is not Action.SUSPEND:
        return []
    lines = [f"reason: {json.dumps(change.suspend_reason, ensure_ascii=False)}"] if change.suspend_reason else []
    if change.record_revision is not None:
        lines.append("the record is deleted, so no scheduler fires it; the definition is kept beside it")
    elif change.marker_revision is None:
        lines.append("created suspended: nothing fires until it is resumed")
    elif change.drift:
        lines.append("the record was already deleted outside Git; the definition is kept beside it")
    else:
        lines.append("already suspended; updates what is kept beside it")
    return lines


def shown_changes(plan: Plan) -> list[Change]:
    return [c for c in plan.changes if c.action is not Action.NOOP]


def drifted_noops(plan: Plan) -> list[Change]:
    """Schedules in Git that were changed outside it but still match (a not-pruned one has
    its own notice)."""
    return [c for c in plan.changes if c.action is Action.NOOP and c.drift and c.desired is not None]


def value_text(field: str, value: str | None) -> str:
    if value is None:
        return "(none)"
    return json.dumps(value, ensure_ascii=False) if is_string_field(field) else value


def field_line(change: FieldChange) -> str:
    """``schedule: "0 0 1 * *" -> "0 0 2 * *"``; a create or destroy shows one side."""
    if change.before is None and change.after is not None:
        return f"{change.field}: {value_text(change.field, change.after)}"
    if change.after is None and change.before is not None:
        return f"{change.field}: {value_text(change.field, change.before)}"
    return f"{change.field}: {value_text(change.field, change.before)} -> {value_text(change.field, change.after)}"


def fire_lines(change: Change) -> list[str]:
    fires = change.fires
    if fires is None:
        return []
    if not fires.utc:
        return ["next fires: none (no match within the 5 years robfig/cron searches)"]
    lines = [f"next fires (UTC): {', '.join(fires.utc)}"]
    if fires.zone and fires.local:
        lines.append(f"next fires ({fires.zone}): {', '.join(fires.local)}")
    return lines


@dataclass(frozen=True, slots=True)
class SourceRef:
    path: str
    line: int = 0
    col: int = 0


def source_ref(source: str | None) -> SourceRef | None:
    """``file:line:col`` (as ``problems.Location`` prints it) split up; a bare path stays whole."""
    if not source:
        return None
    match = _SOURCE.fullmatch(source)
    if match is None:
        return SourceRef(source)
    return SourceRef(match["path"], int(match["line"]), int(match["col"]))

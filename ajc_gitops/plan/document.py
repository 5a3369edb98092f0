"""The plan as JSON values, built once: ``plan --format json`` (docs/plan-json.md) shows
``plan_document``; the saved plan file (``planfile.py``) stores the same change and notice
objects plus what apply needs to write. Both are laid out by ``layout``."""

from __future__ import annotations

import json
from typing import Any

from ajc_gitops.plan.model import Action, Change, FireTimes, Notice, Plan, PlanWarning

__all__ = ["change_document", "layout", "notice_document", "plan_document", "warning_document"]


def _fires(fires: FireTimes | None) -> dict[str, Any] | None:
    return None if fires is None else {"utc": list(fires.utc), "zone": fires.zone, "local": list(fires.local)}


def change_document(change: Change) -> dict[str, Any]:
    return {
        "action": change.action.value,
        "name": change.name,
        "key": change.key,
        "record_revision": change.record_revision,
        "tombstone_revision": change.tombstone_revision,
        "marker_revision": change.marker_revision,
        "drift": change.drift,
        "sensitive": change.sensitive,
        "suspended": change.suspended,
        "suspend_reason": change.suspend_reason,
        "source": change.source,
        "fields": [{"field": f.field, "before": f.before, "after": f.after} for f in change.fields],
        "fires": _fires(change.fires),
    }


def notice_document(notice: Notice) -> dict[str, Any]:
    return {
        "kind": notice.kind.value,
        "name": notice.name,
        "key": notice.key,
        "revision": notice.revision,
        "blocking": notice.blocking,
        "source": notice.source,
        "message": notice.message,
    }


def warning_document(warning: PlanWarning) -> dict[str, Any]:
    return {
        "kind": warning.kind.value,
        "queue": warning.queue,
        "schedules": list(warning.schedules),
        "command": warning.command,
        "message": warning.message,
    }


def plan_document(plan: Plan) -> dict[str, Any]:
    """What ``plan --format json`` prints (docs/plan-json.md)."""
    return {
        "format_version": plan.format_version,
        "created_at": plan.created_at,
        "server": plan.server,
        "bucket": plan.bucket,
        "prune": plan.prune,
        "summary": {
            "add": plan.to_add,
            "change": plan.to_change,
            "destroy": plan.to_destroy,
            "suspend": plan.to_suspend,
            "resume": plan.to_resume,
            "no_op": plan.count(Action.NOOP),
            "drifted": len(plan.drifted),
            "notices": len(plan.notices),
            "blocking": len(plan.blocked),
            "warnings": len(plan.warnings),
            "has_changes": plan.has_changes,
        },
        "changes": [change_document(c) for c in plan.changes],
        "notices": [notice_document(n) for n in plan.notices],
        "warnings": [warning_document(w) for w in plan.warnings],
    }


def layout(document: dict[str, Any]) -> str:
    """Indented at the top, one change or notice per line: readable and diffable, and
    json.dumps keeps its C encoder (``indent=`` switches to pure Python, 5x slower on 10,000
    changes). ASCII escapes, so text with undecodable bytes (lone surrogates) still prints."""
    lines = []
    for key, value in document.items():
        if isinstance(value, list) and value:
            items = ",\n    ".join(json.dumps(item) for item in value)
            lines.append(f"  {json.dumps(key)}: [\n    {items}\n  ]")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"

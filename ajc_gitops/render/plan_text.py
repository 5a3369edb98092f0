"""Terraform-like text: ``+`` create, ``~`` update/adopt, ``-`` destroy, ``#`` suspend, ``>``
resume, field-level before -> after, next fire times, then notices and the summary line. ANSI
colour only when asked (the CLI asks on a TTY)."""

from __future__ import annotations

from ajc_gitops.plan.model import Action, Change, Notice, Plan
from ajc_gitops.render.plan_common import (
    DRIFT_NOTE,
    SYMBOL,
    VERB,
    drifted_noops,
    field_line,
    fire_lines,
    shown_changes,
    summary,
    suspend_lines,
)

_RESET = "\x1b[0m"
_COLOUR = {
    Action.CREATE: "\x1b[32m",  # green
    Action.UPDATE: "\x1b[33m",  # yellow
    Action.ADOPT: "\x1b[33m",
    Action.DELETE: "\x1b[31m",  # red
    Action.SUSPEND: "\x1b[35m",  # magenta
    Action.RESUME: "\x1b[32m",
    Action.NOOP: "",
}
_RED_BOLD = "\x1b[1;31m"
_YELLOW = "\x1b[33m"
_BOLD = "\x1b[1m"


def _paint(text: str, colour: str, color: bool) -> str:
    return f"{colour}{text}{_RESET}" if color and colour else text


def _change_lines(change: Change, color: bool) -> list[str]:
    colour = _COLOUR[change.action]
    symbol = SYMBOL[change.action]
    head = f"{_paint(symbol + ' ' + VERB[change.action], colour, color)} {_paint(change.name, _BOLD, color)}"
    if change.source:
        head += f"  ({change.source})"
    if change.drift:
        head += "  " + _paint(DRIFT_NOTE, _YELLOW, color)
    lines = [head]
    if change.action is Action.ADOPT and not change.fields:
        lines.append("    (record unchanged; ajc-gitops takes ownership)")
    for field in change.fields:
        marker = symbol if change.action in (Action.CREATE, Action.DELETE) else " "
        lines.append(f"  {_paint(marker, colour, color)} {field_line(field)}")
    lines.extend(f"    {line}" for line in suspend_lines(change))
    lines.extend(f"    {line}" for line in fire_lines(change))
    return lines


def _notice_line(notice: Notice, color: bool) -> str:
    label = _paint("error", _RED_BOLD, color) if notice.blocking else _paint(notice.kind.value, _YELLOW, color)
    where = notice.key + (f" (revision {notice.revision})" if notice.revision is not None else "")
    return f"  ! {label}: {where}: {notice.message}"


def render(plan: Plan, *, color: bool) -> str:
    lines = [f"ajc-gitops plan for {plan.server}, bucket {plan.bucket}{' (prune)' if plan.prune else ''}", ""]
    changes = shown_changes(plan)
    if changes:
        lines.append("ajc-gitops will perform these actions:")
        lines.append("")
        for change in changes:
            lines.extend(_change_lines(change, color))
            lines.append("")
    drifted = drifted_noops(plan)
    if drifted or plan.notices:
        lines.append("Notices:")
        for change in drifted:
            lines.append(
                f"  ! {_paint('drift', _YELLOW, color)}: {change.key}: {change.name} was changed outside Git "
                "but still matches the manifests; apply refreshes its ownership marker"
            )
        lines.extend(_notice_line(n, color) for n in plan.notices)
        lines.append("")
    if plan.warnings:
        lines.append("Warnings:")
        lines.extend(f"  ! {_paint(w.kind.value, _YELLOW, color)}: {w.message}" for w in plan.warnings)
        lines.append("")
    if plan.blocked:
        count = len(plan.blocked)
        lines.append(
            _paint(
                f"Apply is blocked by {count} problem{'' if count == 1 else 's'} marked error above.", _RED_BOLD, color
            )
        )
    lines.append(_paint(summary(plan), _BOLD, color))
    return "\n".join(lines) + "\n"

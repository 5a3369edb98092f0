"""Markdown for a pull-request comment: the summary, a table of changes, field diffs folded in
``<details>``, then notices. Long plans are cut to stay under GitHub's 65,536-character
comment limit; the text plan in the job log has everything."""

from __future__ import annotations

import html
import re

from ajc_gitops.plan.model import Action, Change, Plan
from ajc_gitops.render.plan_common import (
    SYMBOL,
    VERB,
    drifted_noops,
    field_line,
    fire_lines,
    shown_changes,
    summary,
    suspend_lines,
)

MAX_ROWS = 200
MAX_DETAILS = 50
_BACKTICKS = re.compile(r"`+")


def _cell(text: str) -> str:
    # Inside a table cell '|' ends the cell even in code, so HTML: <code> with entities.
    return "<code>" + html.escape(text).replace("|", "&#124;") + "</code>"


def _fence(body: str) -> str:
    longest = max((len(m) for m in _BACKTICKS.findall(body)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}diff\n{body}\n{fence}"


def _details(change: Change) -> list[str]:
    symbol = SYMBOL[change.action]
    lines = [
        f"{symbol if change.action in (Action.CREATE, Action.DELETE) else ' '} {field_line(f)}" for f in change.fields
    ]
    lines += [f"  {line}" for line in suspend_lines(change)]
    lines += [f"  {line}" for line in fire_lines(change)]
    if not lines:
        lines = ["  (record unchanged; ajc-gitops takes ownership)"]
    return [f"**{VERB[change.action]} {_cell(change.name)}**", "", _fence("\n".join(lines)), ""]


def render(plan: Plan, *, color: bool) -> str:
    del color  # Markdown has no ANSI colour
    out = ["### ajc-gitops plan", "", f"**{summary(plan)}**", ""]
    out.append(f"Server {_cell(plan.server)}, bucket {_cell(plan.bucket)}{', prune on' if plan.prune else ''}.")
    out.append("")
    changes = shown_changes(plan)
    if changes:
        out += ["| | Action | Schedule | Source | Drift |", "|---|---|---|---|---|"]
        for change in changes[:MAX_ROWS]:
            source = _cell(change.source) if change.source else ""
            out.append(
                f"| {SYMBOL[change.action]} | {VERB[change.action]} | {_cell(change.name)} | {source} | "
                f"{'changed outside Git' if change.drift else ''} |"
            )
        if len(changes) > MAX_ROWS:
            out.append(f"| | | … and {len(changes) - MAX_ROWS} more | | |")
        out += ["", "<details><summary>Field changes and next fire times</summary>", ""]
        for change in changes[:MAX_DETAILS]:
            out += _details(change)
        if len(changes) > MAX_DETAILS:
            out += [f"… {len(changes) - MAX_DETAILS} more changes not shown; see the plan in the job log.", ""]
        out += ["</details>", ""]
    drifted = drifted_noops(plan)
    if plan.notices or drifted:
        out += ["#### Notices", ""]
        for change in drifted:
            out.append(f"- :warning: **drift** {_cell(change.key)}: changed outside Git, still matches the manifests")
        for notice in plan.notices[:MAX_ROWS]:
            icon = ":x:" if notice.blocking else ":warning:"
            kind = "blocking: " + notice.kind.value if notice.blocking else notice.kind.value
            out.append(f"- {icon} **{kind}** {_cell(notice.key)}: {html.escape(notice.message)}")
        if len(plan.notices) > MAX_ROWS:
            out.append(f"- … and {len(plan.notices) - MAX_ROWS} more notices")
        out.append("")
    if plan.warnings:
        out += ["#### Warnings", ""]
        out += [f"- :warning: **{w.kind.value}** {html.escape(w.message)}" for w in plan.warnings[:MAX_ROWS]]
        out.append("")
    return "\n".join(out) + "\n"

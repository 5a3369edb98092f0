"""GitHub Actions workflow commands: one annotation per change and notice, on the manifest
line when the plan knows it, then the summary line."""

from __future__ import annotations

from ajc_gitops.plan.model import Action, Change, Notice, Plan
from ajc_gitops.render.plan_common import DRIFT_NOTE, SYMBOL, VERB, field_line, source_ref, summary, suspend_lines

_TITLE = "ajc-gitops plan"


def _escape_data(text: str) -> str:
    # Workflow command messages: '%', CR and LF are escaped...
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    # ...and in properties such as file= also ':' and ','.
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(level: str, source: str | None, message: str) -> str:
    props = []
    ref = source_ref(source)
    if ref is not None:
        props.append(f"file={_escape_property(ref.path)}")
        if ref.line:
            props += [f"line={ref.line}", f"col={max(ref.col, 1)}"]
    props.append(f"title={_escape_property(_TITLE)}")
    return f"::{level} {','.join(props)}::{_escape_data(message)}"


def _change(change: Change) -> str:
    message = "\n".join(
        [
            f"{SYMBOL[change.action]} {VERB[change.action]} {change.name}",
            *suspend_lines(change),
            *(field_line(f) for f in change.fields),
        ]
    )
    return _command("notice", change.source, message)


def _notice(notice: Notice) -> str:
    return _command("error" if notice.blocking else "warning", notice.source, f"{notice.key}: {notice.message}")


def render(plan: Plan, *, color: bool) -> str:
    del color  # annotations are plain text
    lines = [_change(c) for c in plan.changes if c.action is not Action.NOOP]
    lines += [_command("warning", c.source, f"{c.name} {DRIFT_NOTE}") for c in plan.changes if c.drift]
    lines += [_notice(n) for n in plan.notices]
    lines += [_command("warning", None, w.message) for w in plan.warnings]
    lines.append(summary(plan))
    return "\n".join(lines) + "\n"

"""The plan renderers, one module per format, listed by name (STYLE.md: renderers take data
and return text)."""

from __future__ import annotations

from typing import Literal, Protocol

from ajc_gitops.plan.model import Plan
from ajc_gitops.render import plan_github, plan_json, plan_markdown, plan_text

PlanFormat = Literal["text", "json", "markdown", "github"]


class PlanRenderer(Protocol):
    def __call__(self, plan: Plan, *, color: bool) -> str: ...


PLAN_RENDERERS: dict[str, PlanRenderer] = {
    "text": plan_text.render,
    "json": plan_json.render,
    "markdown": plan_markdown.render,
    "github": plan_github.render,
}

"""The plan as JSON for machines; the schema is documented in docs/plan-json.md and changes
only with ``format_version``. The document itself is built in ``plan/document.py``, which the
saved plan file shares."""

from __future__ import annotations

from ajc_gitops.plan.document import layout, plan_document
from ajc_gitops.plan.model import Plan


def render(plan: Plan, *, color: bool) -> str:
    del color  # JSON is never coloured
    return layout(plan_document(plan))

"""Plan renderers: text, json, markdown, github. Data in, text out; key lines asserted."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from ajc_gitops.plan.model import Action, Change, FieldChange, Notice, NoticeKind, Plan
from ajc_gitops.render import plan_github, plan_json, plan_markdown, plan_text
from ajc_gitops.render.plan import PLAN_RENDERERS
from tests.unit.plan_factories import managed, marker, plan_for, record, task, want
from tests.unit.test_planfile import rich_plan

ANSI = "\x1b["


def _update_plan() -> Plan:
    live, markers = managed(task("MONTHLY", schedule="0 0 1 * *"))
    return plan_for([want(task("MONTHLY", schedule="0 0 2 * *"))], live, markers)


def _noop_plan() -> Plan:
    return plan_for([want(task("SAME"))], *managed(task("SAME")))


def test_registry_lists_every_format():
    assert sorted(PLAN_RENDERERS) == ["github", "json", "markdown", "text"]


# -- text ------------------------------------------------------------------------------------


def test_text_update_shows_field_before_and_after_and_fires():
    out = plan_text.render(_update_plan(), color=False)
    lines = out.splitlines()
    assert "~ update MONTHLY  (schedules/app.yaml:3:5)" in lines
    assert '    schedule: "0 0 1 * *" -> "0 0 2 * *"' in lines
    assert "    next fires (UTC): 2026-12-02T00:00:00Z, 2027-01-02T00:00:00Z, 2027-02-02T00:00:00Z" in lines
    assert lines[-1] == "Plan: 0 to add, 1 to change, 0 to destroy."


def test_text_shows_every_action_drift_and_notices():
    out = plan_text.render(rich_plan(), color=False)
    lines = out.splitlines()
    assert "+ create NEW  (schedules/app.yaml:3:5)" in lines
    assert '  + schedule: "CRON_TZ=Europe/Berlin 0 9 * * *"' in lines
    assert '  + payload: {"a":[1,2.5,true]}' in lines
    assert "    next fires (Europe/Berlin): 2026-11-28T09:00:00+01:00, 2026-11-29T09:00:00+01:00, " \
        "2026-11-30T09:00:00+01:00" in lines  # fmt: skip
    assert "    next fires (UTC): 2026-11-28T08:00:00Z, 2026-11-29T08:00:00Z, 2026-11-30T08:00:00Z" in lines
    assert "- destroy GONE  (schedules/app.yaml:3:5)" in lines
    assert "~ adopt ADOPTME  (schedules/app.yaml:3:5)" in lines
    assert "~ update BAD  (schedules/app.yaml:3:5)  (drifted: changed outside Git)" in lines
    notices = lines[lines.index("Notices:") :]
    assert any(line.startswith("  ! error: scheduled_tasks.CONFLICT (revision ") for line in notices)
    assert any(line.startswith("  ! unmanaged: scheduled_tasks.HAND") for line in notices)
    assert any(line.startswith("  ! invalid_record: scheduled_tasks.BAD") for line in notices)
    assert "Apply is blocked by 1 problem marked error above." in lines
    assert lines[-1] == "Plan: 1 to add, 3 to change, 1 to destroy, 1 to suspend, 1 to resume."
    assert "SAME" not in out  # no-ops are not listed
    at = lines.index("# suspend PAUSE  (schedules/app.yaml:3:5)")
    assert lines[at + 1 : at + 3] == [
        '    reason: "migration, until Monday"',
        "    the record is deleted, so no scheduler fires it; the definition is kept beside it",
    ]
    at = lines.index("> resume WAKE  (schedules/app.yaml:3:5)")
    assert lines[at + 1 : at + 3] == [
        "    max_tries: 10 -> 3",
        "    resumes: the record is created again, so schedulers fire it",
    ]


def test_text_plan_without_suspensions_keeps_terraforms_sentence():
    assert plan_text.render(_update_plan(), color=False).splitlines()[-1] == (
        "Plan: 0 to add, 1 to change, 0 to destroy."
    )


def test_text_no_changes():
    out = plan_text.render(_noop_plan(), color=False)
    assert out.splitlines()[-1] == "No changes. The store matches the manifests."
    assert "will perform" not in out


def test_text_not_pruned_and_drifted_noops_are_notices():
    live, markers = managed(task("OLD"))
    out = plan_text.render(plan_for([], live, markers), color=False)
    assert "  ! not_pruned: scheduled_tasks.OLD (revision 100): " in out
    assert out.endswith("No changes. The store matches the manifests.\n")
    drifted = replace(_noop_plan(), changes=(replace(_noop_plan().changes[0], drift=True),))
    assert "  ! drift: scheduled_tasks.SAME: SAME was changed outside Git" in plan_text.render(drifted, color=False)


def test_text_colour_only_when_asked():
    plan = rich_plan()
    assert ANSI not in plan_text.render(plan, color=False)
    out = plan_text.render(plan, color=True)
    assert "\x1b[32m+ create\x1b[0m" in out
    assert "\x1b[33m~ update\x1b[0m" in out
    assert "\x1b[31m- destroy\x1b[0m" in out
    for fmt in ("json", "markdown", "github"):
        assert ANSI not in PLAN_RENDERERS[fmt](plan, color=True)


# -- json ------------------------------------------------------------------------------------


def test_json_has_version_summary_changes_and_notices():
    document = json.loads(plan_json.render(rich_plan(), color=False))
    assert document["format_version"] == 1
    assert list(document) == [
        "format_version",
        "created_at",
        "server",
        "bucket",
        "prune",
        "summary",
        "changes",
        "notices",
        "warnings",
    ]
    assert document["summary"] == {
        "add": 1,
        "change": 3,
        "destroy": 1,
        "suspend": 1,
        "resume": 1,
        "no_op": 1,
        "drifted": 1,
        "notices": 5,
        "blocking": 1,
        "warnings": 1,
        "has_changes": True,
    }
    new = next(c for c in document["changes"] if c["name"] == "NEW")
    assert list(new) == [
        "action", "name", "key", "record_revision", "tombstone_revision", "marker_revision", "drift", "sensitive",
        "suspended", "suspend_reason", "source", "fields", "fires",
    ]  # fmt: skip
    pause = next(c for c in document["changes"] if c["name"] == "PAUSE")
    assert (pause["action"], pause["suspended"], pause["suspend_reason"]) == (
        "suspend",
        True,
        "migration, until Monday",
    )
    assert pause["record_revision"] is not None and pause["fires"] is None
    wake = next(c for c in document["changes"] if c["name"] == "WAKE")
    assert (wake["action"], wake["suspended"], wake["suspend_reason"]) == ("resume", False, None)
    assert wake["tombstone_revision"] == 77 and len(wake["fires"]["utc"]) == 3
    assert new["action"] == "create" and new["key"] == "scheduled_tasks.NEW" and new["tombstone_revision"] == 9
    assert new["fires"]["zone"] == "Europe/Berlin" and len(new["fires"]["utc"]) == 3
    assert {"field": "queue", "before": None, "after": "EMAIL"} in new["fields"]
    conflict = next(n for n in document["notices"] if n["kind"] == "unmanaged_conflict")
    assert conflict["blocking"] is True and conflict["source"] == "schedules/app.yaml:3:5"
    assert list(conflict) == ["kind", "name", "key", "revision", "blocking", "source", "message"]


def test_json_example_in_the_docs_is_current():
    docs = (Path(__file__).resolve().parents[2] / "docs" / "plan-json.md").read_text()
    example = re.search(r"```json\n(.*?)```", docs, re.DOTALL)
    assert example is not None
    assert example.group(1) == plan_json.render(_update_plan(), color=False)


def test_json_empty_plan():
    document = json.loads(plan_json.render(plan_for(), color=False))
    assert document["changes"] == [] and document["notices"] == []
    assert document["summary"]["has_changes"] is False


# -- markdown --------------------------------------------------------------------------------


def test_markdown_summary_table_details_and_notices():
    out = plan_markdown.render(rich_plan(), color=False)
    assert out.startswith(
        "### ajc-gitops plan\n\n**Plan: 1 to add, 3 to change, 1 to destroy, 1 to suspend, 1 to resume.**\n"
    )
    assert "| + | create | <code>NEW</code> | <code>schedules/app.yaml:3:5</code> |  |" in out
    assert "| ~ | update | <code>BAD</code> | <code>schedules/app.yaml:3:5</code> | changed outside Git |" in out
    assert "<details><summary>" in out and "</details>" in out
    assert '```diff\n  queue: "OLD" -> "EMAIL"\n' in out
    assert '- schedule: "0 0 1 * *"' in out
    assert "- :x: **blocking: unmanaged_conflict** <code>scheduled_tasks.CONFLICT</code>" in out
    assert "| # | suspend | <code>PAUSE</code> | <code>schedules/app.yaml:3:5</code> |  |" in out
    assert "| > | resume | <code>WAKE</code> | <code>schedules/app.yaml:3:5</code> |  |" in out
    assert '```diff\n  reason: "migration, until Monday"\n  the record is deleted' in out


def test_markdown_escapes_cells_and_fences():
    change = Change(
        Action.UPDATE, "A", 1, None, 1, desired=None, live=None,
        fields=(FieldChange("payload", '"```"', '"|x|"'),), source="dir|x/a.yaml:1:1",
    )  # fmt: skip
    out = plan_markdown.render(replace(plan_for(), changes=(change,)), color=False)
    assert "<code>dir&#124;x/a.yaml:1:1</code>" in out
    assert '````diff\n  payload: "```" -> "|x|"\n````' in out


def test_markdown_no_changes_and_long_plans_are_cut():
    assert "**No changes. The store matches the manifests.**" in plan_markdown.render(_noop_plan(), color=False)
    many = plan_for([want(task(f"S{i:04d}")) for i in range(plan_markdown.MAX_ROWS + 5)])
    out = plan_markdown.render(many, color=False)
    assert "… and 5 more" in out and len(out) < 65_536


# -- github ----------------------------------------------------------------------------------


def test_github_annotations_point_at_the_manifest():
    lines = plan_github.render(rich_plan(), color=False).splitlines()
    assert any(
        line.startswith("::notice file=schedules/app.yaml,line=3,col=5,title=ajc-gitops plan::+ create NEW%0A")
        for line in lines
    )
    assert any(line.startswith("::error file=schedules/app.yaml,line=3,col=5,") for line in lines)
    assert (
        "::warning file=schedules/app.yaml,line=3,col=5,title=ajc-gitops plan::BAD (drifted: changed outside Git)"
        in lines
    )
    assert any(line.startswith("::warning title=ajc-gitops plan::scheduled_tasks.HAND: ") for line in lines)
    assert (
        "::notice file=schedules/app.yaml,line=3,col=5,title=ajc-gitops plan::# suspend PAUSE%0A"
        'reason: "migration, until Monday"%0Athe record is deleted, so no scheduler fires it; '
        "the definition is kept beside it"
    ) in lines
    assert lines[-1] == "Plan: 1 to add, 3 to change, 1 to destroy, 1 to suspend, 1 to resume."


def test_github_escapes_data_and_properties():
    notice = Notice(NoticeKind.UNMANAGED, "A", "scheduled_tasks.A", 1, "100% sure\r\nnext", source="c:d,e.yaml:2:3")
    out = plan_github.render(replace(plan_for(), notices=(notice,)), color=False)
    assert out.splitlines()[0] == (
        "::warning file=c%3Ad%2Ce.yaml,line=2,col=3,title=ajc-gitops plan::scheduled_tasks.A: 100%25 sure%0D%0Anext"
    )


@pytest.mark.parametrize("fmt", sorted(PLAN_RENDERERS))
def test_every_renderer_handles_an_empty_plan(fmt: str):
    out = PLAN_RENDERERS[fmt](plan_for(), color=False)
    assert out.endswith("\n")


def test_text_blocked_plan_without_changes_does_not_claim_no_changes():
    plan = plan_for([want(task("HAND", queue="X"))], {"HAND": record(task("HAND"))})
    lines = plan_text.render(plan, color=False).splitlines()
    assert "Apply is blocked by 1 problem marked error above." in lines
    assert lines[-1] == "Plan: 0 to add, 0 to change, 0 to destroy."


def test_drifted_schedule_gone_from_git_is_not_called_matching():
    live, _ = managed(task("OLD", queue="HAND"))
    plan = plan_for([], live, {"OLD": marker("OLD", record(task("OLD")))})
    out = plan_text.render(plan, color=False)
    assert "still matches" not in out and "  ! not_pruned: scheduled_tasks.OLD" in out


# -- warnings: queues that do not exist -------------------------------------------------------


def _missing_queue_plan() -> Plan:
    return plan_for([want(task("A", queue="EMAIL")), want(task("B", queue="DEFAULT"))], queues=frozenset({"DEFAULT"}))


def test_every_format_shows_a_missing_queue_in_one_line_with_the_command():
    plan = _missing_queue_plan()
    line = (
        "queue EMAIL has no stream CHORIA_AJ_Q_EMAIL, so every fire ends as queue_error (A fires into it); "
        "create it with: ajc queue add EMAIL"
    )
    text = plan_text.render(plan, color=False).splitlines()
    assert text[text.index("Warnings:") + 1] == f"  ! missing_queue: {line}"
    document = json.loads(plan_json.render(plan, color=False))
    assert document["summary"]["warnings"] == 1
    assert document["warnings"] == [
        {
            "kind": "missing_queue",
            "queue": "EMAIL",
            "schedules": ["A"],
            "command": "ajc queue add EMAIL",
            "message": line,
        }
    ]
    assert f"- :warning: **missing_queue** {line}" in plan_markdown.render(plan, color=False)
    assert f"::warning title=ajc-gitops plan::{line}" in plan_github.render(plan, color=False).splitlines()

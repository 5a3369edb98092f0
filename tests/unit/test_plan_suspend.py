"""Suspend and resume in the plan: actions, the marker that keeps the definition, drift, the
hand-made refusal, and the pure ``suspension_of`` that status reads."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ajc_gitops import codec
from ajc_gitops.codec import MarkerError, decode_marker, record_digest
from ajc_gitops.names import MARKER_PREFIX, SCHEDULE_PREFIX
from ajc_gitops.plan.model import Action, FieldChange, NoticeKind
from ajc_gitops.plan.suspend import kept_task, suspended_schedules, suspension_of
from tests.unit.plan_factories import managed, marker, plan_for, record, snapshot, suspended, task, want


def test_suspending_a_managed_schedule_deletes_its_record_and_keeps_it_in_the_marker():
    t = task("EMAIL")
    live, markers = managed(t)
    plan = plan_for([want(t, suspend=True, reason="migration")], live, markers)
    (change,) = plan.changes
    assert change.action is Action.SUSPEND
    assert change.record_revision == 100 and change.marker_revision == 500
    assert change.value is None and change.fires is None  # nothing is created
    assert (change.suspended, change.suspend_reason, change.drift, change.fields) == (True, "migration", False, ())
    mark = decode_marker(change.marker_value or b"")
    assert mark.suspended is not None
    assert (mark.suspended.at, mark.suspended.reason) == (plan.created_at, "migration")
    assert mark.sha256 == record_digest(mark.suspended.record)
    assert kept_task(mark) == replace(t, created_at=codec.decode_or_raise(mark.suspended.record)[0].created_at)
    assert (plan.to_suspend, plan.to_resume, plan.to_destroy, plan.has_changes) == (1, 0, 0, True)


def test_a_suspended_schedule_that_stays_suspended_is_a_noop():
    t = task("EMAIL")
    plan = plan_for([want(t, suspend=True, reason="why")], {}, {"EMAIL": suspended(t, "why")}, dead={"EMAIL": 7})
    (change,) = plan.changes
    assert change.action is Action.NOOP and change.marker_value is None
    assert (change.suspended, change.suspend_reason) == (True, "why")
    assert not plan.has_changes and not plan.notices


def test_a_new_reason_or_definition_while_suspended_rewrites_only_the_marker_and_keeps_the_time():
    t = task("EMAIL")
    markers = {"EMAIL": suspended(t, "old", since="2026-10-01T00:00:00Z")}
    (reason,) = plan_for([want(t, suspend=True, reason="new")], {}, markers).changes
    (edited,) = plan_for([want(task("EMAIL", queue="OTHER"), suspend=True, reason="old")], {}, markers).changes
    for change in (reason, edited):
        assert change.action is Action.SUSPEND and change.record_revision is None and not change.drift
        held = decode_marker(change.marker_value or b"").suspended
        assert held is not None and held.at == "2026-10-01T00:00:00Z"
    assert reason.fields == () and decode_marker(reason.marker_value or b"").suspended.reason == "new"  # type: ignore[union-attr]
    assert edited.fields == (FieldChange("queue", "EMAIL", "OTHER"),)
    kept = kept_task(decode_marker(edited.marker_value or b""))
    assert kept is not None and kept.queue == "OTHER"


def test_removing_the_flag_resumes_with_a_create_over_the_tombstone():
    t = task("EMAIL")
    plan = plan_for([want(t)], {}, {"EMAIL": suspended(t, "why")}, dead={"EMAIL": 42})
    (change,) = plan.changes
    assert change.action is Action.RESUME
    assert (change.record_revision, change.tombstone_revision, change.marker_revision) == (None, 42, 500)
    assert change.value is not None and codec.decode_or_raise(change.value)[0].name == "EMAIL"
    mark = decode_marker(change.marker_value or b"")
    assert mark.suspended is None and mark.sha256 == record_digest(change.value)
    assert (change.suspended, change.suspend_reason, change.drift, change.fields) == (False, None, False, ())
    assert change.fires is not None and len(change.fires.utc) == 3
    assert (plan.to_resume, plan.to_add) == (1, 0)


def test_resume_lists_what_changed_since_it_was_suspended():
    plan = plan_for([want(task("EMAIL", max_tries=2))], {}, {"EMAIL": suspended(task("EMAIL"))})
    assert plan.changes[0].fields == (FieldChange("max_tries", "10", "2"),)


def test_a_schedule_can_start_suspended():
    (change,) = plan_for([want(task("NEW"), suspend=True)]).changes
    assert change.action is Action.SUSPEND and change.record_revision is None and change.marker_revision is None
    assert change.suspended and change.suspend_reason == "" and not change.drift


def test_a_suspended_schedule_re_created_outside_git_is_drift_and_suspended_again():
    t = task("EMAIL")
    plan = plan_for([want(t, suspend=True)], {"EMAIL": record(t)}, {"EMAIL": suspended(t)})
    (change,) = plan.changes
    assert change.action is Action.SUSPEND and change.record_revision == 100 and change.drift


def test_a_hand_made_schedule_is_not_suspended_without_adopt():
    t = task("HAND")
    plan = plan_for([want(t, suspend=True, line=7)], {"HAND": record(t)})
    assert plan.changes == ()
    (notice,) = plan.blocked
    assert notice.kind is NoticeKind.UNMANAGED_CONFLICT and notice.source == "schedules/app.yaml:7:5"
    assert notice.message.startswith("schedules/app.yaml:7:5: HAND was not created by ajc-gitops")
    assert "--adopt HAND" in notice.message and "\n" not in notice.message
    adopted = plan_for([want(t, suspend=True)], {"HAND": record(t)}, adopt=frozenset({"HAND"}))
    (change,) = adopted.changes
    assert change.action is Action.SUSPEND and change.record_revision == 100 and change.marker_revision is None


def test_a_suspended_schedule_gone_from_git_is_an_orphan_marker_that_prune_removes():
    plan = plan_for([], {}, {"GONE": suspended(task("GONE"))}, prune=True)
    (notice,) = plan.notices
    assert notice.kind is NoticeKind.ORPHAN_MARKER and notice.message.startswith("GONE is suspended")


def test_suspension_of_reads_the_marker_snapshot():
    t = task("EMAIL")
    markers = snapshot(
        MARKER_PREFIX,
        {"EMAIL": suspended(t, "migration", since="2026-10-01T00:00:00Z"), "ON": marker("ON", record(task("ON")))},
    )
    found = suspension_of("EMAIL", markers)
    assert found is not None
    assert (found.reason, found.since, found.source, found.record_live) == (
        "migration",
        "2026-10-01T00:00:00Z",
        "schedules/app.yaml:3:5",
        False,
    )
    assert found.task is not None and found.task.queue == t.queue
    assert suspension_of("ON", markers) is None and suspension_of("NOPE", markers) is None
    assert list(suspended_schedules(markers)) == ["EMAIL"]
    records = snapshot(SCHEDULE_PREFIX, {"EMAIL": record(t)})
    live = suspension_of("EMAIL", markers, records)
    assert live is not None and live.record_live


def test_a_marker_with_a_malformed_suspension_is_not_ours():
    good = json.loads(suspended(task("EMAIL")))
    for bad in ("x", {"at": "t", "reason": 1, "record": "{}"}, {"at": "t", "reason": ""}):
        with pytest.raises(MarkerError, match="suspended"):
            decode_marker(json.dumps({**good, "suspended": bad}).encode())
    other = {**good, "suspended": {**good["suspended"], "record": record(task("OTHER")).decode()}}
    assert kept_task(decode_marker(json.dumps(other).encode())) is None  # names another schedule

"""Queues that do not exist: which schedules fire into them after apply, one warning per queue."""

from __future__ import annotations

from ajc_gitops.plan.model import WarningKind
from ajc_gitops.plan.queues import missing_queues, unchecked_warning
from tests.unit.plan_factories import managed, plan_for, record, suspended, task, want


def test_one_warning_per_missing_queue_naming_its_schedules_and_the_command():
    pairs = [(f"S{i}", "EMAIL") for i in range(7)] + [("R", "REPORTS"), ("D", "DEFAULT")]
    email, reports = missing_queues(pairs, {"DEFAULT"})
    assert (email.kind, email.queue, email.command) == (WarningKind.MISSING_QUEUE, "EMAIL", "ajc queue add EMAIL")
    assert email.schedules == tuple(f"S{i}" for i in range(7))
    assert "(S0, S1, S2, S3, S4 and 2 more fire into it)" in email.message and "\n" not in email.message
    assert reports.message.endswith("(R fires into it); create it with: ajc queue add REPORTS")
    assert missing_queues(pairs, {"DEFAULT", "EMAIL", "REPORTS"}) == ()


def test_the_plan_checks_what_fires_after_apply():
    live, markers = managed(task("GONE", queue="OLDQ"), task("KEPT", queue="KEPTQ"))
    live["HAND"] = record(task("HAND", queue="HANDQ"))
    markers["SLEEPING"] = suspended(task("SLEEPING", queue="SLEEPQ"))
    desired = [
        want(task("NEW", queue="NEWQ")),
        want(task("KEPT", queue="KEPTQ")),
        want(task("PAUSED", queue="PAUSEQ"), suspend=True),
        want(task("SLEEPING", queue="SLEEPQ"), suspend=True),
    ]
    plan = plan_for(desired, live, markers, prune=True, queues=frozenset({"DEFAULT"}))
    # GONE is deleted, PAUSED and SLEEPING are suspended; the hand-made HAND still fires.
    assert [w.queue for w in plan.warnings] == ["HANDQ", "KEPTQ", "NEWQ"]
    assert plan_for(desired, live, markers, prune=True).warnings == ()  # queues unknown: no check
    resumed = plan_for([want(task("SLEEPING", queue="SLEEPQ"))], {}, markers, queues=frozenset())
    assert [w.schedules for w in resumed.warnings] == [("SLEEPING",)]


def test_unlisted_queues_are_one_warning_saying_why():
    warning = unchecked_warning("permissions violation for publish to $JS.API.STREAM.NAMES")
    assert warning.kind is WarningKind.QUEUES_UNCHECKED and warning.command is None
    assert "no schedule's queue was checked" in warning.message and "STREAM.NAMES" in warning.message

"""deploy/prometheus/ajc-gitops-alerts.yaml: the rules parse, cover what issue 12 asks (no
leader, a stale schedule, missed slots), and name only metrics the scheduler exports. With
``promtool`` on PATH the file is also loaded by Prometheus' own checker (no package of the
project's registries ships it, so that part runs where someone installed it)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ajc_gitops.scheduler.metrics import GO_NAMES, OUR_NAMES, SchedulerMetrics

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "ajc-gitops-alerts.yaml"
# PromQL words that look like metric names: functions, aggregations, keywords.
PROMQL_WORDS = {"max", "sum", "by", "without", "time", "absent", "increase", "rate", "or", "and", "unless", "on"}
IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


def rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    """Identifiers of an expression that are not PromQL words, durations or label names."""
    without_labels = re.sub(r"\{[^}]*\}|\((?:by|without)\s*\([^)]*\)|by \([^)]*\)|\[[^\]]*\]", " ", expr)
    return {w for w in IDENT.findall(without_labels) if w not in PROMQL_WORDS and not w.isdigit()}


def exported() -> str:
    """The /metrics text of a scheduler that has fired, missed, and seen a leader."""
    metrics = SchedulerMetrics("t")
    metrics.schedule_fired("a", 100)
    metrics.schedule_next("a", 160, 60)
    metrics.schedule_missed("a", 2)
    metrics.group_leader("py-a", "ajc-gitops")
    return metrics.render().decode()


def test_the_rules_cover_no_leader_stale_and_missed():
    names = {rule["alert"] for rule in rules()}
    assert names == {"AjcGitopsNoSchedulerLeader", "AjcGitopsScheduleStale", "AjcGitopsMissedSlots"}
    for rule in rules():
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


def test_every_metric_in_an_expression_is_one_the_scheduler_exports():
    text = exported()
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    for rule in rules():
        used = metric_names(rule["expr"])
        assert used, rule["alert"]
        for name in used:
            assert name in {**GO_NAMES, **OUR_NAMES}, f"{rule['alert']}: {name} is not a scheduler metric"
            assert name in samples, f"{rule['alert']}: {name} is not in /metrics"


def test_a_metric_name_check_catches_a_typo():
    assert metric_names("max(ajc_gitops_scheduler_group_has_leadr) == 0") == {"ajc_gitops_scheduler_group_has_leadr"}
    assert metric_names('sum by (schedule) (increase(x_total{a="b"}[1h])) > 0') == {"x_total"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (no pip package ships it)")
def test_promtool_loads_the_rules():
    done = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

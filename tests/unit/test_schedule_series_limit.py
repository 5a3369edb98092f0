"""Per-schedule series are exported up to --schedule-metrics-limit schedules, then left out
(with one warning) instead of making every scrape huge; they come back below the limit."""

from __future__ import annotations

import logging

import pytest

from ajc_gitops.scheduler.metrics import SchedulerMetrics

NEXT = "ajc_gitops_scheduler_schedule_next_fire_timestamp_seconds"
LAST = "ajc_gitops_scheduler_schedule_last_fire_timestamp_seconds"


def series(metrics: SchedulerMetrics, name: str) -> list[str]:
    return [line for line in metrics.render().decode().splitlines() if line.startswith(name + "{")]


def test_per_schedule_series_stop_past_the_limit_and_return_below_it(caplog: pytest.LogCaptureFixture) -> None:
    metrics = SchedulerMetrics("t", schedule_series_limit=2)
    for name in ("a", "b"):
        metrics.schedule_next(name, 160, 60)
        metrics.schedule_fired(name, 100)
    assert len(series(metrics, NEXT)) == 2 and len(series(metrics, LAST)) == 2
    metrics.schedule_next("c", 160, 60)
    with caplog.at_level(logging.WARNING):
        assert series(metrics, NEXT) == [] and series(metrics, LAST) == []
        metrics.render()  # warned once, not per scrape
    assert sum("over --schedule-metrics-limit 2" in r.getMessage() for r in caplog.records) == 1
    assert f"# TYPE {NEXT} gauge" in metrics.render().decode()  # the family stays, empty
    metrics.schedule_next("c", None, None)  # removed
    assert len(series(metrics, NEXT)) == 2

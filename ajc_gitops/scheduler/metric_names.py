"""The name, type, labels and help of every metric the scheduler exports: Go's (contract §6)
and ours. ``metrics.py`` builds the Prometheus objects from these tables."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["DEFAULT_SCHEDULE_SERIES_LIMIT", "GO_NAMES", "OUR_NAMES"]

# Per-schedule series are exported while leading at most this many schedules: three series
# each, and a million schedules would make a 90 MB scrape that takes ~17 s to render.
DEFAULT_SCHEDULE_SERIES_LIMIT = 20_000

# name -> (type, labels, help); contract §6, exactly.
GO_NAMES: Mapping[str, tuple[str, tuple[str, ...], str]] = {
    "choria_asyncjobs_task_scheduler_paused": ("gauge", (), "1 while this scheduler is not the leader"),
    "choria_asyncjobs_task_scheduler_schedules_total": ("gauge", (), "Scheduled tasks currently loaded"),
    "choria_asyncjobs_task_scheduler_scheduled_count": ("counter", ("type", "queue"), "Tasks created by schedules"),
    "choria_asyncjobs_task_scheduler_schedule_error_count": (
        "counter",
        ("type", "queue"),
        "Scheduled task creations that failed",
    ),
    "choria_asyncjobs_queue_enqueue_count": ("counter", ("queue",), "Work items enqueued"),
    "choria_asyncjobs_queue_enqueue_error_count": ("counter", ("queue",), "Work items that failed to enqueue"),
    "choria_asyncjobs_task_update_total": ("counter", ("state",), "Task records stored, by state"),
    "choria_asyncjobs_task_update_error_total": ("counter", (), "Task records that failed to store"),
    "choria_asyncjobs_election_campaigns": (
        "counter",
        ("election", "identity", "state"),
        "Election campaigns, by state",
    ),
    "choria_asyncjobs_election_leader": ("gauge", ("election", "identity"), "1 while holding the election key"),
    "choria_asyncjobs_election_interval_seconds": ("gauge", ("election", "identity"), "Campaign interval"),
}
OUR_NAMES: Mapping[str, tuple[str, tuple[str, ...], str]] = {
    "ajc_gitops_scheduler_fire_lag_seconds": ("histogram", (), "Seconds from the cron instant to the task stored"),
    "ajc_gitops_scheduler_catchup_fires_total": ("counter", (), "Slots fired late after a leaderless gap"),
    "ajc_gitops_scheduler_duplicate_fires_suppressed_total": (
        "counter",
        (),
        "Fires rejected because the slot's task already existed",
    ),
    "ajc_gitops_scheduler_invalid_schedules_skipped_total": (
        "counter",
        ("reason",),
        "Invalid schedule records skipped",
    ),
    "ajc_gitops_scheduler_invalid_schedules": ("gauge", ("reason",), "Invalid schedule records currently skipped"),
    "ajc_gitops_scheduler_requeued_total": (
        "counter",
        ("queue",),
        "Stranded tasks (queue_error for a passing cause) whose work item was resent, record back to new",
    ),
    "ajc_gitops_scheduler_requeue_abandoned_total": (
        "counter",
        ("queue",),
        "Stranded tasks left in queue_error: past the queue's duplicate window or the task's deadline",
    ),
    "ajc_gitops_scheduler_requeue_pending": ("gauge", (), "Stranded tasks waiting for another requeue attempt"),
    "ajc_gitops_scheduler_event_loop_stall_seconds": (
        "histogram",
        ("phase",),
        "How late a 10 ms event-loop tick ended (scheduler/loopprobe.py)",
    ),
    "ajc_gitops_scheduler_event_loop_stall_max_seconds": (
        "gauge",
        ("phase",),
        "Longest event-loop stall seen, by phase (loading, running)",
    ),
    # Per schedule and per group (issue 12): what deploy/prometheus/ajc-gitops-alerts.yaml uses.
    "ajc_gitops_scheduler_schedule_last_fire_timestamp_seconds": (
        "gauge",
        ("schedule",),
        "Cron instant of the schedule's last slot that has its task (this member, while leading)",
    ),
    "ajc_gitops_scheduler_schedule_next_fire_timestamp_seconds": (
        "gauge",
        ("schedule",),
        "Cron instant of the schedule's next slot (only while this member leads)",
    ),
    "ajc_gitops_scheduler_schedule_period_seconds": (
        "gauge",
        ("schedule",),
        "Seconds from the schedule's latest slot to its next one (only while this member leads)",
    ),
    "ajc_gitops_scheduler_missed_slots_total": (
        "counter",
        ("schedule",),
        "Slots this leader knows nobody fired: past the catch-up window, or never stored within it",
    ),
    "ajc_gitops_scheduler_group_has_leader": ("gauge", (), "1 while some member (Go or ajc-gitops) holds the key"),
    "ajc_gitops_scheduler_group_leader": (
        "gauge",
        ("leader", "kind"),
        "1 for the member holding the election key as this member last read it; kind go or ajc-gitops",
    ),
}

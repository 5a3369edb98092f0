"""Every name the asyncjobs contract fixes, spelled once: buckets, key prefixes and keys,
streams, subjects and the JetStream headers of KV operations (contract §1, §2.1, §3, §4.4, §5),
plus the keys ajc-gitops adds beside Go's (ownership and scheduler-member markers), which Go
never reads because its readers watch ``scheduled_tasks.*`` only (contract §2.1).

Subjects with a variable part are ``str.format`` templates.
"""

from __future__ import annotations

__all__ = [
    "CONFIG_BUCKET",
    "DEFAULT_QUEUE_NAME",
    "ELECTIONS_BUCKET",
    "ELECTION_KEY",
    "EXPECTED_LAST_SUBJECT_SEQ",
    "KV_OPERATION",
    "LEADER_EVENT_SUBJECT",
    "MARKER_PREFIX",
    "MEMBER_PREFIX",
    "MSG_ID",
    "QUEUE_STREAM",
    "QUEUE_STREAM_PREFIX",
    "QUEUE_SUBJECT",
    "QUEUE_SUBJECTS",
    "ROLLUP",
    "SCHEDULE_PREFIX",
    "TASKS_STREAM",
    "TASK_EVENT_SUBJECT",
    "TASK_SUBJECT",
    "kv_stream",
    "kv_subject",
    "marker_key",
    "member_key",
    "schedule_key",
]

# -- KV buckets and keys (contract §1, §2.1, §5) ---------------------------------------------

CONFIG_BUCKET = "CHORIA_AJ_CONFIGURATION"
ELECTIONS_BUCKET = "CHORIA_AJ_ELECTIONS"
SCHEDULE_PREFIX = "scheduled_tasks."
ELECTION_KEY = "task_scheduler"
# Ours, beside Go's keys in the configuration bucket.
MARKER_PREFIX = "ajc_gitops.managed."
MEMBER_PREFIX = "ajc_gitops.schedulers."


def schedule_key(name: str) -> str:
    return SCHEDULE_PREFIX + name


def marker_key(name: str) -> str:
    return MARKER_PREFIX + name


def member_key(name: str) -> str:
    return MEMBER_PREFIX + name


def kv_stream(bucket: str) -> str:
    """The stream behind a KV bucket."""
    return f"KV_{bucket}"


def kv_subject(bucket: str, key: str) -> str:
    return f"$KV.{bucket}.{key}"


# -- JetStream headers of KV operations (contract §3) ----------------------------------------

KV_OPERATION = "KV-Operation"
EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
ROLLUP = "Nats-Rollup"
MSG_ID = "Nats-Msg-Id"

# -- tasks, queues and events (storage.go, contract §1, §4.4, §5) ----------------------------

TASKS_STREAM = "CHORIA_AJ_TASKS"
TASK_SUBJECT = "CHORIA_AJ.T.{}"
QUEUE_STREAM = "CHORIA_AJ_Q_{}"
QUEUE_STREAM_PREFIX = "CHORIA_AJ_Q_"
QUEUE_SUBJECT = "CHORIA_AJ.Q.{}.{}"
QUEUE_SUBJECTS = "CHORIA_AJ.Q.>"  # every queue's work items: how Go's QueueNames finds the queues
TASK_EVENT_SUBJECT = "CHORIA_AJ.E.task_state.{}"
LEADER_EVENT_SUBJECT = "CHORIA_AJ.E.leader_election.{}"
DEFAULT_QUEUE_NAME = "DEFAULT"

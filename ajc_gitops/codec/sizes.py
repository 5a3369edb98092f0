"""How many bytes the messages a schedule causes take on the wire, so that a schedule a server
would refuse to store, or whose every fire it would refuse, is caught before it is written.

Built by the encoders the writers use, with every part whose width varies at its widest; a
server compares header and body together with its ``max_payload`` (nats-server ``HPUB``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from ajc_gitops.codec.schedule import encode_scheduled_task
from ajc_gitops.codec.task import encode_task, task_payload_for_schedule
from ajc_gitops.model import GoTime, ScheduledTask, Task
from ajc_gitops.names import EXPECTED_LAST_SUBJECT_SEQ
from ajc_gitops.rules import DEFAULT_MAX_TRIES

__all__ = ["DEFAULT_MAX_PAYLOAD", "fire_publish_size", "header_block_size", "record_publish_size"]

DEFAULT_MAX_PAYLOAD = 1024 * 1024  # nats-server's max_payload unless configured
_KSUID_CHARS = 27
# RFC3339Nano at its widest: nine fraction digits; a fire's times are UTC ("Z"), a record's
# created_at may carry any offset.
_WIDEST_UTC = GoTime(unix_ns=1_785_000_000_123_456_789)
_WIDEST_ZONED = GoTime(unix_ns=1_785_000_000_123_456_789, offset_s=-(23 * 3600 + 59 * 60))
_WIDEST_REVISION = str(2**64 - 1)


def header_block_size(headers: Mapping[str, str]) -> int:
    """``NATS/1.0\\r\\n``, one ``Name: value\\r\\n`` per header, then ``\\r\\n`` (ADR-4)."""
    if not headers:
        return 0
    return len("NATS/1.0\r\n") + sum(len(k) + 2 + len(v) + 2 for k, v in headers.items()) + 2


def fire_publish_size(schedule: ScheduledTask) -> int:
    """Header and body of the largest Task record a fire of ``schedule`` stores (contract §4.4
    step 1): the Task ``scheduler/tasks.build_task`` makes, its payload the stored bytes
    encoded once more (§4.2), its ID a KSUID, ``created`` and ``deadline`` at their widest."""
    task = Task(
        id="0" * _KSUID_CHARS,
        type=schedule.task_type,
        queue=schedule.queue,
        payload=task_payload_for_schedule(schedule.payload),
        max_tries=schedule.max_tries if schedule.max_tries > 0 else DEFAULT_MAX_TRIES,
        created=_WIDEST_UTC,
        deadline=_WIDEST_UTC if schedule.deadline_ns > 0 else None,
    )
    return len(encode_task(task)) + header_block_size({EXPECTED_LAST_SUBJECT_SEQ: "0"})


def record_publish_size(schedule: ScheduledTask) -> int:
    """Header and body of the schedule's KV record as apply writes it (revision-guarded)."""
    body = encode_scheduled_task(replace(schedule, created_at=_WIDEST_ZONED))
    return len(body) + header_block_size({EXPECTED_LAST_SUBJECT_SEQ: _WIDEST_REVISION})

"""The codec: the only place record, task, event and marker bytes are built or parsed.

``schedule`` is the scheduled-task KV record (contract §2), ``task`` the Task record and work
item a fire writes (§4), ``events`` the lifecycle events, ``marker`` and ``member`` the two
keys of our own beside Go's. Everything is re-exported here: import from ``ajc_gitops.codec``.
"""

from __future__ import annotations

from ajc_gitops.codec.events import (
    LEADER_ELECTED_EVENT_TYPE,
    TASK_STATE_EVENT_TYPE,
    decode_task_event,
    encode_leader_elected_event,
    encode_task_state_event,
    go_round_ms,
)
from ajc_gitops.codec.marker import MarkerError, decode_marker, encode_marker, record_digest
from ajc_gitops.codec.member import check_member_name, decode_member, encode_member
from ajc_gitops.codec.schedule import (
    Decoded,
    DecodeError,
    decode_go,
    decode_or_raise,
    decode_scheduled_task,
    encode_scheduled_task,
)
from ajc_gitops.codec.sizes import DEFAULT_MAX_PAYLOAD, fire_publish_size, header_block_size, record_publish_size
from ajc_gitops.codec.task import (
    TaskFields,
    decode_task,
    decode_task_progress,
    encode_task,
    encode_work_item,
    read_task_fields,
    task_payload_for_schedule,
)
from ajc_gitops.gowire.gomarshal import EncodeError, go_json_marshal

__all__ = [
    "DEFAULT_MAX_PAYLOAD",
    "LEADER_ELECTED_EVENT_TYPE",
    "TASK_STATE_EVENT_TYPE",
    "DecodeError",
    "Decoded",
    "EncodeError",
    "MarkerError",
    "TaskFields",
    "check_member_name",
    "decode_go",
    "decode_marker",
    "decode_member",
    "decode_or_raise",
    "decode_scheduled_task",
    "decode_task",
    "decode_task_event",
    "decode_task_progress",
    "encode_leader_elected_event",
    "encode_marker",
    "encode_member",
    "encode_scheduled_task",
    "encode_task",
    "encode_task_state_event",
    "encode_work_item",
    "fire_publish_size",
    "go_json_marshal",
    "go_round_ms",
    "header_block_size",
    "read_task_fields",
    "record_digest",
    "record_publish_size",
    "task_payload_for_schedule",
]

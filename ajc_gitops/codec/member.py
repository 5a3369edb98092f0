"""A scheduler group member's marker ``ajc_gitops.schedulers.<name>`` (see
``scheduler/group.py`` for what it is for): compact JSON of our own form, since Go never reads it
(contract §2.1: readers watch ``scheduled_tasks.*`` only)."""

from __future__ import annotations

import json
import re

from ajc_gitops.model import MemberRecord
from ajc_gitops.names import MEMBER_PREFIX

__all__ = ["check_member_name", "decode_member", "encode_member"]

_MARKER_FORMAT = 1
# nats.go's KV key rule (kv.go validKeyRe) for the part after the prefix.
_KEY_TOKEN_RE = re.compile(r"^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$")


def check_member_name(name: str) -> str | None:
    """Why ``name`` cannot be a marker key, or None. Go accepts any scheduler name (contract §5)
    but our marker key must be a valid KV key."""
    if not _KEY_TOKEN_RE.match(name):
        return "scheduler name must be letters, digits and -/_= (dots allowed between them)"
    return None


def encode_member(record: MemberRecord) -> bytes:
    body = {
        "format": _MARKER_FORMAT,
        "name": record.name,
        "started_ns": record.started_ns,
        "go_leader": record.go_leader,
        "go_horizon_ns": record.go_horizon_ns,
        "handled_through_s": record.handled_through_s,
        "handled_revision": record.handled_revision,
    }
    # Written only when set, so a marker of a member that never led keeps its old bytes.
    if record.leading_since_ns is not None:
        body["leading_since_ns"] = record.leading_since_ns
    if record.go_leader_since_ns is not None:
        body["go_leader_since_ns"] = record.go_leader_since_ns
    return json.dumps(body, separators=(",", ":")).encode()


def decode_member(key: str, value: bytes) -> MemberRecord:
    """A marker. An unreadable one still names an ajc-gitops member (the key suffix), and
    since we cannot tell what it saw, it counts as having seen a Go leader very late, so
    catch-up stays conservative (``group.py``) until someone deletes it."""
    name = key.removeprefix(MEMBER_PREFIX)
    try:
        body = json.loads(value)
        leader = body.get("go_leader")
        return MemberRecord(
            name=name,
            started_ns=int(body.get("started_ns") or 0),
            go_leader=leader if isinstance(leader, str) else None,
            go_horizon_ns=_int_or_none(body.get("go_horizon_ns")),
            handled_through_s=_int_or_none(body.get("handled_through_s")),
            handled_revision=_int_or_none(body.get("handled_revision")),
            leading_since_ns=_int_or_none(body.get("leading_since_ns")),
            go_leader_since_ns=_int_or_none(body.get("go_leader_since_ns")),
        )
    except (ValueError, TypeError, AttributeError, OverflowError, RecursionError):
        return MemberRecord(name=name, started_ns=0, go_leader="?", go_horizon_ns=2**62)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None

"""The scheduler group's NATS side: member markers and a consistent read of the election key.

Part of the store package, like ``watch.py``: it reaches the connection only through
``Store._raw_connection`` / ``Store._api_request``.

Member markers live in the configuration bucket under ``ajc_gitops.schedulers.<name>``. Go
readers watch ``scheduled_tasks.*`` only (contract §2.1), so Go never sees them, and plan/apply
read ``scheduled_tasks.`` and ``ajc_gitops.managed.`` only. A marker says "a scheduler of this
name is an ajc-gitops one" and carries what that member saw of Go leaders (see
``scheduler/group.py`` for why). Each member writes only its own marker.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass

from ajc_gitops.errors import StoreError
from ajc_gitops.store.client import Store
from ajc_gitops.store.errors import _decode_reply
from ajc_gitops.store.model import CONFIG_BUCKET, ELECTIONS_BUCKET
from ajc_gitops.store.watch import ELECTION_KEY

__all__ = [
    "MEMBER_PREFIX",
    "Holder",
    "MemberRecord",
    "check_member_name",
    "decode_member",
    "encode_member",
    "read_holder",
    "read_members",
    "write_member",
]

MEMBER_PREFIX = "ajc_gitops.schedulers."
_MARKER_FORMAT = 1
# nats.go's KV key rule (kv.go validKeyRe) for the part after the prefix.
_KEY_TOKEN_RE = re.compile(r"^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$")
_KV_OPERATION = "KV-Operation"
_ERR_NO_MESSAGE = 10037  # JSNoMessageFoundErr


def check_member_name(name: str) -> str | None:
    """Why ``name`` cannot be a marker key, or None. Go accepts any scheduler name (contract §5)
    but our marker key must be a valid KV key."""
    if not _KEY_TOKEN_RE.match(name):
        return "scheduler name must be letters, digits and -/_= (dots allowed between them)"
    return None


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """One member's marker. ``go_horizon_ns``: the latest Unix-ns instant a Go leader this
    member saw may have fired at (None: it never saw one); ``go_leader`` its name.
    ``handled_through_s``/``handled_revision``: while it led, every slot at or before that
    second of every schedule whose record revision is at most ``handled_revision`` was fired
    (or is out of any window), so a next leader need not attempt those again."""

    name: str
    started_ns: int
    go_leader: str | None = None
    go_horizon_ns: int | None = None
    handled_through_s: int | None = None
    handled_revision: int | None = None


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
        )
    except (ValueError, TypeError, AttributeError):
        return MemberRecord(name=name, started_ns=0, go_leader="?", go_horizon_ns=2**62)


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def write_member(store: Store, record: MemberRecord) -> None:
    """Put our own marker. A plain Put is right here: the key is ours alone (one writer per
    name), it is not a schedule (contract §0.3 forbids Put only over schedule keys)."""
    await store.put_raw(MEMBER_PREFIX + record.name, encode_member(record), bucket=CONFIG_BUCKET)


async def read_members(store: Store) -> list[MemberRecord]:
    """Every member marker (complete, via ``Store.snapshot``)."""
    snapshot = await store.snapshot(MEMBER_PREFIX, bucket=CONFIG_BUCKET)
    return [decode_member(e.key, e.value or b"") for e in snapshot.live.values()]


@dataclass(frozen=True, slots=True)
class Holder:
    """The election key as the stream leader has it now: ``name`` None when absent/deleted."""

    name: str | None
    revision: int | None


async def read_holder(store: Store, *, timeout: float) -> Holder:
    """Last message of the election key via ``STREAM.MSG.GET`` (answered by the stream
    leader, so never a stale replica, unlike a direct get). An expired key has no message."""
    subject = f"$KV.{ELECTIONS_BUCKET}.{ELECTION_KEY}"
    api = f"{store.api_prefix}.STREAM.MSG.GET.KV_{ELECTIONS_BUCKET}"
    nc, guard = store._raw_connection(f"read {ELECTION_KEY}", api)
    body = json.dumps({"last_by_subj": subject}).encode()
    try:
        with guard:
            reply = _decode_reply(await nc.request(api, body, timeout=timeout))
    except StoreError as exc:
        if getattr(exc.__cause__, "err_code", None) == _ERR_NO_MESSAGE:
            return Holder(None, None)
        raise
    message = reply.get("message") or {}
    seq = message.get("seq")
    revision = seq if isinstance(seq, int) else None
    headers = base64.b64decode(message.get("hdrs") or b"").decode(errors="replace")
    for line in headers.split("\r\n")[1:]:
        key, _, val = line.partition(":")
        if key.strip().lower() == _KV_OPERATION.lower() and val.strip() in ("DEL", "PURGE"):
            return Holder(None, revision)
    data = base64.b64decode(message.get("data") or b"")
    return Holder(data.decode(errors="replace"), revision)

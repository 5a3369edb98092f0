"""The scheduler group's NATS side: member markers and a consistent read of the election key.

Part of the store package, like ``watch.py``: it reaches the connection only through
the ``Store``'s public adapter interface (``client``, ``guard``) / ``Store.api_request``.

Member markers live in the configuration bucket under ``ajc_gitops.schedulers.<name>``. Go
readers watch ``scheduled_tasks.*`` only (contract §2.1), so Go never sees them, and plan/apply
read ``scheduled_tasks.`` and ``ajc_gitops.managed.`` only. A marker says "a scheduler of this
name is an ajc-gitops one" and carries what that member saw of Go leaders (see
``scheduler/group.py`` for why). Each member writes only its own marker.
"""

from __future__ import annotations

import base64
import json

from ajc_gitops.codec import decode_member, encode_member
from ajc_gitops.errors import StoreError
from ajc_gitops.model import MemberRecord
from ajc_gitops.names import (
    CONFIG_BUCKET,
    ELECTION_KEY,
    ELECTIONS_BUCKET,
    KV_OPERATION,
    MEMBER_PREFIX,
    kv_stream,
    kv_subject,
    member_key,
)
from ajc_gitops.state import Holder
from ajc_gitops.store.kv.client import Store
from ajc_gitops.store.kv.errors import decode_reply

__all__ = ["read_holder", "read_members", "write_member"]

_ERR_NO_MESSAGE = 10037  # JSNoMessageFoundErr


async def write_member(store: Store, record: MemberRecord) -> None:
    """Put our own marker. A plain Put is right here: the key is ours alone (one writer per
    name), it is not a schedule (contract §0.3 forbids Put only over schedule keys)."""
    await store.put_raw(member_key(record.name), encode_member(record), bucket=CONFIG_BUCKET)


async def read_members(store: Store) -> list[MemberRecord]:
    """Every member marker (complete, via ``Store.snapshot``)."""
    snapshot = await store.snapshot(MEMBER_PREFIX, bucket=CONFIG_BUCKET)
    return [decode_member(e.key, e.value or b"") for e in snapshot.live.values()]


async def read_holder(store: Store, *, timeout: float) -> Holder:
    """Last message of the election key via ``STREAM.MSG.GET`` (answered by the stream
    leader, so never a stale replica, unlike a direct get). An expired key has no message."""
    subject = kv_subject(ELECTIONS_BUCKET, ELECTION_KEY)
    api = f"{store.api_prefix}.STREAM.MSG.GET.{kv_stream(ELECTIONS_BUCKET)}"
    nc, guard = store.client, store.guard(f"read {ELECTION_KEY}", api)
    body = json.dumps({"last_by_subj": subject}).encode()
    try:
        with guard:
            reply = decode_reply(await nc.request(api, body, timeout=timeout))
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
        if key.strip().lower() == KV_OPERATION.lower() and val.strip() in ("DEL", "PURGE"):
            return Holder(None, revision)
    data = base64.b64decode(message.get("data") or b"")
    return Holder(data.decode(errors="replace"), revision)

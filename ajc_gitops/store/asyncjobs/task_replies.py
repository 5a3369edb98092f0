"""How a reply to a task or work-item publish is read, as Go's ``EnqueueTask`` sees it with
jsm.go's ``ParsePubAck`` (contract §4.4), and Go's texts for a ``queue_error`` task's
``last_err``. Split from ``tasks.py`` for size.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg

from ajc_gitops.codec import decode_task_progress

__all__ = ["DUPLICATE_ITEM", "NO_RESPONDERS", "TIMEOUT", "Reply", "parse_reply", "stored_but_never_queued"]

# Go's error texts for the last_err of a queue_error task (§4.4 step 4).
NO_RESPONDERS = "nats: no responders available for request"  # nats.ErrNoResponders
DUPLICATE_ITEM = "duplicate work queue item"  # asyncjobs ErrDuplicateItem
TIMEOUT = "nats: timeout"  # nats.ErrTimeout: what Go would say if it had a timeout


@dataclass(frozen=True, slots=True)
class Reply:
    ok: bool
    seq: int | None = None
    duplicate: bool = False
    err_code: int | None = None
    text: str = ""
    body: dict[str, Any] | None = None
    no_responders: bool = False


def _jsm_error_text(err: dict[str, Any]) -> str:
    # jsm.go api.ApiError.Error(), which ParsePubAck returns and Go stores as last_err.
    desc, code, err_code = err.get("description") or "", err.get("code") or 0, err.get("err_code") or 0
    if desc:
        return f"{desc} ({err_code})"
    if code:
        return f"unknown JetStream {code} Error ({err_code})"
    return "unknown JetStream Error"


def parse_reply(msg: Msg) -> Reply:
    """A PubAck or JetStream API reply, classified the way Go's ``EnqueueTask`` sees it."""
    if msg.headers and msg.headers.get("Status") == "503":
        return Reply(False, text=NO_RESPONDERS, no_responders=True)
    data = msg.data
    plain = _PLAIN_PUBACK.fullmatch(data)
    if plain is not None:  # the common case, without json.loads (about 20% of a fire's CPU)
        return Reply(True, seq=int(plain[1]), duplicate=plain[2] is not None)
    if data.startswith(b"-ERR"):  # jsm.go ParseErrorResponse's legacy form
        return Reply(False, text=data[4:].decode(errors="replace").strip().strip("'"))
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return Reply(False, text=f"invalid JetStream response {data[:80]!r}")
    err = body.get("error")
    if isinstance(err, dict):
        code = err.get("err_code")
        return Reply(False, err_code=code if isinstance(code, int) else None, text=_jsm_error_text(err))
    seq = body.get("seq")
    return Reply(True, seq=seq if isinstance(seq, int) else None, duplicate=body.get("duplicate") is True, body=body)


# A PubAck as nats-server writes it; anything else goes through json.loads.
_PLAIN_PUBACK = re.compile(rb'\{"stream":"[^"\\]*",(?:"domain":"[^"\\]*",)?"seq":([0-9]+)(,"duplicate":true)?\}')


def stored_but_never_queued(body: dict[str, Any] | None) -> int | None:
    """The stream sequence of a duplicate's stored record if it is still ``new`` with no
    tries: the earlier attempt stored it and died before (or while) publishing the work
    item, so we publish it. That is safe: inside the queue's 2m duplicate window the server
    drops a second item with the same ``Nats-Msg-Id``, and after it a Go worker that finds
    a second item for a task that already ran skips it (``processor.go``: complete/expired
    are acked, active is left alone, and ``setTaskActive`` is a sequence-guarded update, so
    two workers never both start it)."""
    message = (body or {}).get("message")
    if not isinstance(message, dict) or not isinstance(message.get("seq"), int):
        return None
    try:
        record = base64.b64decode(message.get("data") or "", validate=True)
    except (binascii.Error, TypeError):
        return None
    return int(message["seq"]) if decode_task_progress(record) == ("new", 0) else None

"""How a reply to a task or work-item publish is read (store.task_replies._parse_reply): the same
verdicts and texts as Go's ``EnqueueTask`` with jsm.go's ``ParsePubAck`` (contract §4.4)."""

from __future__ import annotations

from typing import Any

import pytest
from nats.aio.msg import Msg

from ajc_gitops.store.asyncjobs.task_replies import NO_RESPONDERS
from ajc_gitops.store.asyncjobs.task_replies import parse_reply as _parse_reply


def msg(data: bytes, headers: dict[str, str] | None = None) -> Msg:
    client: Any = None
    return Msg(_client=client, subject="_INBOX.x.0.0", data=data, headers=headers)


@pytest.mark.parametrize(
    ("data", "seq", "duplicate"),
    [
        (b'{"stream":"CHORIA_AJ_TASKS","seq":12}', 12, False),
        (b'{"stream":"CHORIA_AJ_Q_EMAIL","domain":"hub","seq":3,"duplicate":true}', 3, True),
        (b'{"seq":7,"stream":"S"}', 7, False),  # not the server's order: json path
        (b'{"stream":"S","seq":8,"val":"x"}', 8, False),
    ],
)
def test_pub_acks(data: bytes, seq: int, duplicate: bool) -> None:
    reply = _parse_reply(msg(data))
    assert (reply.ok, reply.seq, reply.duplicate) == (True, seq, duplicate)


def test_no_responders_status_is_gos_error_text() -> None:
    reply = _parse_reply(msg(b"", {"Status": "503", "Description": "No Responders"}))
    assert (reply.ok, reply.text) == (False, NO_RESPONDERS)


@pytest.mark.parametrize(
    ("data", "text", "err_code"),
    [
        (b'{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 4"}}',
         "wrong last sequence: 4 (10071)", 10071),
        (b'{"error":{"code":503}}', "unknown JetStream 503 Error (0)", None),
        (b'{"error":{}}', "unknown JetStream Error", None),
        (b"-ERR 'stream not found'", "stream not found", None),
        (b"nonsense", "invalid JetStream response b'nonsense'", None),
    ],
)  # fmt: skip
def test_errors_read_as_jsm_formats_them(data: bytes, text: str, err_code: int | None) -> None:
    reply = _parse_reply(msg(data))
    assert (reply.ok, reply.text, reply.err_code) == (False, text, err_code)

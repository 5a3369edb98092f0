"""The record codec against Go's own verdicts (tests/data/go_vectors.json, categories
``decode`` and ``encode``) and the byte-exact records of contract §2.2."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ajc_gitops.codec import (
    DecodeError,
    EncodeError,
    decode_or_raise,
    decode_scheduled_task,
    encode_scheduled_task,
    go_json_marshal,
)
from ajc_gitops.gowire.gotime import format_rfc3339nano
from ajc_gitops.model import NANOS_PER_SECOND, ZERO_TIME, GoTime, ScheduledTask

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "go_vectors.json").read_text())
STRING_FIELDS = ("name", "schedule", "queue", "task_type")

# Contract §2.2, byte for byte.
CONTRACT_RECORDS = [
    b'{"name":"EMAIL_MONTHLY_UPDATE","schedule":"0 0 1 * *","queue":"EMAIL",'
    b'"task_type":"email:monthly","payload":null,"deadline":43200000000000,"max_tries":10,'
    b'"created_at":"2026-07-22T08:39:24.1234567Z"}',
    b'{"name":"EMAIL_MONTHLY_UPDATE","schedule":"0 0 1 * *","queue":"EMAIL",'
    b'"task_type":"email:monthly","payload":"IntcImFcIjoxfSI=","deadline":43200000000000,'
    b'"max_tries":10,"created_at":"2026-07-22T08:39:24.1234567Z"}',
]


def _vector_input(vector: dict[str, Any]) -> bytes:
    if vector.get("input") is not None:
        return str(vector["input"]).encode()
    return base64.b64decode(vector["input_b64"])


def _check_time(actual: GoTime, expected: dict[str, Any]) -> None:
    assert format_rfc3339nano(GoTime(actual.unix_ns), for_json=False) == expected["utc"]
    assert actual.offset_s == expected["offset_s"]
    # Go's zone for a decoded time: UTC (the process's Local is UTC) or an unnamed fixed zone.
    assert ("UTC" if actual.offset_s == 0 else "") == expected["location"]
    assert actual.is_zero is expected["is_zero"]
    if str(expected["json"]).startswith('"'):
        assert '"' + format_rfc3339nano(actual) + '"' == expected["json"]
    else:
        with pytest.raises(ValueError):
            format_rfc3339nano(actual)


@pytest.mark.parametrize("vector", VECTORS["decode"], ids=lambda v: v["id"])
def test_decode_vector(vector: dict[str, Any]) -> None:
    result = decode_scheduled_task(_vector_input(vector))
    if vector["ok"]:
        assert result.error is None
    else:
        assert result.error is not None
        assert result.error.kind == vector["error_kind"]
        if not vector.get("version_sensitive"):
            assert str(result.error) == vector["error"]
    expected = vector["decoded"]
    task = result.task
    for name in STRING_FIELDS:
        assert getattr(task, name) == expected[name], name
    assert (task.payload is None) is expected["payload_is_nil"]
    if expected["payload_b64"] is not None:
        assert task.payload == base64.b64decode(expected["payload_b64"])
    assert task.deadline_ns == expected["deadline_ns"]
    assert task.max_tries == expected["max_tries"]
    _check_time(task.created_at, expected["created_at"])
    if vector["reencoded"] is None:
        with pytest.raises(EncodeError):
            encode_scheduled_task(task)
    else:
        assert encode_scheduled_task(task) == vector["reencoded"].encode()


def _task_from_vector(spec: dict[str, Any]) -> ScheduledTask:
    strings = {}
    for name in STRING_FIELDS:
        if spec.get(f"{name}_b64") is not None:
            # Invalid UTF-8 travels as surrogateescape code points (see codec docstring).
            raw = base64.b64decode(spec[f"{name}_b64"])
            strings[name] = raw.decode("utf-8", "surrogateescape")
        else:
            strings[name] = spec[name]
    payload_b64 = spec.get("payload_b64")
    created = spec["created_at"]
    return ScheduledTask(
        **strings,
        payload=None if payload_b64 is None else base64.b64decode(payload_b64),
        deadline_ns=spec["deadline_ns"],
        max_tries=spec["max_tries"],
        created_at=GoTime(
            unix_ns=created["unix_s"] * NANOS_PER_SECOND + created["nsec"],
            offset_s=created["offset_s"],
        ),
    )


@pytest.mark.parametrize("vector", VECTORS["encode"], ids=lambda v: v["id"])
def test_encode_vector(vector: dict[str, Any]) -> None:
    task = _task_from_vector(vector["task"])
    if vector["ok"]:
        assert encode_scheduled_task(task) == vector["output"].encode()
    else:
        with pytest.raises(EncodeError) as info:
            encode_scheduled_task(task)
        if not vector.get("version_sensitive"):
            assert str(info.value) == vector["error"]


@pytest.mark.parametrize("record", CONTRACT_RECORDS, ids=["no-payload", "cli-payload"])
def test_contract_record_round_trips_byte_exactly(record: bytes) -> None:
    task, warnings = decode_or_raise(record)
    assert warnings == ()
    assert task.name == "EMAIL_MONTHLY_UPDATE"
    assert task.deadline_ns == 12 * 3600 * NANOS_PER_SECOND
    assert task.max_tries == 10
    assert task.created_at == GoTime(unix_ns=1_784_709_564_123_456_700)
    assert encode_scheduled_task(task) == record


def test_contract_cli_payload_is_the_json_string() -> None:
    task, _ = decode_or_raise(CONTRACT_RECORDS[1])
    assert task.payload == b'"{\\"a\\":1}"'


def test_legacy_capitalised_record_binds_deadline_and_warns_about_max_tries() -> None:
    # Contract §2.3: commit 1d5a65f wrote "Deadline" and "MaxTries" without tags.
    record = (
        b'{"name":"LEGACY","schedule":"@daily","queue":"Q","task_type":"t","payload":null,'
        b'"Deadline":0,"MaxTries":5,"created_at":"2022-02-16T10:00:00Z"}'
    )
    task, warnings = decode_or_raise(record)
    assert task.deadline_ns == 0
    assert task.max_tries == 0
    assert warnings == (
        'legacy "MaxTries" field is ignored by asyncjobs; tasks get the default 10 tries',
    )
    assert encode_scheduled_task(task) == (
        b'{"name":"LEGACY","schedule":"@daily","queue":"Q","task_type":"t","payload":null,'
        b'"max_tries":0,"created_at":"2022-02-16T10:00:00Z"}'
    )


def test_decode_or_raise_raises_go_error() -> None:
    with pytest.raises(DecodeError) as info:
        decode_or_raise(b'{"max_tries":"x"}')
    assert info.value.kind == "type"
    assert str(info.value) == (
        "json: cannot unmarshal string into Go struct field ScheduledTask.max_tries of type int"
    )


def test_syntax_error_decodes_nothing() -> None:
    result = decode_scheduled_task(b'{"name":"a","max_tries":1,}')
    assert result.error is not None and result.error.kind == "syntax"
    assert str(result.error) == "invalid character '}' looking for beginning of object key string"
    assert result.task.name == "" and result.task.created_at == ZERO_TIME


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a":tru', "invalid character ' ' in literal true (expecting 'e')"),
        (b'{"a":1.', "invalid character ' ' after decimal point in numeric literal"),
        (b'{"a":-', "invalid character ' ' in numeric literal"),
        (b'{"a":01}', "invalid character '1' after object key:value pair"),
        (b'{"a":1e}', "invalid character '}' in exponent of numeric literal"),
        (b'{"a" 1}', "invalid character '1' after object key"),
        (b"[1 2]", "invalid character '2' after array element"),
        (b'{"a":"\x01"}', "invalid character '\\x01' in string literal"),
        (b"\xa0", "invalid character '\\u00a0' looking for beginning of value"),
        (b"'a'", "invalid character '\\'' looking for beginning of value"),
        (b"", "unexpected end of JSON input"),
    ],
)
def test_syntax_error_texts(data: bytes, message: str) -> None:
    result = decode_scheduled_task(data)
    assert result.error is not None and result.error.kind == "syntax"
    assert str(result.error) == message


@pytest.mark.parametrize(
    ("data", "payload"),
    [
        (b'{"payload":[104,105]}', b"hi"),
        (b'{"payload":[null,65]}', b"\x00A"),
        # An array decodes into the existing slice: null keeps the byte already there.
        (b'{"payload":"YWJj","payload":[null,66]}', b"aB"),
        (b'{"payload":[1,2,3],"payload":[9],"payload":[null,null]}', b"\x09\x02"),
        (b'{"payload":"YR=\\r\\n="}', b"a"),
    ],
)
def test_payload_forms(data: bytes, payload: bytes) -> None:
    task, _ = decode_or_raise(data)
    assert task.payload == payload


def test_go_json_marshal_matches_go_http_storage() -> None:
    value = {"b": [1, 2.5, 1e21, 1e-7, -0.0, 2**64, None, True], "a": "<&>\u2028/\x7f\x01é"}
    assert go_json_marshal(value) == (
        b'{"a":"\\u003c\\u0026\\u003e\\u2028/\x7f\\u0001\xc3\xa9",'
        b'"b":[1,2.5,1e+21,1e-7,-0,18446744073709552000,null,true]}'
    )
    assert go_json_marshal({"a": 1}) == b'{"a":1}'


@pytest.mark.parametrize(
    ("number", "text"),
    [(0.1, b"0.1"), (1e20, b"100000000000000000000"), (1e-6, b"0.000001"),
     (123456789.125, b"123456789.125"), (5e-324, b"5e-324"), (1.5e300, b"1.5e+300")],
)  # fmt: skip
def test_go_json_marshal_floats(number: float, text: bytes) -> None:
    assert go_json_marshal(number) == text


def test_go_json_marshal_rejects_what_go_cannot_hold() -> None:
    with pytest.raises(EncodeError, match="NaN"):
        go_json_marshal(float("nan"))
    cyclic: list[object] = []
    cyclic.append(cyclic)
    with pytest.raises(EncodeError, match="cycle"):
        go_json_marshal(cyclic)


def test_go_json_marshal_deep_nesting_does_not_recurse() -> None:
    value: object = 1
    for _ in range(5000):
        value = [value]
    assert go_json_marshal(value) == b"[" * 5000 + b"1" + b"]" * 5000

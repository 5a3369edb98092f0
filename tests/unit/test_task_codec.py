"""Task, event and work-item bytes against the samples of contract §4.2, §4.4 and §5, which
Go's ``encoding/json`` produced, byte for byte."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ajc_gitops.codec import (
    decode_task_progress,
    encode_leader_elected_event,
    encode_task,
    encode_task_state_event,
    encode_work_item,
    go_round_ms,
    task_payload_for_schedule,
)
from ajc_gitops.gowire import gojson
from ajc_gitops.gowire.gomarshal import marshal_string
from ajc_gitops.gowire.gotime import parse_rfc3339
from ajc_gitops.model import ZERO_TIME, GoTime, Task

TASK_ID = "3HI4lWkYOGcnSR2VvnCoQjEh8IR"
EVENT_ID = "3HI4lcrFYnZgRh15YfDnnI6UIfv"  # a KSUID of 2026-08-01T00:00:00Z
# What `ajc task cron add ... --payload '{"a":1}'` stores: the 11-byte JSON string (§2.2).
CLI_PAYLOAD = b'"{\\"a\\":1}"'

# §4.2: the fire of the --payload schedule at 2026-08-01T00:00:00Z.
CONTRACT_TASK = (
    b'{"id":"3HI4lWkYOGcnSR2VvnCoQjEh8IR","type":"email:monthly","queue":"EMAIL",'
    b'"payload":"IkludGNJbUZjSWpveGZTST0i","deadline":"2026-08-01T12:00:00.000120001Z",'
    b'"max_tries":10,"state":"new","created":"2026-08-01T00:00:00.000123456Z","tries":0}'
)
# §4.4 step 2.
CONTRACT_EVENT = (
    b'{"event_id":"3HI4lcrFYnZgRh15YfDnnI6UIfv","type":"io.choria.asyncjobs.v1.task_state",'
    b'"timestamp":"2026-08-01T00:00:00Z","task_id":"3HI4lWkYOGcnSR2VvnCoQjEh8IR","state":"new",'
    b'"tries":0,"queue":"EMAIL","task_type":"email:monthly","task_age":1523000}'
)
# §5 OnWon.
CONTRACT_LEADER_EVENT = (
    b'{"event_id":"3HI4lcrFYnZgRh15YfDnnI6UIfv","type":"io.choria.asyncjobs.v1.leader_elected",'
    b'"timestamp":"2026-08-01T00:00:00Z","name":"sched-a","component":"task_scheduler"}'
)


def at(text: str) -> GoTime:
    return parse_rfc3339(text)


def contract_task(**changes: object) -> Task:
    fields: dict[str, object] = {
        "id": TASK_ID,
        "type": "email:monthly",
        "queue": "EMAIL",
        "payload": task_payload_for_schedule(CLI_PAYLOAD),
        "max_tries": 10,
        "created": at("2026-08-01T00:00:00.000123456Z"),
        "deadline": at("2026-08-01T12:00:00.000120001Z"),
    }
    fields.update(changes)
    return Task(**fields)  # type: ignore[arg-type]


# -- the task record ---------------------------------------------------------------------


def test_contract_task_sample_is_byte_exact() -> None:
    assert encode_task(contract_task()) == CONTRACT_TASK


def test_worker_unwraps_the_payload_twice_to_the_cli_json() -> None:
    record = json.loads(encode_task(contract_task()))
    once = base64.b64decode(record["payload"])  # Go's []byte field
    assert once == b'"IntcImFcIjoxfSI="'
    assert json.loads(base64.b64decode(json.loads(once))) == '{"a":1}'


@pytest.mark.parametrize(
    ("stored", "task_payload", "on_the_wire"),
    [
        (None, b"null", "bnVsbA=="),  # nil in an interface is not nil: json.Marshal gives null
        (b"", b'""', "IiI="),
        (b"hi", b'"aGk="', "ImFHaz0i"),
        (CLI_PAYLOAD, b'"IntcImFcIjoxfSI="', "IkludGNJbUZjSWpveGZTST0i"),
    ],
    ids=["nil", "empty", "bytes", "cli-json-string"],
)
def test_scheduled_payload_is_json_encoded_again(stored: bytes | None, task_payload: bytes, on_the_wire: str) -> None:
    assert task_payload_for_schedule(stored) == task_payload
    record = json.loads(encode_task(contract_task(payload=task_payload_for_schedule(stored))))
    assert record["payload"] == on_the_wire


def test_nil_task_payload_is_null() -> None:
    assert b'"payload":null,' in encode_task(contract_task(payload=None))


def test_deadline_is_omitted_when_unset() -> None:
    record = encode_task(contract_task(deadline=None))
    assert record == CONTRACT_TASK.replace(b'"deadline":"2026-08-01T12:00:00.000120001Z",', b"")


def test_queue_error_record_carries_last_err_after_tries() -> None:
    task = contract_task(state="queue_error", last_err="nats: no responders available for request")
    assert encode_task(task) == CONTRACT_TASK.replace(b'"state":"new"', b'"state":"queue_error"')[:-1] + (
        b',"last_err":"nats: no responders available for request"}'
    )


def test_key_order_is_gos() -> None:
    task = contract_task(state="queue_error", last_err="x", tries=3)
    assert list(json.loads(encode_task(task))) == [
        "id", "type", "queue", "payload", "deadline", "max_tries", "state", "created", "tries", "last_err",
    ]  # fmt: skip


def test_strings_are_escaped_as_go_does() -> None:
    task = contract_task(type="a<b>&c", queue="Q\u2028", last_err='say "no"\n')
    record = encode_task(task)
    assert b'"type":"a\\u003cb\\u003e\\u0026c"' in record
    assert b'"queue":"Q\\u2028"' in record
    assert b'"last_err":"say \\"no\\"\\n"' in record


def test_times_are_rfc3339nano_utc() -> None:
    task = contract_task(created=at("2026-08-01T00:00:00Z"), deadline=at("2026-08-01T00:00:30.5Z"))
    record = json.loads(encode_task(task))
    assert record["created"] == "2026-08-01T00:00:00Z"
    assert record["deadline"] == "2026-08-01T00:00:30.5Z"


# -- events ------------------------------------------------------------------------------


def _now(created: str, plus_ns: int) -> int:
    return go_round_ms(at(created).unix_ns) + plus_ns


def test_contract_task_state_event_is_byte_exact() -> None:
    task = contract_task()
    now = _now("2026-08-01T00:00:00.000123456Z", 1_523_000)
    assert encode_task_state_event(task, event_id=EVENT_ID, now_ns=now) == CONTRACT_EVENT


def test_event_with_last_error_puts_it_before_task_age() -> None:
    task = contract_task(state="queue_error", last_err="duplicate work queue item")
    now = _now("2026-08-01T00:00:00.000123456Z", 1_523_000)
    event = encode_task_state_event(task, event_id=EVENT_ID, now_ns=now)
    assert event == CONTRACT_EVENT.replace(b'"state":"new"', b'"state":"queue_error"').replace(
        b',"task_age"', b',"last_error":"duplicate work queue item","task_age"'
    )


def test_event_omits_empty_queue_zero_age_and_age_of_zero_created() -> None:
    created = "2026-08-01T00:00:00.000123456Z"
    no_queue = encode_task_state_event(contract_task(queue=""), event_id=EVENT_ID, now_ns=_now(created, 5))
    assert b'"queue"' not in no_queue
    assert no_queue.endswith(b'"task_type":"email:monthly","task_age":5}')
    zero_age = encode_task_state_event(contract_task(), event_id=EVENT_ID, now_ns=_now(created, 0))
    assert zero_age.endswith(b'"task_type":"email:monthly"}')
    zero_created = encode_task_state_event(contract_task(created=ZERO_TIME), event_id=EVENT_ID, now_ns=10**18)
    assert b"task_age" not in zero_created


def test_task_age_can_be_negative() -> None:
    # created rounds up to the next millisecond, now is before that.
    task = contract_task(created=at("2026-08-01T00:00:00.0006Z"))
    event = encode_task_state_event(task, event_id=EVENT_ID, now_ns=at("2026-08-01T00:00:00.0006Z").unix_ns)
    assert event.endswith(b',"task_age":-400000}')


@pytest.mark.parametrize(
    ("ns", "rounded"),
    [(0, 0), (499_999, 0), (500_000, 1_000_000), (1_500_000, 2_000_000), (-500_000, 0), (-500_001, -1_000_000)],
)
def test_round_to_millisecond_rounds_half_up(ns: int, rounded: int) -> None:
    assert go_round_ms(ns) == rounded


def test_event_timestamp_is_the_event_ids_second() -> None:
    event = json.loads(encode_task_state_event(contract_task(), event_id="0" * 27, now_ns=0))
    assert event["timestamp"] == "2014-05-13T16:53:20Z"  # the KSUID epoch


def test_contract_leader_elected_event_is_byte_exact() -> None:
    assert encode_leader_elected_event("sched-a", "task_scheduler", event_id=EVENT_ID) == CONTRACT_LEADER_EVENT


# -- work item and reading back ------------------------------------------------------------


def test_work_item_is_gos_process_item() -> None:
    assert encode_work_item(TASK_ID) == b'{"kind":0,"job":"3HI4lWkYOGcnSR2VvnCoQjEh8IR"}'


@pytest.mark.parametrize(
    ("record", "progress"),
    [
        (CONTRACT_TASK, ("new", 0)),
        (b'{"state":"active","tries":1}', ("active", 1)),
        (b'{"STATE":"complete","Tries":2}', ("complete", 2)),
        (b"{}", ("", 0)),
        (b"[]", None),
        (b"not json", None),
        (b'{"state":1}', None),
    ],
)
def test_decode_task_progress(record: bytes, progress: tuple[str, int] | None) -> None:
    assert decode_task_progress(record) == progress


# -- the plain-ASCII fast path agrees with Go's encoder ----------------------------------------


@pytest.mark.parametrize("code", range(128))
def test_fast_string_path_matches_gos_encoder_for_every_ascii_char(code: int) -> None:
    text = f"a{chr(code)}b"
    assert marshal_string(text) == gojson.encode_string(gojson.go_bytes(text))


@given(st.text())
def test_fast_string_path_matches_gos_encoder(text: str) -> None:
    assert marshal_string(text) == gojson.encode_string(gojson.go_bytes(text))

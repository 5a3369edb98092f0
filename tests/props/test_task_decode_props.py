"""``decode_task`` reads a record written with Go's own keys (its fast path, which ``status``
takes 240,000 times) exactly as it reads the same record with its keys in another case (the
folding path), and reads ``created`` as Go's parser does, whatever the text; the slot that
``status`` builds from the plain fields is the one it would build from the Task."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from ajc_gitops.codec import decode_task, read_task_fields
from ajc_gitops.gowire.gotime import GoTimeParseError, parse_rfc3339
from ajc_gitops.model import ZERO_TIME, GoTime
from ajc_gitops.status.classify import found, found_by_id

GO_KEYS = ("id", "type", "queue", "payload", "deadline", "max_tries", "state", "created", "tries", "last_err", "result")
SCALARS = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=8)
VALUES = SCALARS | st.lists(SCALARS, max_size=2)


def _two(alphabet: str) -> st.SearchStrategy[str]:
    return st.sampled_from(["00", "01", "12", "23", "28", "29", "31", "59", "60", "99"]) | st.text(
        alphabet, min_size=1, max_size=3
    )


# Shapes around "2006-01-02T15:04:05.999999999Z": every part either valid, out of range or odd.
CREATED = st.builds(
    lambda y, mo, d, sep, h, mi, s, frac, zone: f"{y}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{zone}",
    st.sampled_from(["2026", "0000", "0001", "9999", "1970", "20\u06626"]),
    _two("0123456789\u0663x"),
    _two("0123456789\u0663x"),
    st.sampled_from(["T", "t", " "]),
    _two("0123456789\u0663"),
    _two("0123456789\u0663"),
    _two("0123456789\u0663"),
    st.sampled_from(["", ".", ".1", ".123456", ".123456789", ".1234567890", ".\u0661", ".12a", "Z1", ",5"])
    | st.text("0123456789.Z\u0663", max_size=11).map(lambda t: "." + t),
    st.sampled_from(["Z", "z", "+01:00", "-00:00", "", "ZZ"]),
)


@given(
    st.dictionaries(st.sampled_from(GO_KEYS), VALUES, max_size=8)
    | st.dictionaries(st.sampled_from(GO_KEYS), st.text(max_size=30))
)
@example({"id": "x", "tries": True})
@example({"id": "x", "max_tries": 1.0})
@example({"created": "2026-02-29T00:00:00.5Z"})
def test_go_keyed_records_decode_as_their_other_spellings(fields: dict[str, Any]) -> None:
    plain = json.dumps(fields).encode()
    shouted = json.dumps({key.upper(): value for key, value in fields.items()}).encode()
    assert decode_task(plain) == decode_task(shouted)


@given(CREATED)
@example("2026-12-05T01:00:00.5Z")
@example("2026-12-05T01:00:00Z")
@example("2026-12-05T01:00:00Z5Z")
@example("2026-02-29T01:00:00.5Z")
@example("2026-12-05T01:00:00.1234567891Z")
def test_created_is_read_as_gos_parser_reads_it(text: str) -> None:
    got = decode_task(json.dumps({"id": "x", "created": text}).encode())
    try:
        want: GoTime = parse_rfc3339(text)
    except GoTimeParseError:
        want = ZERO_TIME
    assert got is not None and got.created == want


@given(st.dictionaries(st.sampled_from(GO_KEYS), VALUES | CREATED, max_size=8), st.integers(0, 2**33))
@example({"id": "x", "created": "2026-12-05T01:00:06Z"}, 1_780_621_200)
def test_a_slot_found_from_the_fields_is_the_slot_found_from_the_task(fields: dict[str, Any], instant_s: int) -> None:
    record = json.dumps(fields).encode()
    task, read = decode_task(record), read_task_fields(record)
    assert (task is None) == (read is None)
    if task is not None and read is not None:
        assert found_by_id(instant_s, read) == found(instant_s, task, "id")


@given(
    st.binary(max_size=40).map(lambda b: b'{"' + b)
    | st.dictionaries(st.sampled_from(GO_KEYS), st.text(max_size=6), max_size=4).map(
        lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")
    )
)
@example(b'{"id": "\xed\xa0\x80"}')  # a lone surrogate, as surrogatepass writes it
@example(b'{"id": "\xff"}')
def test_bytes_read_as_json_loads_reads_them(record: bytes) -> None:
    # A leading space takes json.loads' own path (sniffing the encoding); JSON ignores it.
    assert decode_task(record) == decode_task(b" " + record)

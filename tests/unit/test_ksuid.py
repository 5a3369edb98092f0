"""KSUIDs against segmentio/ksuid v1.0.4 (categories ``ksuid`` and ``ksuid_parse``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ajc_gitops.gowire.ksuid import encode_base62, ksuid_bytes, ksuid_from_parts, new_ksuid, parse_ksuid

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
VECTORS = json.loads((Path(__file__).parent.parent / "data" / "go_vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["ksuid"], ids=lambda v: v["id"])
def test_ksuid_from_parts_vector(vector: dict[str, Any]) -> None:
    payload = bytes.fromhex(vector["payload_hex"])
    if not vector["ok"]:
        with pytest.raises(ValueError) as info:
            ksuid_from_parts(vector["unix_seconds"], payload)
        assert str(info.value) == vector["error"]
        return
    assert ksuid_from_parts(vector["unix_seconds"], payload) == vector["string"]
    assert ksuid_bytes(vector["unix_seconds"], payload).hex() == vector["bytes_hex"]
    assert parse_ksuid(vector["string"]) == (vector["time_unix"], payload)


@pytest.mark.parametrize("vector", VECTORS["ksuid_parse"], ids=lambda v: v["id"])
def test_parse_ksuid_vector(vector: dict[str, Any]) -> None:
    if not vector["ok"]:
        with pytest.raises(ValueError) as info:
            parse_ksuid(vector["string"])
        assert str(info.value) == vector["error"]
        return
    unix_seconds, payload = parse_ksuid(vector["string"])
    assert (unix_seconds, payload.hex()) == (vector["unix_seconds"], vector["payload_hex"])
    assert ksuid_from_parts(unix_seconds, payload) == vector["reencoded"]


def test_parse_checks_byte_length_only() -> None:
    with pytest.raises(ValueError, match="Valid encoded KSUIDs are 27 characters"):
        parse_ksuid("0" * 26)
    # 26 characters but 27 bytes: accepted, as Go does.
    unix_seconds, _ = parse_ksuid("0" * 25 + "\u00e9")
    assert unix_seconds == 1_400_000_000


def test_payload_size_is_checked() -> None:
    with pytest.raises(ValueError, match="Valid KSUID payloads are 16 bytes"):
        ksuid_from_parts(1_500_000_000, b"short")


def test_new_ksuid_uses_the_given_random_source() -> None:
    class Fixed:
        def token_bytes(self, nbytes: int) -> bytes:
            return b"\xff" * nbytes

    value = new_ksuid(1_400_000_000, rng=Fixed())
    assert value == encode_base62(b"\x00" * 4 + b"\xff" * 16)
    assert len(new_ksuid(1_800_000_000)) == 27


@given(st.binary(min_size=20, max_size=20))
@example(bytes(20))
@example(b"\xff" * 20)
def test_the_text_is_the_160_bit_number_in_base_62(raw: bytes) -> None:
    text = encode_base62(raw)
    assert len(text) == 27
    assert sum(ALPHABET.index(c) * 62**k for k, c in enumerate(reversed(text))) == int.from_bytes(raw, "big")

"""KSUIDs as segmentio/ksuid v1.0.4 makes and reads them (contract §4.3).

20 bytes: a big-endian uint32 of ``unix - 1400000000`` (wrapping mod 2**32, as Go's
``uint32()`` conversion does), then a 16-byte payload; shown as the 160-bit big-endian number
in base 62 (``0-9A-Za-z``), left-padded with ``0`` to 27 characters.
"""

from __future__ import annotations

import secrets
from typing import Protocol

EPOCH = 1_400_000_000
PAYLOAD_LEN = 16
BYTE_LEN = 20
STRING_LEN = 27
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MAX_STRING = "aWgEPTl1tmebfsQzFP4bxwgy80V"  # 2**160 - 1

# Go's error values, text for text.
ERR_PAYLOAD_SIZE = f"Valid KSUID payloads are {PAYLOAD_LEN} bytes"
ERR_STR_SIZE = f"Valid encoded KSUIDs are {STRING_LEN} characters"
ERR_STR_VALUE = f"Valid encoded KSUIDs are bounded by {'0' * STRING_LEN} and {_MAX_STRING}"


class RandomSource(Protocol):
    def token_bytes(self, nbytes: int) -> bytes: ...


def ksuid_bytes(unix_seconds: int, payload: bytes) -> bytes:
    """``FromParts(time.Unix(unix_seconds, 0), payload)`` as its 20 raw bytes."""
    if len(payload) != PAYLOAD_LEN:
        raise ValueError(ERR_PAYLOAD_SIZE)
    return ((unix_seconds - EPOCH) % 2**32).to_bytes(4, "big") + bytes(payload)


# Two base-62 digits per division: half the big-int divisions (a fire makes an event ID,
# ``status`` makes one per slot).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]


def encode_base62(raw: bytes) -> str:
    """The 27-character form of 20 raw KSUID bytes: 13 digit pairs under one leading digit
    (2**160 < 62**27, so the leading digit is always below 62 and the text never longer)."""
    n = int.from_bytes(raw, "big")
    p, d = _PAIRS, divmod
    # Unrolled, lowest pair first: no loop, no padding pass (~1.3 us instead of ~2 us).
    n, r12 = d(n, 3844)
    n, r11 = d(n, 3844)
    n, r10 = d(n, 3844)
    n, r9 = d(n, 3844)
    n, r8 = d(n, 3844)
    n, r7 = d(n, 3844)
    n, r6 = d(n, 3844)
    n, r5 = d(n, 3844)
    n, r4 = d(n, 3844)
    n, r3 = d(n, 3844)
    n, r2 = d(n, 3844)
    n, r1 = d(n, 3844)
    n, r0 = d(n, 3844)
    return "".join(
        (_ALPHABET[n], p[r0], p[r1], p[r2], p[r3], p[r4], p[r5], p[r6], p[r7], p[r8], p[r9], p[r10], p[r11], p[r12])
    )


def ksuid_from_parts(unix_seconds: int, payload: bytes) -> str:
    """``ksuid.FromParts(...).String()``; ``ValueError`` (Go's text) for a wrong payload size."""
    return encode_base62(ksuid_bytes(unix_seconds, payload))


def _base62_value(b: int) -> int:
    # Go's base62Value never rejects a byte: anything that is not a digit or an upper-case
    # letter takes the lower-case branch, with uint8 wrap-around ('-' becomes 240).
    if 0x30 <= b <= 0x39:
        return b - 0x30
    if 0x41 <= b <= 0x5A:
        return 10 + b - 0x41
    return (36 + b - 0x61) % 256


def parse_ksuid(s: str) -> tuple[int, bytes]:
    """``ksuid.Parse(s)``: returns ``(unix_seconds, payload)``. Like Go it checks only the
    byte length and overflow above 2**160-1, never the alphabet; errors are ``ValueError``
    with Go's text."""
    raw = s.encode("utf-8", "surrogateescape")
    if len(raw) != STRING_LEN:
        raise ValueError(ERR_STR_SIZE)
    n = 0
    for b in raw:
        n = n * 62 + _base62_value(b)
    if n >= 2**160:
        raise ValueError(ERR_STR_VALUE)
    data = n.to_bytes(BYTE_LEN, "big")
    return int.from_bytes(data[:4], "big") + EPOCH, data[4:]


def new_ksuid(unix_seconds: int, rng: RandomSource = secrets) -> str:
    """A fresh KSUID for ``unix_seconds`` with 16 random payload bytes from ``rng``."""
    return ksuid_from_parts(unix_seconds, rng.token_bytes(PAYLOAD_LEN))

"""Go's ``json.Marshal``: of a value decoded into ``interface{}`` (``go_json_marshal``, what a
manifest payload becomes), and of the scalar fields every record the codec builds is made of
(strings, ints, ``time.Time``, ``[]byte``)."""

from __future__ import annotations

import base64
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ajc_gitops.gowire import gojson
from ajc_gitops.gowire.gotime import format_rfc3339nano
from ajc_gitops.model import GoTime

__all__ = [
    "EncodeError",
    "go_json_marshal",
    "marshal_bytes",
    "marshal_int64",
    "marshal_name",
    "marshal_string",
    "marshal_time",
]

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# Printable ASCII that Go's encoder writes as is (no quote, backslash or HTML escape): IDs,
# types, queues and states nearly always are, and skip the byte-by-byte encoder (a fire
# encodes eleven strings, so this matters at 10,000 fires a second).
_PLAIN = re.compile(r"[ !#-%'-;=?-\[\]-~]*")


class EncodeError(ValueError):
    """Go's ``json.Marshal`` would fail on this value; ``str()`` is Go's text."""


def marshal_string(value: str) -> bytes:
    """A Go string (invalid UTF-8 as lone surrogates, see ``gojson.go_bytes``) as JSON."""
    if _PLAIN.fullmatch(value):
        return b'"' + value.encode() + b'"'
    return gojson.encode_string(gojson.go_bytes(value))


_NAMES: dict[str, bytes] = {}
_NAMES_MAX = 4096


def marshal_name(value: str) -> bytes:
    """``marshal_string`` of a text that repeats from record to record (a queue, a task type,
    a state): cached, as a fire writes three of them twice per task."""
    out = _NAMES.get(value)
    if out is None:
        out = marshal_string(value)
        if len(_NAMES) < _NAMES_MAX:
            _NAMES[value] = out
    return out


def marshal_time(t: GoTime) -> bytes:
    """``Time.MarshalJSON``: only years outside 0..9999 fail."""
    return _marshal_time(t.unix_ns, t.offset_s)


@functools.lru_cache(maxsize=1024)
def _marshal_time(unix_ns: int, offset_s: int) -> bytes:
    # Cached: the tasks of one fire chunk share ``created``, the events of one second their
    # timestamp and the tasks of one slot their deadline (formatting is ~8 us here).
    try:
        return b'"' + format_rfc3339nano(GoTime(unix_ns, offset_s)).encode() + b'"'
    except ValueError as exc:
        raise EncodeError(f"json: error calling MarshalJSON for type time.Time: {exc}") from None


def marshal_int64(value: int, what: str) -> bytes:
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise EncodeError(f"{what} {value} does not fit Go's int64")
    return str(value).encode()


def marshal_bytes(value: bytes | None) -> bytes:
    """A ``[]byte``: nil is ``null``, anything else padded standard base64 in a string."""
    return b"null" if value is None else b'"' + base64.b64encode(value) + b'"'


@dataclass(frozen=True, slots=True)
class _Raw:
    data: bytes


@dataclass(frozen=True, slots=True)
class _Close:
    ident: int


def go_json_marshal(value: object) -> bytes:
    """``json.Marshal`` of what Go's ``json.Unmarshal`` into ``interface{}`` would hold for
    ``value``: maps with keys sorted bytewise, every number a float64 (so ``1.0`` is ``1`` and
    ints past 2**53 round as in Go), Go's string escaping. Iterative, so depth is no limit;
    a cycle raises ``EncodeError`` as Go's does."""
    out = bytearray()
    stack: list[object] = [value]
    open_ids: set[int] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, _Raw):
            out += item.data
        elif isinstance(item, _Close):
            open_ids.discard(item.ident)
        elif item is None:
            out += b"null"
        elif isinstance(item, bool):
            out += b"true" if item else b"false"
        elif isinstance(item, int | float):
            out += _marshal_number(item)
        elif isinstance(item, str):
            out += gojson.encode_string(gojson.go_bytes(item))
        elif isinstance(item, Mapping | list | tuple):
            if id(item) in open_ids:
                raise EncodeError("json: unsupported value: encountered a cycle")
            open_ids.add(id(item))
            stack.append(_Close(id(item)))
            stack.extend(reversed(_container_items(item)))
        else:
            raise EncodeError(f"json: unsupported type: {type(item).__name__}")
    return bytes(out)


def _container_items(item: Mapping[object, object] | Sequence[object]) -> list[object]:
    # The pieces of one container in output order; nested values stay on the stack.
    pieces: list[object] = []
    if isinstance(item, Mapping):
        entries: list[tuple[bytes, object]] = []
        for k, child in item.items():
            if not isinstance(k, str):
                raise EncodeError("json: unsupported type: map with non-string keys")
            entries.append((gojson.go_bytes(k), child))
        entries.sort(key=lambda e: e[0])  # Go sorts map keys as byte strings
        pieces.append(_Raw(b"{"))
        for n, (key, value) in enumerate(entries):
            pieces.append(_Raw((b"," if n else b"") + gojson.encode_string(key) + b":"))
            pieces.append(value)
        pieces.append(_Raw(b"}"))
    else:
        pieces.append(_Raw(b"["))
        for n, child in enumerate(item):
            if n:
                pieces.append(_Raw(b","))
            pieces.append(child)
        pieces.append(_Raw(b"]"))
    return pieces


def _marshal_number(number: int | float) -> bytes:
    try:
        f = float(number)
    except OverflowError:
        # Go's Unmarshal into float64 rejects such a literal outright.
        raise EncodeError(f"json: cannot unmarshal number {number} into Go value of type float64") from None
    if math.isnan(f) or math.isinf(f):
        text = "NaN" if math.isnan(f) else ("+Inf" if f > 0 else "-Inf")  # FormatFloat 'g'
        raise EncodeError(f"json: unsupported value: {text}")
    return gojson.format_float(f).encode()

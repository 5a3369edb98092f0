"""The asyncjobs scheduled-task KV record (contract §2), both ways.

Hand-written, not ``json.loads``/``json.dumps``, because Go's ``encoding/json`` (Go 1.19.8,
what the conformance vectors were made with) decides differently from Python's ``json``:
keys bind case-insensitively with Go's simple folding (U+017F long s, Kelvin sign) and the last
duplicate wins; ``null`` leaves strings, numbers and the time alone but resets the payload; the
payload may be padded base64 (``\\r``/``\\n`` skipped) or an array of bytes decoded into the
existing slice; type and base64 errors are saved while decoding goes on, a time error stops it,
and a syntax error anywhere means nothing is decoded. On the way out Go escapes ``<>&`` and
U+2028/2029, writes controls as lowercase ``\\u00xx`` and each invalid UTF-8 byte as
``\\ufffd``. The JSON mechanics are in :mod:`ajc_gitops.gowire.gojson` and
:mod:`ajc_gitops.gowire.gomarshal`, the time ones in :mod:`ajc_gitops.gowire.gotime`.

String fields are ``str``; a Go string holding invalid UTF-8 is represented with the bad bytes
as lone surrogates U+DC80..U+DCFF (``surrogateescape``), see :func:`gojson.go_bytes`.
"""

from __future__ import annotations

import binascii
import json
import re
import sys
from dataclasses import dataclass, replace
from typing import Literal

from ajc_gitops.gowire import gojson
from ajc_gitops.gowire.gomarshal import marshal_bytes, marshal_int64, marshal_string, marshal_time
from ajc_gitops.gowire.gotime import GoTimeParseError, parse_json_time
from ajc_gitops.model import ZERO_TIME, ScheduledTask

__all__ = ["DecodeError", "Decoded", "decode_go", "decode_or_raise", "decode_scheduled_task", "encode_scheduled_task"]

DecodeKind = Literal["syntax", "type", "base64", "time"]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EMPTY = ScheduledTask(name="", schedule="", queue="", task_type="")
# Go field name -> Go type name, in the struct's (and the wire's) order (contract §2.1).
_GO_TYPES = {
    "name": "string",
    "schedule": "string",
    "queue": "string",
    "task_type": "string",
    "payload": "[]uint8",
    "deadline": "time.Duration",
    "max_tries": "int",
    "created_at": "time.Time",
}
# Go's field matching folds ASCII case plus the two non-ASCII runes that simple-fold onto
# ASCII letters (U+017F long s, U+212A Kelvin sign); nothing else, underscores included.
_FOLD = {**{c: c + 32 for c in range(0x41, 0x5B)}, 0x17F: ord("s"), 0x212A: ord("k")}
_INT_LITERAL = re.compile(rb"-?[0-9]+")
_UINT_LITERAL = re.compile(rb"[0-9]+")
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_B64_VALUES = {c: i for i, c in enumerate(_B64_ALPHABET)}
# Exactly what Go's decoder accepts once \r and \n are gone (tail bits are not checked).
_B64_VALID = re.compile(rb"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


class DecodeError(ValueError):
    """``json.Unmarshal`` into ``asyncjobs.ScheduledTask`` failed; ``str()`` is Go's text."""

    def __init__(self, kind: DecodeKind, message: str) -> None:
        super().__init__(message)
        self.kind: DecodeKind = kind


@dataclass(frozen=True, slots=True)
class Decoded:
    """The struct as Go leaves it (even after an error), Go's error, and our warnings."""

    task: ScheduledTask
    error: DecodeError | None
    warnings: tuple[str, ...] = ()


def _type_error(value: str, field: str | None, go_type: str | None = None) -> DecodeError:
    # UnmarshalTypeError with the decoder's error context (struct and field) when inside one.
    if field is None:
        return DecodeError("type", f"json: cannot unmarshal {value} into Go value of type asyncjobs.ScheduledTask")
    return DecodeError(
        "type",
        f"json: cannot unmarshal {value} into Go struct field "
        f"ScheduledTask.{field} of type {go_type or _GO_TYPES[field]}",
    )


def _kind_of(token: bytes) -> str:
    # The word Go's UnmarshalTypeError uses for a JSON value (numbers add their literal later).
    return {0x22: "string", 0x7B: "object", 0x5B: "array", 0x74: "bool", 0x66: "bool"}.get(token[0], "number")


def _go_base64(src: bytes) -> bytes:
    """``base64.StdEncoding.Decode``: padded, ``\\r``/``\\n`` skipped anywhere, non-canonical
    tail bits allowed. Raises ``DecodeError`` with Go's ``CorruptInputError`` offset."""

    stripped = src.replace(b"\r", b"").replace(b"\n", b"")
    if _B64_VALID.fullmatch(stripped):
        return binascii.a2b_base64(stripped)  # fast path; Go's loop below is for the errors

    def corrupt(at: int) -> DecodeError:
        return DecodeError("base64", f"illegal base64 data at input byte {at}")

    out = bytearray()
    si, n = 0, len(src)
    while si < n:
        quantum = [0, 0, 0, 0]
        j, dlen = 0, 4
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                raise corrupt(si - j)
            ch = src[si]
            si += 1
            if ch in _B64_VALUES:
                quantum[j] = _B64_VALUES[ch]
                j += 1
                continue
            if ch in (0x0A, 0x0D):
                continue
            if ch != 0x3D or j < 2:  # not '=', or padding too early
                raise corrupt(si - 1)
            if j == 2:  # "==" expected: the second '=' may follow newlines
                while si < n and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == n:
                    raise corrupt(n)
                if src[si] != 0x3D:
                    raise corrupt(si - 1)
                si += 1
            while si < n and src[si] in (0x0A, 0x0D):
                si += 1
            if si < n:
                raise corrupt(si)  # trailing garbage after the padding
            dlen = j
            break
        val = quantum[0] << 18 | quantum[1] << 12 | quantum[2] << 6 | quantum[3]
        out += val.to_bytes(3, "big")[: dlen - 1]
    return bytes(out)


class _Decoder:
    """``decodeState`` for one ScheduledTask. The payload is kept as Go keeps a slice, a
    backing array plus a length, because an array decodes *into* the existing slice: a
    ``null`` element leaves whatever byte the backing array already holds there."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.fields: dict[str, object] = {}
        self.buf: bytearray | None = None  # None is Go's nil slice
        self.length = 0
        self.saved: DecodeError | None = None
        self.legacy_max_tries = False

    def save(self, error: DecodeError) -> None:
        if self.saved is None:
            self.saved = error

    def task(self) -> ScheduledTask:
        payload = None if self.buf is None else bytes(self.buf[: self.length])
        return replace(_EMPTY, payload=payload, **self.fields)  # type: ignore[arg-type]

    def run(self) -> DecodeError | None:
        data = self.data
        i = gojson.skip_space(data, 0)
        if data[i] != 0x7B:
            token = data[i : gojson.value_end(data, i)]
            if token != b"null":
                self.save(_type_error(_kind_of(token), None))
            return self.saved
        i = gojson.skip_space(data, i + 1)
        while data[i] != 0x7D:
            end = gojson.value_end(data, i)
            key = gojson.unquote(data[i:end])
            i = gojson.skip_space(data, gojson.skip_space(data, end) + 1)  # past the ':'
            end = gojson.value_end(data, i)
            field = _match_field(key)
            if field is None and key.translate(_FOLD) == "maxtries":
                self.legacy_max_tries = True
            elif field is not None:
                error = self.store(field, data[i:end])
                if error is not None:
                    return error  # a time error stops decoding and wins over saved ones
            i = gojson.skip_space(data, end)
            if data[i] == 0x2C:
                i = gojson.skip_space(data, i + 1)
        return self.saved

    def store(self, field: str, token: bytes) -> DecodeError | None:
        if field == "created_at":
            if token == b"null":
                return None
            try:
                self.fields[field] = parse_json_time(token)
            except GoTimeParseError as exc:
                self.fields[field] = ZERO_TIME  # Go assigns Parse's zero Time, then fails
                return DecodeError("time", str(exc))
            return None
        if token == b"null":
            if field == "payload":
                self.buf, self.length = None, 0
            return None
        kind = _kind_of(token)
        if field == "payload":
            if kind == "string":
                raw = gojson.unquote(token).encode()
                try:
                    decoded = _go_base64(raw)
                except DecodeError as exc:
                    self.save(exc)
                    return None
                # make([]byte, DecodedLen(len(s))): the backing array is longer than the data.
                self.buf = bytearray(len(raw) // 4 * 3)
                self.buf[: len(decoded)] = decoded
                self.length = len(decoded)
            elif kind == "array":
                self.store_array(token)
            else:
                self.save(_type_error(kind, field))
        elif kind == "string" and _GO_TYPES[field] == "string":
            self.fields[field] = gojson.unquote(token)
        elif kind == "number" and _GO_TYPES[field] != "string":
            # An int64 has at most 20 characters; JSON has no leading zeros, and int() of a
            # longer one may pass Python's 4,300-digit limit.
            value = int(token) if len(token) <= 20 and _INT_LITERAL.fullmatch(token) else None
            if value is None or not _INT64_MIN <= value <= _INT64_MAX:
                self.save(_type_error(f"number {token.decode()}", field))
            else:
                self.fields["deadline_ns" if field == "deadline" else field] = value
        else:
            self.save(_type_error(kind, field))
        return None

    def store_array(self, token: bytes) -> None:
        # decode.go array() into a []uint8, growing like reflect does (cap*1.5, at least 4).
        buf = self.buf if self.buf is not None else bytearray()
        length = self.length
        i = gojson.skip_space(token, 1)
        count = 0
        while token[i] != 0x5D:
            if count >= len(buf):
                grown = bytearray(max(len(buf) + len(buf) // 2, 4))
                grown[:length] = buf[:length]
                buf = grown
            length = max(length, count + 1)
            end = gojson.value_end(token, i)
            element = token[i:end]
            kind = _kind_of(element)
            if kind == "number" and len(element) <= 3 and _UINT_LITERAL.fullmatch(element) and int(element) <= 255:
                buf[count] = int(element)
            elif element != b"null":
                value = f"number {element.decode()}" if kind == "number" else kind
                self.save(_type_error(value, "payload", "uint8"))
            count += 1
            i = gojson.skip_space(token, end)
            if token[i] == 0x2C:
                i = gojson.skip_space(token, i + 1)
        if count == 0:
            buf = bytearray()  # reflect.MakeSlice(t, 0, 0): empty, not nil
        self.buf, self.length = buf, count  # SetLen(i): the backing array keeps the rest


def _match_field(key: str) -> str | None:
    if key in _GO_TYPES:
        return key
    folded = key.translate(_FOLD)
    return folded if folded in _GO_TYPES else None


def _decode_plain(data: bytes) -> ScheduledTask | None:
    """The common record, decoded by the C ``json`` module: ~10x faster than ``_Decoder``,
    which a scheduler loading a million records needs. None when the record is not plainly
    one where Python's and Go's decoders must agree; then ``_Decoder`` decides.

    Plain means: printable ASCII with no backslash (no escapes, no UTF-8 or surrogate
    questions, and no quote inside a string, so each ``":`` ends a key and counting them
    proves no key repeats), one object whose keys are all exact Go field names (no folding,
    no legacy ``MaxTries``), strings where Go wants strings, int64 integers where it wants
    numbers (``json`` makes ``1.0``, ``1e3``, ``NaN`` floats), a base64 string or ``null``
    payload and a ``null`` nowhere else (a ``null`` keeps Go's zero value but would also
    reset the payload: ``_Decoder``'s job).
    """
    if not data.isascii() or b"\\" in data:
        return None
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError):  # RecursionError: deep nesting, which Go reports
        return None
    if type(obj) is not dict or data.count(b'":') != len(obj) or not obj.keys() <= _GO_TYPES.keys():
        return None
    fields: dict[str, object] = {"name": "", "schedule": "", "queue": "", "task_type": ""}
    for key, value in obj.items():
        go_type = _GO_TYPES[key]
        if go_type == "string":
            if type(value) is not str:
                return None
            # A fleet repeats its spec texts, queues and task types: one copy each in memory
            # (a million records hold ~200 MB of duplicates otherwise). Names are unique.
            fields[key] = value if key == "name" else sys.intern(value)
        elif go_type == "[]uint8":
            if value is None:
                fields[key] = None
            elif type(value) is str and _B64_VALID.fullmatch(raw := value.encode()):
                fields[key] = binascii.a2b_base64(raw)
            else:
                return None
        elif go_type == "time.Time":
            if type(value) is not str:
                return None
            try:
                fields[key] = parse_json_time(b'"' + value.encode() + b'"')
            except GoTimeParseError:
                return None
        elif type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
            fields["deadline_ns" if key == "deadline" else key] = value
        else:
            return None
    return ScheduledTask(**fields)  # type: ignore[arg-type]


def decode_scheduled_task(data: bytes) -> Decoded:
    """``json.Unmarshal(data, &ScheduledTask{})`` exactly as Go 1.19 does it."""
    plain = _decode_plain(data)
    if plain is not None:
        return Decoded(task=plain, error=None)
    return decode_go(data)


def decode_go(data: bytes) -> Decoded:
    """``decode_scheduled_task`` by the Go-exact decoder alone (its tests compare the two)."""
    try:
        gojson.check_valid(data)
    except gojson.GoSyntaxError as exc:
        return Decoded(task=_EMPTY, error=DecodeError("syntax", str(exc)))
    decoder = _Decoder(data)
    error = decoder.run()
    task = decoder.task()
    warnings: tuple[str, ...] = ()
    if decoder.legacy_max_tries:
        effect = "tasks get the default 10 tries" if task.max_tries <= 0 else f"max_tries {task.max_tries} applies"
        # Contract §2.3: a 2022 record's "MaxTries" does not fold onto "max_tries".
        warnings = (f'legacy "MaxTries" field is ignored by asyncjobs; {effect}',)
    return Decoded(task=task, error=error, warnings=warnings)


def decode_or_raise(data: bytes) -> tuple[ScheduledTask, tuple[str, ...]]:
    """Decode as Go's scheduler would accept it: any error raises ``DecodeError``."""
    result = decode_scheduled_task(data)
    if result.error is not None:
        raise result.error
    return result.task, result.warnings


def encode_scheduled_task(task: ScheduledTask) -> bytes:
    """``json.Marshal(task)``: Go's key order, compact, ``deadline`` omitted when 0."""
    parts = [b'{"name":', marshal_string(task.name)]
    for key, value in (
        ("schedule", task.schedule),
        ("queue", task.queue),
        ("task_type", task.task_type),
    ):
        parts += [f',"{key}":'.encode(), marshal_string(value)]
    parts += [b',"payload":', marshal_bytes(task.payload)]
    if task.deadline_ns != 0:
        parts += [b',"deadline":', marshal_int64(task.deadline_ns, "deadline")]
    parts += [b',"max_tries":', marshal_int64(task.max_tries, "max_tries")]
    parts += [b',"created_at":', marshal_time(task.created_at), b"}"]
    return b"".join(parts)

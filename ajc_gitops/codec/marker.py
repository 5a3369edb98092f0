"""The ownership marker ``ajc_gitops.managed.<name>`` (see ``plan/model.py``): one compact JSON
object, written beside a schedule ajc-gitops manages. Go never reads it (contract §2.1: readers
watch ``scheduled_tasks.*`` only), so its form is ours; ``apply`` and ``export`` use this module
so there is one encoder and one decoder.

A suspended schedule's marker adds ``"suspended": {"at": ..., "reason": ..., "record": ...}``:
``record`` is the record's text (codec output, JSON, so it embeds as a string), kept so that
one read of the marker gives the definition, why and since when (docs/architecture.md)."""

from __future__ import annotations

import hashlib
import json
import re

from ajc_gitops import rules
from ajc_gitops.model import Marker, Suspension

__all__ = ["MarkerError", "decode_marker", "encode_marker", "record_digest"]

_KEYS = ("name", "sha256", "source", "applied_at")
# A suspended marker carries a record, which the manifest loader keeps under 1 MiB.
_MAX_MARKER_BYTES = 2 * 1024 * 1024
_SUSPENDED_KEYS = ("at", "reason", "record")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class MarkerError(ValueError):
    """A marker value that is not ours; ``str()`` says what is wrong."""


def record_digest(record: bytes) -> str:
    return hashlib.sha256(record).hexdigest()


def encode_marker(marker: Marker) -> bytes:
    # ensure_ascii: a source path with undecodable bytes (lone surrogates) still encodes.
    document: dict[str, str | bool | dict[str, str]] = {key: getattr(marker, key) for key in _KEYS}
    if marker.sensitive:
        document["sensitive"] = True
    if (held := marker.suspended) is not None:
        # The codec writes records as UTF-8 JSON (Go's json.Marshal output), so they decode.
        document["suspended"] = {"at": held.at, "reason": held.reason, "record": held.record.decode("utf-8")}
    return json.dumps(document, separators=(",", ":")).encode("ascii")


def decode_marker(data: bytes) -> Marker:
    if len(data) > _MAX_MARKER_BYTES:
        raise MarkerError(f"marker is {len(data)} bytes, larger than any ajc-gitops writes")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MarkerError(f"marker is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise MarkerError("marker is not a JSON object")
    values: dict[str, str] = {}
    for key in _KEYS:
        value = document.get(key)
        if not isinstance(value, str):
            raise MarkerError(f"marker field {key!r} is missing or not a string")
        values[key] = value
    sensitive = document.get("sensitive", False)
    if not isinstance(sensitive, bool):
        raise MarkerError("marker field 'sensitive' is not true or false")
    suspended = _decode_suspension(document.get("suspended"))
    if (problem := rules.name_problem(values["name"])) is not None:
        raise MarkerError(f"marker name: {problem}")
    if not _HEX_DIGEST.fullmatch(values["sha256"]):
        raise MarkerError("marker sha256 is not 64 lowercase hex digits")
    return Marker(**values, sensitive=sensitive, suspended=suspended)


def _decode_suspension(value: object) -> Suspension | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MarkerError("marker field 'suspended' is not an object")
    fields: dict[str, str] = {}
    for key in _SUSPENDED_KEYS:
        item = value.get(key)
        if not isinstance(item, str):
            raise MarkerError(f"marker field 'suspended.{key}' is missing or not a string")
        fields[key] = item
    try:
        record = fields["record"].encode("utf-8")
    except UnicodeEncodeError:
        raise MarkerError("marker field 'suspended.record' is not a record") from None
    return Suspension(fields["at"], fields["reason"], record)

"""The election key's KV operations, as nats.go's KV does them (contract §3, §5), for the
scheduler's ``Elector`` (``scheduler/election.py``). Part of the asyncjobs adapters.
"""

from __future__ import annotations

import base64

from ajc_gitops.errors import ConflictError, StoreError
from ajc_gitops.names import (
    ELECTION_KEY,
    ELECTIONS_BUCKET,
    EXPECTED_LAST_SUBJECT_SEQ,
    KV_OPERATION,
    kv_stream,
    kv_subject,
)
from ajc_gitops.store.kv.client import Store
from ajc_gitops.store.kv.errors import decode_reply

__all__ = ["NatsElectionKV"]

_NS = 1_000_000_000


class NatsElectionKV:
    """``scheduler.election.ElectionKV`` over the elections bucket (contract §3 KV ops)."""

    def __init__(self, store: Store, *, bucket: str = ELECTIONS_BUCKET, key: str = ELECTION_KEY) -> None:
        self._store = store
        self._bucket = bucket
        self._key = key
        self._subject = kv_subject(bucket, key)

    async def bucket_ttl(self) -> float:
        """Go reads the TTL from the bucket status (stream max_age), never from config."""
        summary = await self._store.stream_info_summary(self._bucket)
        return float(summary.config.get("max_age", 0) or 0) / _NS

    async def _request(self, value: bytes, headers: dict[str, str], timeout: float, what: str) -> int:
        nc, guard = self._store.client, self._store.guard(f"{what} {self._key}", self._subject)
        with guard:
            reply = decode_reply(await nc.request(self._subject, value, timeout=timeout, headers=headers))
        seq = reply.get("seq")
        if not isinstance(seq, int):
            raise StoreError(f"{self._store.server}: {what} {self._key}: reply has no sequence")
        return seq

    async def create(self, value: bytes, *, timeout: float) -> int:
        """nats.go ``kv.Create``: expected sequence 0; if the key's last entry is a DEL/PURGE
        marker (a released or deleted key), retry expecting that marker's revision."""
        try:
            return await self._request(value, {EXPECTED_LAST_SUBJECT_SEQ: "0"}, timeout, "create")
        except ConflictError:
            tombstone = await self._tombstone_revision(timeout)
            if tombstone is None:
                raise
            return await self._request(value, {EXPECTED_LAST_SUBJECT_SEQ: str(tombstone)}, timeout, "create")

    async def update(self, value: bytes, *, revision: int, timeout: float) -> int:
        return await self._request(value, {EXPECTED_LAST_SUBJECT_SEQ: str(revision)}, timeout, "update")

    async def delete(self, *, revision: int, timeout: float) -> None:
        await self._request(b"", {KV_OPERATION: "DEL", EXPECTED_LAST_SUBJECT_SEQ: str(revision)}, timeout, "delete")

    async def _tombstone_revision(self, timeout: float) -> int | None:
        """The revision of the key's last entry if that is a DEL/PURGE marker."""
        api = f"{self._store.api_prefix}.STREAM.MSG.GET.{kv_stream(self._bucket)}"
        nc, guard = self._store.client, self._store.guard(f"read {self._key}", api)
        body = f'{{"last_by_subj":"{self._subject}"}}'.encode()
        try:
            with guard:
                reply = decode_reply(await nc.request(api, body, timeout=timeout))
        except ConflictError:
            raise
        except StoreError:
            return None  # no message: the conflict was a live key that just expired
        message = reply.get("message") or {}
        headers = base64.b64decode(message.get("hdrs") or b"").decode(errors="replace")
        for line in headers.split("\r\n")[1:]:
            name, _, val = line.partition(":")
            if name.strip().lower() == KV_OPERATION.lower() and val.strip() in ("DEL", "PURGE"):
                seq = message.get("seq")
                return seq if isinstance(seq, int) else None
        return None

"""The asyncjobs buckets as streams: their configuration as nats.go creates it (contract
§1), whether they exist, creating the missing ones, and a stream's state.
"""

from __future__ import annotations

import asyncio
from types import MappingProxyType
from typing import Any

import nats.js.errors

from ajc_gitops.errors import StoreError
from ajc_gitops.names import CONFIG_BUCKET, ELECTIONS_BUCKET, kv_stream, kv_subject
from ajc_gitops.state import StreamSummary
from ajc_gitops.store.kv.connection import Connection
from ajc_gitops.store.kv.errors import ERR_STREAM_NAME_IN_USE, is_not_found

_NS = 1_000_000_000

# Contract §1: descriptions and TTLs as asyncjobs creates them.
_BUCKETS: dict[str, tuple[str, int]] = {
    CONFIG_BUCKET: ("Choria Async Jobs Configuration", 0),
    ELECTIONS_BUCKET: ("Choria Async Jobs Leader Elections", 10 * _NS),
}
# nats.go jetstream KV: duplicate window 2m, or the TTL when that is shorter.
_DEFAULT_DUPLICATE_WINDOW_NS = 120 * _NS


class Buckets(Connection):
    """``Store``'s bucket methods."""

    @staticmethod
    def bucket_config(bucket: str, *, replicas: int = 1, memory: bool = False) -> dict[str, Any]:
        """The stream config nats.go's ``CreateKeyValue`` sends for asyncjobs (contract §1)."""
        description, ttl_ns = _BUCKETS[bucket]
        dup = min(ttl_ns, _DEFAULT_DUPLICATE_WINDOW_NS) if ttl_ns else _DEFAULT_DUPLICATE_WINDOW_NS
        return {
            "name": kv_stream(bucket),
            "description": description,
            "subjects": [kv_subject(bucket, ">")],
            "retention": "limits",
            "max_consumers": -1,
            "max_msgs": -1,
            "max_bytes": -1,
            "discard": "new",
            "max_age": ttl_ns,
            "max_msgs_per_subject": 1,
            "max_msg_size": -1,
            "storage": "memory" if memory else "file",
            "num_replicas": replicas,
            "duplicate_window": dup,
            "allow_rollup_hdrs": True,
            "deny_delete": True,
            "deny_purge": False,
            "allow_direct": True,
            "mirror_direct": False,
            "compression": "none",
        }

    async def stream_exists(self, stream: str) -> bool:
        try:
            await self.api_request(f"STREAM.INFO.{stream}", None, what=f"stream {stream}")
        except StoreError as exc:
            if is_not_found(exc):
                return False
            raise
        return True

    async def bucket_exists(self, bucket: str = CONFIG_BUCKET) -> bool:
        return await self.stream_exists(kv_stream(bucket))

    async def buckets_exist(self) -> bool:
        return all([await self.stream_exists(kv_stream(b)) for b in _BUCKETS])

    async def ensure_buckets(self, *, replicas: int = 1, memory: bool = False) -> list[str]:
        """Create the missing asyncjobs buckets; existing ones are never altered (contract §1)."""
        created = []
        for bucket in _BUCKETS:
            stream = kv_stream(bucket)
            if await self.stream_exists(stream):
                continue
            config = self.bucket_config(bucket, replicas=replicas, memory=memory)
            try:
                await self.api_request(f"STREAM.CREATE.{stream}", config, what=f"create bucket {bucket}")
            except StoreError as exc:
                cause = exc.__cause__
                # Someone else created it in between: theirs stays as it is.
                if isinstance(cause, nats.js.errors.APIError) and (cause.err_code == ERR_STREAM_NAME_IN_USE):
                    continue
                raise
            await self._wait_for_leader(stream)
            created.append(bucket)
        return created

    async def _wait_for_leader(self, stream: str) -> None:
        """A new replicated stream takes writes only once its group has elected a leader, and
        STREAM.CREATE can answer before that: the first writes of an apply that had just created
        R3 buckets then met "no responders" (tests/faults/test_cluster_faults.py)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        while True:
            info = await self.api_request(f"STREAM.INFO.{stream}", None, what=f"stream {stream}")
            cluster = info.get("cluster")
            if not isinstance(cluster, dict) or cluster.get("leader"):
                return
            if loop.time() >= deadline:
                raise StoreError(f"{self.server}: stream {stream} has no leader {self._timeout:g}s after creating it")
            await asyncio.sleep(0.05)  # a remote condition: nothing to await but the next answer

    async def stream_info_summary(self, bucket: str = CONFIG_BUCKET) -> StreamSummary:
        stream = kv_stream(bucket)
        info = await self.api_request(f"STREAM.INFO.{stream}", None, what=f"stream {stream}")
        state = info.get("state") or {}
        return StreamSummary(
            name=stream,
            messages=int(state.get("messages", 0)),
            bytes=int(state.get("bytes", 0)),
            first_seq=int(state.get("first_seq", 0)),
            last_seq=int(state.get("last_seq", 0)),
            num_subjects=int(state.get("num_subjects", 0)),
            config=MappingProxyType(dict(info.get("config") or {})),
        )

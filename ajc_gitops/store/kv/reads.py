"""Reading KV keys: ``snapshot`` and ``snapshots``, complete (checked against the stream's
per-subject state) and, for ``snapshots``, never older than the stream leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence

import nats.js.api
import nats.js.errors
from nats.aio.msg import Msg

from ajc_gitops.errors import StoreError
from ajc_gitops.names import CONFIG_BUCKET, KV_OPERATION, SCHEDULE_PREFIX, kv_stream, kv_subject
from ajc_gitops.state import Entry, Operation, Snapshot
from ajc_gitops.store.kv.connection import Connection
from ajc_gitops.store.kv.errors import ERR_NO_MESSAGE_FOUND, is_not_found

_SNAPSHOT_ATTEMPTS = 3
# A read from a replica behind the leader is repeated after these pauses (doubling).
_BEHIND_FIRST_PAUSE_S = 0.05
_BEHIND_MAX_PAUSE_S = 0.5


class Reads(Connection):
    """``Store``'s read methods."""

    async def _subject_counts(self, stream: str, subject_filter: str) -> tuple[dict[str, int], int]:
        """Per-subject message counts under a filter, following the server's paging, and the
        stream's last sequence (0 when it holds no message). In a cluster only the stream
        leader answers STREAM.INFO, so both are the leader's."""
        subjects: dict[str, int] = {}
        last_seq = 0
        while True:
            body = {"subjects_filter": subject_filter, "offset": len(subjects)}
            try:
                info = await self.api_request(f"STREAM.INFO.{stream}", body, what="stream state")
            except StoreError as exc:
                if is_not_found(exc):
                    raise StoreError(f"{self.server}: bucket {stream.removeprefix('KV_')} does not exist") from exc
                raise
            state = info.get("state") or {}
            if not subjects and int(state.get("messages", 0) or 0):
                last_seq = int(state.get("last_seq", 0) or 0)
            page = state.get("subjects") or {}
            before = len(subjects)
            subjects.update(page)
            total = int(info.get("total", 0) or 0)  # only present when the server pages
            if len(subjects) == before or len(subjects) >= total:
                return subjects, last_seq

    async def _leader_has(self, stream: str, seq: int) -> bool:
        """Whether the stream leader holds a message at ``seq`` (STREAM.MSG.GET is leader-only)."""
        try:
            await self.api_request(f"STREAM.MSG.GET.{stream}", {"seq": seq}, what="stream message")
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, nats.js.errors.APIError) and cause.err_code == ERR_NO_MESSAGE_FOUND:
                return False
            raise
        return True

    async def _complete_read(self, stream: str, bucket: str, subject_filter: str) -> tuple[list[Entry], int]:
        """Every key under the filter, checked against the stream's per-subject state; a
        mismatch (a concurrent purge) is read again. Also returns the leader's last sequence."""
        for _ in range(_SNAPSHOT_ATTEMPTS):
            expected, last_seq = await self._subject_counts(stream, subject_filter)
            entries, complete = await self._read_last_per_subject(stream, bucket, subject_filter, expected)
            if complete:
                return entries, last_seq
        raise StoreError(
            f"{self.server}: snapshot of {subject_filter} incomplete after "
            f"{_SNAPSHOT_ATTEMPTS} attempts (keys changing too fast?)"
        )

    async def snapshot(self, prefix: str = SCHEDULE_PREFIX, *, bucket: str = CONFIG_BUCKET) -> Snapshot:
        """Last entry of every key under ``prefix``, complete or a ``StoreError``.

        nats-py's KV watcher reports "initial values done" too early (nats.py #842), so we
        read with an ordered consumer (last per subject) until num_pending is 0 and check
        the keys received against the stream's per-subject state. ``snapshots`` reads
        several prefixes at once and also checks the read is as new as the stream leader.
        """
        if prefix and not prefix.endswith("."):
            raise ValueError(f"snapshot prefix must end with '.', got {prefix!r}")
        entries, _ = await self._complete_read(kv_stream(bucket), bucket, kv_subject(bucket, prefix + ">"))
        return Snapshot.build(prefix, entries)

    async def snapshots(self, prefixes: Sequence[str], *, bucket: str = CONFIG_BUCKET) -> tuple[Snapshot, ...]:
        """The keys under each prefix, read through one consumer on the whole bucket, so the
        snapshots agree with each other, and never older than the stream leader.

        nats-server may place the read consumer on any replica of an R3 bucket, including a
        node that has just restarted and is still catching up; its view shows keys as they
        were before (a false drift in plan). A whole-bucket read must reach the leader's last
        sequence, the newest message of some key (unless it was removed since, which the
        leader is asked). A read that is behind is repeated on a new consumer until the
        store's timeout, and then reported rather than used.
        """
        for prefix in prefixes:
            if not prefix.endswith("."):
                raise ValueError(f"snapshot prefix must end with '.', got {prefix!r}")
        stream = kv_stream(bucket)
        deadline = time.monotonic() + self._timeout
        pause = _BEHIND_FIRST_PAUSE_S
        while True:
            entries, last_seq = await self._complete_read(stream, bucket, kv_subject(bucket, ">"))
            newest = max((e.revision for e in entries), default=0)
            if newest >= last_seq or not await self._leader_has(stream, last_seq):
                # Sorting a million keys is a second of pure Python: in a thread, so the
                # event loop (a scheduler's election refresh) gets the GIL every few ms.
                return await asyncio.to_thread(_build, prefixes, entries)
            if time.monotonic() + pause > deadline:
                raise StoreError(
                    f"{self.server}: bucket {bucket}: every read came from a replica behind the stream "
                    f"leader (read up to revision {newest}, the leader has {last_seq}); a node is still "
                    "catching up after a restart: run again shortly"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, _BEHIND_MAX_PAUSE_S)

    async def _read_last_per_subject(
        self, stream: str, bucket: str, subject_filter: str, expected: Mapping[str, int]
    ) -> tuple[list[Entry], bool]:
        """The last entry per subject, and whether every subject in ``expected`` was among them
        (counted as they arrive: no pass over a million keys afterwards)."""
        if not expected:
            return [], True
        strip = len(kv_subject(bucket, ""))
        latest: dict[str, Entry] = {}
        done = asyncio.Event()
        found = 0

        async def on_msg(msg: Msg) -> None:
            nonlocal found
            meta = msg.metadata
            op = (msg.headers or {}).get(KV_OPERATION, "PUT")
            operation: Operation = "DEL" if op == "DEL" else "PURGE" if op == "PURGE" else "PUT"
            key = msg.subject[strip:]
            rev = meta.sequence.stream
            prev = latest.get(key)
            if prev is None and msg.subject in expected:
                found += 1
            if prev is None or prev.revision < rev:
                value = msg.data if operation == "PUT" else None
                latest[key] = Entry(key, value, rev, operation)
            if meta.num_pending == 0:
                done.set()

        with self.guard("snapshot"):
            sub = await self._js.subscribe(
                subject_filter,
                stream=stream,
                cb=on_msg,
                ordered_consumer=True,
                deliver_policy=nats.js.api.DeliverPolicy.LAST_PER_SUBJECT,
                # The server removes the consumer soon after we unsubscribe.
                inactive_threshold=5.0,
            )
            try:
                while not done.is_set():
                    before = len(latest)
                    try:
                        async with asyncio.timeout(self._timeout):
                            await done.wait()
                    except TimeoutError:
                        if len(latest) != before:
                            continue  # slow but moving
                        # Nothing left for us: keys purged since we counted them. The
                        # caller's completeness check decides whether to retry.
                        if (await sub.consumer_info()).num_pending == 0:
                            break
                        raise StoreError(
                            f"{self.server}: snapshot: no progress after {self._timeout}s "
                            f"({len(latest)} of {len(expected)} keys)"
                        ) from None
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        return list(latest.values()), found == len(expected)


def _build(prefixes: Sequence[str], entries: Sequence[Entry]) -> tuple[Snapshot, ...]:
    return tuple(Snapshot.build(p, [e for e in entries if e.key.startswith(p)]) for p in prefixes)

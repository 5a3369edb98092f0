"""Reading KV keys: ``snapshot`` and ``snapshots``, complete (checked against the stream's
per-subject state) and, for ``snapshots``, never older than the stream leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

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

    async def _complete_read(
        self, stream: str, bucket: str, subject_filter: str, start: Callable[[], EntrySink]
    ) -> tuple[int, int]:
        """Every key under the filter into a sink from ``start()``, checked against the
        stream's per-subject state; a mismatch (a concurrent purge) is read again into a fresh
        sink. Returns the leader's last sequence and the newest revision read."""
        for _ in range(_SNAPSHOT_ATTEMPTS):
            expected, last_seq = await self._subject_counts(stream, subject_filter)
            complete, newest = await self._read_last_per_subject(stream, bucket, subject_filter, expected, start())
            if complete:
                return last_seq, newest
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
        latest = _Latest()
        await self._complete_read(kv_stream(bucket), bucket, kv_subject(bucket, prefix + ">"), latest.start)
        return Snapshot.build(prefix, list(latest.entries.values()))

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
        latest = _Latest()
        await self.scan(latest.start, bucket=bucket)
        # Sorting a million keys is a second of pure Python: in a thread, so that the event
        # loop (a scheduler's election refresh) gets the GIL every few milliseconds.
        return await asyncio.to_thread(_build, prefixes, list(latest.entries.values()))

    async def scan(self, start: Callable[[], EntrySink], *, bucket: str = CONFIG_BUCKET) -> int:
        """``snapshots`` without keeping anything: the last entry of every key of the bucket
        is handed to a sink from ``start()`` as it arrives (a read that has to be repeated
        calls ``start()`` again), complete and as new as the stream leader, or a
        ``StoreError``. Returns the leader's last sequence. For a million keys, where a
        snapshot would hold every value at once."""
        stream = kv_stream(bucket)
        deadline = time.monotonic() + self._timeout
        pause = _BEHIND_FIRST_PAUSE_S
        while True:
            last_seq, newest = await self._complete_read(stream, bucket, kv_subject(bucket, ">"), start)
            if newest >= last_seq or not await self._leader_has(stream, last_seq):
                return last_seq
            if time.monotonic() + pause > deadline:
                raise StoreError(
                    f"{self.server}: bucket {bucket}: every read came from a replica behind the stream "
                    f"leader (read up to revision {newest}, the leader has {last_seq}); a node is still "
                    "catching up after a restart: run again shortly"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, _BEHIND_MAX_PAUSE_S)

    async def _read_last_per_subject(
        self, stream: str, bucket: str, subject_filter: str, expected: dict[str, int], sink: EntrySink
    ) -> tuple[bool, int]:
        """The last entry per subject into ``sink``; whether every subject in ``expected``
        was among them (each is popped as it arrives: no pass over a million keys after), and
        the newest revision read."""
        if not expected:
            return True, 0
        strip = len(kv_subject(bucket, ""))
        done = asyncio.Event()
        wanted = len(expected)
        found = delivered = newest = 0

        async def on_msg(msg: Msg) -> None:
            nonlocal found, delivered, newest
            meta = msg.metadata
            op = (msg.headers or {}).get(KV_OPERATION, "PUT")
            operation: Operation = "DEL" if op == "DEL" else "PURGE" if op == "PURGE" else "PUT"
            rev = meta.sequence.stream
            delivered += 1
            newest = max(newest, rev)
            if expected.pop(msg.subject, None) is not None:
                found += 1
            sink(Entry(msg.subject[strip:], msg.data if operation == "PUT" else None, rev, operation))
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
                    before = delivered
                    try:
                        async with asyncio.timeout(self._timeout):
                            await done.wait()
                    except TimeoutError:
                        if delivered != before:
                            continue  # slow but moving
                        # Nothing left for us: keys purged since we counted them. The
                        # caller's completeness check decides whether to retry.
                        if (await sub.consumer_info()).num_pending == 0:
                            break
                        raise StoreError(
                            f"{self.server}: snapshot: no progress after {self._timeout}s ({found} of {wanted} keys)"
                        ) from None
            finally:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        return found == wanted, newest


EntrySink = Callable[[Entry], None]


class _Latest:
    """A sink keeping the newest entry per key (an ordered consumer may deliver one twice)."""

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}

    def start(self) -> EntrySink:
        self.entries.clear()  # a repeated read starts over
        return self.add

    def add(self, entry: Entry) -> None:
        prev = self.entries.get(entry.key)
        if prev is None or prev.revision < entry.revision:
            self.entries[entry.key] = entry


def _build(prefixes: Sequence[str], entries: Sequence[Entry]) -> tuple[Snapshot, ...]:
    return tuple(Snapshot.build(p, [e for e in entries if e.key.startswith(p)]) for p in prefixes)

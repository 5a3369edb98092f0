"""Writing KV keys: the single revision-guarded operations with the headers nats.go sends
(contract §3), and the ``write_many`` pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Sequence
from typing import Any

import nats.errors
from nats.aio.msg import Msg

from ajc_gitops.errors import StoreError
from ajc_gitops.names import CONFIG_BUCKET, EXPECTED_LAST_SUBJECT_SEQ, KV_OPERATION, ROLLUP, kv_subject
from ajc_gitops.state import Outcome, WriteOp, check_not_schedule
from ajc_gitops.store.kv.connection import Connection
from ajc_gitops.store.kv.errors import ERR_WRONG_LAST_SEQUENCE, decode_reply, is_permission_text, permission_text

# nats.go/nats.py key rule (kv.go validKeyRe), plus no leading/trailing dot.
_VALID_KEY_RE = re.compile(r"^[-/_=.a-zA-Z0-9]+$")
_DEFAULT_IN_FLIGHT = 1024


def _headers(op: WriteOp) -> dict[str, str]:
    """The KV headers nats.go sends for each operation (contract §3 table)."""
    if op.kind in ("create", "update"):
        return {EXPECTED_LAST_SUBJECT_SEQ: str(op.revision or 0)}
    if op.kind == "delete":
        return {KV_OPERATION: "DEL", EXPECTED_LAST_SUBJECT_SEQ: str(op.revision or 0)}
    headers = {KV_OPERATION: "PURGE", ROLLUP: "sub"}
    if op.revision is not None:
        headers[EXPECTED_LAST_SUBJECT_SEQ] = str(op.revision)
    return headers


def _check_key(key: str) -> None:
    if not _VALID_KEY_RE.match(key) or key.startswith(".") or key.endswith("."):
        raise StoreError(f"invalid KV key {key!r}")


class Writes(Connection):
    """``Store``'s write methods."""

    async def _kv_publish(self, bucket: str, key: str, value: bytes, headers: dict[str, str], what: str) -> int:
        _check_key(key)
        subject = kv_subject(bucket, key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        with self.guard(f"{what} {key}", subject):
            while True:
                try:
                    msg = await self._nc.request(subject, value, timeout=self._timeout, headers=headers)
                    break
                except nats.errors.NoRespondersError:
                    # In a cluster the stream's subjects reach every server a moment after a new
                    # stream (or a new leader) is ready; nothing stored the message, so resending
                    # is safe until the timeout.
                    if loop.time() >= deadline:
                        raise
                    await asyncio.sleep(0.05)
            reply = decode_reply(msg)
        seq = reply.get("seq")
        if not isinstance(seq, int):
            raise StoreError(f"{self.server}: {what} {key}: reply has no sequence")
        return seq

    async def create(
        self, key: str, value: bytes, *, tombstone_revision: int | None, bucket: str = CONFIG_BUCKET
    ) -> int:
        """KV Create: succeeds only if the key is absent (or still at its tombstone revision)."""
        expected = str(tombstone_revision or 0)
        return await self._kv_publish(bucket, key, value, {EXPECTED_LAST_SUBJECT_SEQ: expected}, "create")

    async def update(self, key: str, value: bytes, *, revision: int, bucket: str = CONFIG_BUCKET) -> int:
        """KV Update: succeeds only if ``key`` is still at ``revision``. For ajc-gitops's own
        keys (the ownership markers); refused for schedules (contract §0.3)."""
        check_not_schedule(key)
        return await self._kv_publish(bucket, key, value, {EXPECTED_LAST_SUBJECT_SEQ: str(revision)}, "update")

    async def delete(self, key: str, *, revision: int, bucket: str = CONFIG_BUCKET) -> int:
        """Revision-guarded delete; returns the tombstone's revision (for a later Create)."""
        headers = {KV_OPERATION: "DEL", EXPECTED_LAST_SUBJECT_SEQ: str(revision)}
        return await self._kv_publish(bucket, key, b"", headers, "delete")

    async def purge(self, key: str, *, revision: int | None = None, bucket: str = CONFIG_BUCKET) -> int:
        headers = {KV_OPERATION: "PURGE", ROLLUP: "sub"}
        if revision is not None:
            headers[EXPECTED_LAST_SUBJECT_SEQ] = str(revision)
        return await self._kv_publish(bucket, key, b"", headers, "purge")

    async def put_raw(self, key: str, value: bytes, *, bucket: str = CONFIG_BUCKET) -> int:
        """Unconditional Put. Never for schedules (contract §0.3): tests, benchmarks, and keys
        with a single writer such as a scheduler's own member marker (``group.py``)."""
        return await self._kv_publish(bucket, key, value, {}, "put")

    async def write_many(
        self,
        ops: Sequence[WriteOp],
        *,
        max_in_flight: int = _DEFAULT_IN_FLIGHT,
        bucket: str = CONFIG_BUCKET,
    ) -> list[Outcome]:
        """Pipeline many writes (up to ``max_in_flight`` unanswered at once).

        One outcome per op, in order; never raises midway. Keys must be distinct, since
        concurrent writes to one key have no defined order (contract §3: Delete, then
        Create over the tombstone, is two batches).

        Each write is published with its own reply subject under one inbox subscription and
        the acks are matched here: nats-py's ``request`` gives every call its own future and
        ``wait_for`` timer, which caps a pipeline near 9k writes/s on loopback, about a fifth
        of this (bench/plan_apply_bench.py). When no ack arrives for a whole ``timeout`` the
        pipeline stops: the writes still open or unsent fail with the cause (a permissions
        violation the server reported, else the timeout).
        """
        keys = [op.key for op in ops]
        if len(set(keys)) != len(keys):
            raise ValueError("write_many needs distinct keys")
        outcomes: list[Outcome | None] = [None] * len(ops)
        todo: list[int] = []
        for i, op in enumerate(ops):
            try:
                _check_key(op.key)
                if op.kind == "update":
                    check_not_schedule(op.key)
            except (StoreError, ValueError) as exc:
                outcomes[i] = Outcome(op.key, "error", None, str(exc))
            else:
                todo.append(i)
        if todo:
            await self._pipeline(ops, todo, outcomes, max(1, max_in_flight), bucket)
        return [o if o is not None else Outcome(ops[i].key, "error", None, "not sent") for i, o in enumerate(outcomes)]

    async def _pipeline(
        self,
        ops: Sequence[WriteOp],
        todo: Sequence[int],
        outcomes: list[Outcome | None],
        max_in_flight: int,
        bucket: str,
    ) -> None:
        window = asyncio.Semaphore(max_in_flight)
        open_ops: dict[int, WriteOp] = {}
        finished = asyncio.Event()
        progress = {"acks": 0, "seen": -1}
        stalled = False
        sending = True
        mark = self._errors.mark()
        inbox = self._nc.new_inbox()
        strip = len(inbox) + 1
        loop = asyncio.get_running_loop()

        async def on_ack(msg: Msg) -> None:
            try:
                i = int(msg.subject[strip:])
            except ValueError:
                return
            op = open_ops.pop(i, None)
            if op is None:
                return  # an ack after we gave up on it
            outcomes[i] = self._ack_outcome(op, msg)
            progress["acks"] += 1
            window.release()
            if not open_ops and not sending:
                finished.set()

        tick = min(self._timeout / 4, 0.5)
        last_ack = [loop.time()]

        def watchdog() -> None:
            # A timer, not a task: gives up when no ack came for ``timeout`` or the
            # connection closed (nats-py closes it on disconnect when not reconnecting).
            nonlocal stalled
            if progress["acks"] != progress["seen"]:
                progress["seen"] = progress["acks"]
                last_ack[0] = loop.time()
            elif self._nc.is_closed or loop.time() - last_ack[0] >= self._timeout:
                stalled = True
                finished.set()
                window.release()  # wake the sender so it sees ``stalled``
                return
            timers[0] = loop.call_later(tick, watchdog)

        timers = [loop.call_later(tick, watchdog)]
        failure: str | None = None
        sub = None
        try:
            with self.guard("write"):
                sub = await self._nc.subscribe(f"{inbox}.*", cb=on_ack)
                for i in todo:
                    await window.acquire()
                    if stalled:
                        break
                    op = ops[i]
                    open_ops[i] = op
                    await self._nc.publish(
                        kv_subject(bucket, op.key), op.value or b"", reply=f"{inbox}.{i}", headers=_headers(op)
                    )
            sending = False
            if open_ops and not stalled:
                await finished.wait()
        except StoreError as exc:
            failure = str(exc)
        finally:
            sending = False
            timers[0].cancel()
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        denied = [e for e in self._errors.since(mark) if is_permission_text(e)]
        if failure is None and self._nc.is_closed:
            failure = f"{self.server}: write: connection lost"
        for i in todo:
            if outcomes[i] is not None:
                continue
            op = ops[i]
            prefix = f"{self.server}: {op.kind} {op.key}: "
            if failure is not None:
                reason = failure
            elif denied:
                reason = f"{prefix}permission denied: {permission_text(denied[-1], kv_subject(bucket, op.key))}"
            elif i in open_ops:
                reason = f"{prefix}timed out: no acknowledgement from the server within {self._timeout:g}s"
            else:
                reason = f"{prefix}not sent: the server stopped acknowledging writes"
            outcomes[i] = Outcome(op.key, "error", None, reason)

    def _ack_outcome(self, op: WriteOp, msg: Msg) -> Outcome:
        """A JetStream PubAck (or error, or no-responders status) as an ``Outcome``."""
        prefix = f"{self.server}: {op.kind} {op.key}: "
        if msg.headers and msg.headers.get("Status") == "503":
            return Outcome(op.key, "error", None, f"{prefix}no JetStream stream answered (bucket missing?)")
        try:
            data = json.loads(msg.data)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            return Outcome(op.key, "error", None, f"{prefix}unexpected reply {msg.data[:80]!r}")
        err = data.get("error")
        if isinstance(err, dict):
            desc, code, err_code = err.get("description"), err.get("code"), err.get("err_code")
            if err_code in ERR_WRONG_LAST_SEQUENCE:
                return Outcome(op.key, "conflict", None, f"{prefix}revision changed ({desc})")
            return Outcome(op.key, "error", None, f"{prefix}{desc} (code {code}, err_code {err_code})")
        seq = data.get("seq")
        if not isinstance(seq, int):
            return Outcome(op.key, "error", None, f"{prefix}reply has no sequence")
        return Outcome(op.key, "ok", seq, None)

    async def create_many(self, items: Sequence[tuple[str, bytes, int | None]], **kw: Any) -> list[Outcome]:
        """``(key, value, tombstone_revision)`` triples, see ``write_many``."""
        return await self.write_many([WriteOp.create(k, v, tombstone_revision=t) for k, v, t in items], **kw)

    async def delete_many(self, items: Sequence[tuple[str, int]], **kw: Any) -> list[Outcome]:
        """``(key, revision)`` pairs, see ``write_many``."""
        return await self.write_many([WriteOp.delete(k, revision=r) for k, r in items], **kw)

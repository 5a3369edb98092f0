"""The asyncjobs KV buckets over NATS JetStream: the only module that imports ``nats``.

Every nats-py call runs inside ``map_nats_errors()``, which turns nats-py exceptions into
``ConnectError`` / ``ConflictError`` / ``StoreError``; nothing nats-typed leaves this module
(STYLE.md "Translate at the boundary"). JetStream API calls and KV writes are plain
request/reply with JSON we build and parse ourselves, so the bucket configuration is exactly
what nats.go sends (contract §1) and the JetStream prefix/domain options apply everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, Self

import nats
import nats.errors
import nats.js.api
import nats.js.errors
from nats.aio.client import Client as NATSClient
from nats.aio.msg import Msg
from nats.js.client import JetStreamContext

from ajc_gitops.connect import ConnectOptions
from ajc_gitops.errors import AjcError, ConfigError, ConflictError, ConnectError, StoreError

__all__ = [
    "CONFIG_BUCKET",
    "ELECTIONS_BUCKET",
    "SCHEDULE_PREFIX",
    "Entry",
    "Outcome",
    "Snapshot",
    "Store",
    "StreamSummary",
    "WriteOp",
    "map_nats_errors",
]

CONFIG_BUCKET = "CHORIA_AJ_CONFIGURATION"
ELECTIONS_BUCKET = "CHORIA_AJ_ELECTIONS"
SCHEDULE_PREFIX = "scheduled_tasks."
_NS = 1_000_000_000

# Contract §1: descriptions and TTLs as asyncjobs creates them.
_BUCKETS: dict[str, tuple[str, int]] = {
    CONFIG_BUCKET: ("Choria Async Jobs Configuration", 0),
    ELECTIONS_BUCKET: ("Choria Async Jobs Leader Elections", 10 * _NS),
}
# nats.go jetstream KV: duplicate window 2m, or the TTL when that is shorter.
_DEFAULT_DUPLICATE_WINDOW_NS = 120 * _NS

# JetStream error codes (nats-server errors.json).
_ERR_WRONG_LAST_SEQUENCE = frozenset({10071, 10164})
_ERR_JS_NOT_ENABLED = frozenset({10039, 10076})
_ERR_STREAM_NOT_FOUND = 10059
_ERR_STREAM_NAME_IN_USE = 10058

_KV_OPERATION = "KV-Operation"
_EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
# nats.go/nats.py key rule (kv.go validKeyRe), plus no leading/trailing dot.
_VALID_KEY_RE = re.compile(r"^[-/_=.a-zA-Z0-9]+$")
_SNAPSHOT_ATTEMPTS = 3
_DEFAULT_IN_FLIGHT = 256

Operation = Literal["PUT", "DEL", "PURGE"]
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    key: str
    value: bytes | None  # None for DEL/PURGE tombstones
    revision: int
    operation: Operation


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every key under ``prefix`` (last value per subject), split into live and tombstoned."""

    prefix: str
    live: Mapping[str, Entry]
    tombstones: Mapping[str, Entry]

    @classmethod
    def build(cls, prefix: str, entries: Iterator[Entry] | Sequence[Entry]) -> Snapshot:
        live: dict[str, Entry] = {}
        dead: dict[str, Entry] = {}
        for e in sorted(entries, key=lambda e: e.key):
            (live if e.operation == "PUT" else dead)[e.key] = e
        return cls(prefix, MappingProxyType(live), MappingProxyType(dead))

    def get(self, key: str) -> Entry | None:
        return self.live.get(key)

    def tombstone_revision(self, key: str) -> int | None:
        """The revision a Create must expect when ``key`` was deleted (contract §5)."""
        entry = self.tombstones.get(key)
        return entry.revision if entry is not None else None

    def __len__(self) -> int:
        return len(self.live)


@dataclass(frozen=True, slots=True)
class WriteOp:
    kind: Literal["create", "delete", "purge"]
    key: str
    value: bytes | None = None
    revision: int | None = None  # create: the tombstone revision; delete/purge: the guard

    @classmethod
    def create(cls, key: str, value: bytes, *, tombstone_revision: int | None) -> WriteOp:
        return cls("create", key, value, tombstone_revision)

    @classmethod
    def delete(cls, key: str, *, revision: int) -> WriteOp:
        return cls("delete", key, None, revision)

    @classmethod
    def purge(cls, key: str, *, revision: int | None = None) -> WriteOp:
        return cls("purge", key, None, revision)


@dataclass(frozen=True, slots=True)
class Outcome:
    key: str
    status: Literal["ok", "conflict", "error"]
    revision: int | None = None  # the new revision when ok
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StreamSummary:
    name: str
    messages: int
    bytes: int
    first_seq: int
    last_seq: int
    num_subjects: int
    config: Mapping[str, Any] = field(repr=False)  # the server's JSON stream config


# -- error mapping ------------------------------------------------------------------------


def _is_permission_text(text: str) -> bool:
    return "permissions violation" in text.lower()


def _is_auth_text(text: str) -> bool:
    low = text.lower()
    return "authorization" in low or "authentication" in low or "user authentication" in low


@contextlib.contextmanager
def map_nats_errors(
    server_desc: str,
    what: str = "",
    *,
    permission_error: Callable[[], str | None] | None = None,
) -> Iterator[None]:
    """Turn any nats-py (or socket) exception into the most specific ``StoreError``.

    ``permission_error`` returns a permissions violation the server reported while the
    block ran: nats-py only reports those to the error callback, the request itself then
    just times out (nats.py ``_process_err``).
    """
    prefix = f"{server_desc}: {what + ': ' if what else ''}"
    try:
        yield
    except AjcError:
        raise
    except nats.js.errors.APIError as exc:
        # Some subclasses (KeyWrongLastSequenceError, KeyDeletedError) skip APIError.__init__.
        desc = getattr(exc, "description", None) or str(exc)
        code, err_code = getattr(exc, "code", None), getattr(exc, "err_code", None)
        if err_code in _ERR_WRONG_LAST_SEQUENCE or isinstance(exc, nats.js.errors.KeyWrongLastSequenceError):
            raise ConflictError(f"{prefix}revision changed ({desc})") from exc
        if err_code in _ERR_JS_NOT_ENABLED:
            raise ConnectError(f"{prefix}JetStream is not enabled ({desc})") from exc
        raise StoreError(f"{prefix}{desc} (code {code}, err_code {err_code})") from exc
    except (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError) as exc:
        raise StoreError(f"{prefix}no JetStream stream or API answered (bucket missing? JetStream off?)") from exc
    except TimeoutError as exc:  # nats.errors.TimeoutError is one too
        denied = permission_error() if permission_error is not None else None
        if denied:
            raise ConnectError(f"{prefix}permission denied: {denied}") from exc
        raise StoreError(f"{prefix}timed out waiting for the server") from exc
    except (
        nats.errors.ConnectionClosedError,
        nats.errors.StaleConnectionError,
        nats.errors.ConnectionReconnectingError,
        nats.errors.ConnectionDrainingError,
    ) as exc:
        raise ConnectError(f"{prefix}connection lost ({exc})") from exc
    except nats.errors.AuthorizationError as exc:
        raise ConnectError(f"{prefix}authorization failed: check user/password/token") from exc
    except nats.errors.Error as exc:
        text = str(exc)
        if _is_permission_text(text):
            raise ConnectError(f"{prefix}permission denied: {_permission_text(text, None)}") from exc
        if _is_auth_text(text):
            said = text.removeprefix("nats: ").strip("'")
            raise ConnectError(f"{prefix}authorization failed ({said}): check user/password/token/creds") from exc
        raise StoreError(f"{prefix}{text}") from exc
    except ModuleNotFoundError as exc:
        # nats-py imports nkeys lazily for creds/nkey authentication.
        raise ConnectError(f"{prefix}{exc.name} is needed for creds/nkey auth: pip install {exc.name}") from exc
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise ConnectError(f"{prefix}cannot connect: {reason}") from exc


def _error_text(exc: BaseException) -> str:
    """A short cause for messages (errors nats-py passes to the error callback)."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return (str(exc) or type(exc).__name__).removeprefix("nats: ")


_PERMISSION_RE = re.compile(r'permissions violation for (publish|subscription) to "?([^"]*)"?', re.I)


def _permission_text(raw: str, subject: str | None) -> str:
    """nats-py lower-cases the server's -ERR text, so name the subject we actually used."""
    m = _PERMISSION_RE.search(raw)
    if m is None:
        return raw
    if m.group(1).lower() == "publish":
        return f"not allowed to publish to {subject or m.group(2)}"
    return f"not allowed to subscribe to {m.group(2)}"


class _ErrorLog:
    """Recent errors from nats-py's error callback, numbered so a call can ask "since when"."""

    def __init__(self, keep: int = 64) -> None:
        self._recent: deque[tuple[int, str]] = deque(maxlen=keep)
        self._count = 0

    def add(self, text: str) -> None:
        self._count += 1
        self._recent.append((self._count, text))

    def mark(self) -> int:
        return self._count

    def since(self, mark: int) -> list[str]:
        return [text for n, text in self._recent if n > mark]

    def last(self) -> str | None:
        return self._recent[-1][1] if self._recent else None


def _is_not_found(exc: StoreError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, nats.js.errors.APIError) and (
        getattr(cause, "err_code", None) == _ERR_STREAM_NOT_FOUND or getattr(cause, "code", None) == 404
    )


def _check_key(key: str) -> None:
    if not _VALID_KEY_RE.match(key) or key.startswith(".") or key.endswith("."):
        raise StoreError(f"invalid KV key {key!r}")


def _decode_reply(msg: Msg) -> dict[str, Any]:
    """A JetStream API/PubAck JSON reply; its ``error`` is raised as nats-py's APIError."""
    try:
        data = json.loads(msg.data)
    except ValueError as exc:
        raise StoreError(f"unexpected JetStream reply {msg.data[:80]!r}") from exc
    if not isinstance(data, dict):
        raise StoreError(f"unexpected JetStream reply {msg.data[:80]!r}")
    err = data.get("error")
    if isinstance(err, dict):
        raise nats.js.errors.APIError(
            code=err.get("code"), err_code=err.get("err_code"), description=err.get("description")
        )
    return data


def _check_files(opts: ConnectOptions) -> None:
    """Credential and TLS files must exist: nats-py would report only errno text later."""
    for label, path in (
        ("creds", opts.creds),
        ("nkey", opts.nkey),
        ("TLS certificate", opts.tls_cert),
        ("TLS key", opts.tls_key),
        ("TLS CA", opts.tls_ca),
    ):
        if path is not None and not path.is_file():
            raise ConfigError(f"{label} file {path} does not exist or is not a file")


def _tls_context(opts: ConnectOptions) -> ssl.SSLContext | None:
    if not opts.uses_tls:
        return None
    try:
        ctx = ssl.create_default_context(cafile=str(opts.tls_ca) if opts.tls_ca else None)
        if opts.tls_cert is not None:
            key = str(opts.tls_key) if opts.tls_key else None
            ctx.load_cert_chain(str(opts.tls_cert), key)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        files = ", ".join(str(p) for p in (opts.tls_cert, opts.tls_key, opts.tls_ca) if p)
        raise ConfigError(f"cannot load TLS files ({files}): {_error_text(exc)}") from exc
    return ctx


class Store:
    """One NATS connection for the asyncjobs buckets; open once with ``Store.open()``."""

    def __init__(self, nc: NATSClient, options: ConnectOptions, errors: _ErrorLog) -> None:
        self._nc = nc
        self._options = options
        self._errors = errors  # filled by the error callback
        self._timeout = options.timeout_s
        if options.js_api_prefix:
            self._api = options.js_api_prefix.rstrip(".")
        elif options.js_domain:
            self._api = f"$JS.{options.js_domain}.API"
        else:
            self._api = nats.js.api.DEFAULT_PREFIX
        self._js: JetStreamContext = nc.jetstream(prefix=self._api, timeout=self._timeout)
        self._closed = False
        self.server = options.describe()

    # -- lifecycle --------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, options: ConnectOptions, *, reconnect: bool = False) -> AsyncIterator[Self]:
        """Connect, check JetStream, yield the store, close it.

        The first connect never retries past ``timeout_s`` (nats-py would otherwise retry
        60 times, 2 s apart). ``reconnect=True`` keeps reconnecting after a later
        disconnect, for long-running users (the scheduler).
        """
        store = await cls._connect(options, reconnect=reconnect)
        try:
            yield store
        finally:
            await store.close()

    @classmethod
    async def _connect(cls, options: ConnectOptions, *, reconnect: bool) -> Self:
        errors = _ErrorLog()

        async def error_cb(exc: Exception) -> None:
            _log.debug("nats: %s: %s", desc, exc)
            errors.add(_error_text(exc))

        desc = options.describe()
        kwargs: dict[str, Any] = {}
        if options.user and options.password:
            kwargs.update(user=options.user, password=options.password)
        elif options.user:
            # natscli --user without --password is a token (its help: "Username or Token").
            kwargs["token"] = options.user
        if options.token:
            kwargs["token"] = options.token
        if options.creds is not None:
            kwargs["user_credentials"] = str(options.creds)
        if options.nkey is not None:
            kwargs["nkeys_seed"] = str(options.nkey)
        if options.inbox_prefix:
            kwargs["inbox_prefix"] = options.inbox_prefix
        _check_files(options)
        tls = _tls_context(options)
        nc = NATSClient()
        try:
            with map_nats_errors(desc, "connect"):
                try:
                    await asyncio.wait_for(
                        nc.connect(
                            servers=list(options.servers),
                            name="ajc-gitops",
                            error_cb=error_cb,
                            allow_reconnect=reconnect,
                            # >0 so nats-py drops a server after 2 attempts; reconnect mode
                            # keeps trying forever once connected.
                            max_reconnect_attempts=-1 if reconnect else 1,
                            reconnect_time_wait=1 if reconnect else 0,
                            connect_timeout=max(1, int(options.timeout_s + 0.999)),
                            dont_randomize=True,
                            tls=tls,
                            tls_handshake_first=options.tls_first,
                            **kwargs,
                        ),
                        options.timeout_s,
                    )
                except (TimeoutError, nats.errors.NoServersError) as exc:
                    # The cause (refused, auth...) went to the error callback.
                    cause = errors.last() or "timed out"
                    if cause == "timed out":
                        cause = f"timed out after {options.timeout_s:g}s"
                    if _is_auth_text(cause):
                        raise nats.errors.Error(cause) from exc
                    raise ConnectError(f"{desc}: cannot connect: {cause.removeprefix('nats: ')}") from exc
            store = cls(nc, options, errors)
            await store._check_jetstream()
        except BaseException:
            await cls._close_quietly(nc)
            raise
        return store

    @staticmethod
    async def _close_quietly(nc: NATSClient) -> None:
        with contextlib.suppress(Exception):
            await nc.close()

    async def _check_jetstream(self) -> None:
        """Fail at open, not at the first write, when JetStream is off for this account."""
        try:
            await self._api_request("INFO", None, what="JetStream account info")
        except ConnectError:
            raise
        except StoreError as exc:
            if isinstance(exc.__cause__, nats.errors.NoRespondersError):
                raise ConnectError(
                    f"{self.server}: JetStream is not enabled (nothing answers {self._api}.INFO)"
                ) from exc
            raise ConnectError(str(exc)) from exc

    @property
    def connected(self) -> bool:
        """True while the connection is up (it may be reconnecting with ``reconnect=True``)."""
        return not self._closed and self._nc.is_connected

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._close_quietly(self._nc)

    def _guard(self, what: str, subject: str | None = None) -> contextlib.AbstractContextManager[None]:
        if self._closed:
            raise StoreError(f"{self.server}: store is closed")
        mark = self._errors.mark()

        def denied() -> str | None:
            recent = [e for e in self._errors.since(mark) if _is_permission_text(e)]
            return _permission_text(recent[-1], subject) if recent else None

        return map_nats_errors(self.server, what, permission_error=denied)

    # -- raw requests -------------------------------------------------------------------

    async def _api_request(self, subject: str, body: Mapping[str, Any] | None, *, what: str) -> dict[str, Any]:
        payload = json.dumps(body).encode() if body is not None else b""
        api_subject = f"{self._api}.{subject}"
        with self._guard(what, api_subject):
            msg = await self._nc.request(api_subject, payload, timeout=self._timeout)
            return _decode_reply(msg)

    async def _kv_publish(self, bucket: str, key: str, value: bytes, headers: dict[str, str], what: str) -> int:
        _check_key(key)
        subject = f"$KV.{bucket}.{key}"
        with self._guard(f"{what} {key}", subject):
            msg = await self._nc.request(subject, value, timeout=self._timeout, headers=headers)
            reply = _decode_reply(msg)
        seq = reply.get("seq")
        if not isinstance(seq, int):
            raise StoreError(f"{self.server}: {what} {key}: reply has no sequence")
        return seq

    # -- buckets ------------------------------------------------------------------------

    @staticmethod
    def bucket_config(bucket: str, *, replicas: int = 1, memory: bool = False) -> dict[str, Any]:
        """The stream config nats.go's ``CreateKeyValue`` sends for asyncjobs (contract §1)."""
        description, ttl_ns = _BUCKETS[bucket]
        dup = min(ttl_ns, _DEFAULT_DUPLICATE_WINDOW_NS) if ttl_ns else _DEFAULT_DUPLICATE_WINDOW_NS
        return {
            "name": f"KV_{bucket}",
            "description": description,
            "subjects": [f"$KV.{bucket}.>"],
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

    async def _stream_exists(self, stream: str) -> bool:
        try:
            await self._api_request(f"STREAM.INFO.{stream}", None, what=f"stream {stream}")
        except StoreError as exc:
            if _is_not_found(exc):
                return False
            raise
        return True

    async def buckets_exist(self) -> bool:
        return all([await self._stream_exists(f"KV_{b}") for b in _BUCKETS])

    async def ensure_buckets(self, *, replicas: int = 1, memory: bool = False) -> list[str]:
        """Create the missing asyncjobs buckets; existing ones are never altered (contract §1)."""
        created = []
        for bucket in _BUCKETS:
            stream = f"KV_{bucket}"
            if await self._stream_exists(stream):
                continue
            config = self.bucket_config(bucket, replicas=replicas, memory=memory)
            try:
                await self._api_request(f"STREAM.CREATE.{stream}", config, what=f"create bucket {bucket}")
            except StoreError as exc:
                cause = exc.__cause__
                # Someone else created it in between: theirs stays as it is.
                if isinstance(cause, nats.js.errors.APIError) and (cause.err_code == _ERR_STREAM_NAME_IN_USE):
                    continue
                raise
            created.append(bucket)
        return created

    async def stream_info_summary(self, bucket: str = CONFIG_BUCKET) -> StreamSummary:
        stream = f"KV_{bucket}"
        info = await self._api_request(f"STREAM.INFO.{stream}", None, what=f"stream {stream}")
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

    # -- reading ------------------------------------------------------------------------

    async def _subject_counts(self, stream: str, subject_filter: str) -> dict[str, int]:
        """Per-subject message counts under a filter, following the server's paging."""
        subjects: dict[str, int] = {}
        while True:
            body = {"subjects_filter": subject_filter, "offset": len(subjects)}
            try:
                info = await self._api_request(f"STREAM.INFO.{stream}", body, what="stream state")
            except StoreError as exc:
                if _is_not_found(exc):
                    raise StoreError(f"{self.server}: bucket {stream.removeprefix('KV_')} does not exist") from exc
                raise
            page = (info.get("state") or {}).get("subjects") or {}
            before = len(subjects)
            subjects.update(page)
            total = int(info.get("total", 0) or 0)  # only present when the server pages
            if len(subjects) == before or len(subjects) >= total:
                return subjects

    async def snapshot(self, prefix: str = SCHEDULE_PREFIX, *, bucket: str = CONFIG_BUCKET) -> Snapshot:
        """Last entry of every key under ``prefix``, complete or a ``StoreError``.

        nats-py's KV watcher reports "initial values done" too early (nats.py #842), so we
        read with an ordered consumer (last per subject) until num_pending is 0 and check
        the keys received against the stream's per-subject state; a mismatch (a concurrent
        purge) is retried.
        """
        if prefix and not prefix.endswith("."):
            raise ValueError(f"snapshot prefix must end with '.', got {prefix!r}")
        stream = f"KV_{bucket}"
        subject_filter = f"$KV.{bucket}.{prefix}>"
        for _ in range(_SNAPSHOT_ATTEMPTS):
            expected = await self._subject_counts(stream, subject_filter)
            entries = await self._read_last_per_subject(stream, bucket, subject_filter, expected)
            got = {f"$KV.{bucket}.{e.key}" for e in entries}
            if got >= expected.keys():
                return Snapshot.build(prefix, entries)
        raise StoreError(
            f"{self.server}: snapshot of {bucket} {prefix}* incomplete after "
            f"{_SNAPSHOT_ATTEMPTS} attempts (keys changing too fast?)"
        )

    async def _read_last_per_subject(
        self, stream: str, bucket: str, subject_filter: str, expected: Mapping[str, int]
    ) -> list[Entry]:
        if not expected:
            return []
        strip = len(f"$KV.{bucket}.")
        latest: dict[str, Entry] = {}
        done = asyncio.Event()

        async def on_msg(msg: Msg) -> None:
            meta = msg.metadata
            op = (msg.headers or {}).get(_KV_OPERATION, "PUT")
            operation: Operation = "DEL" if op == "DEL" else "PURGE" if op == "PURGE" else "PUT"
            key = msg.subject[strip:]
            rev = meta.sequence.stream
            prev = latest.get(key)
            if prev is None or prev.revision < rev:
                value = msg.data if operation == "PUT" else None
                latest[key] = Entry(key, value, rev, operation)
            if meta.num_pending == 0:
                done.set()

        with self._guard("snapshot"):
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
                        await asyncio.wait_for(done.wait(), self._timeout)
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
        return list(latest.values())

    # -- writing ------------------------------------------------------------------------

    async def create(
        self, key: str, value: bytes, *, tombstone_revision: int | None, bucket: str = CONFIG_BUCKET
    ) -> int:
        """KV Create: succeeds only if the key is absent (or still at its tombstone revision)."""
        expected = str(tombstone_revision or 0)
        return await self._kv_publish(bucket, key, value, {_EXPECTED_LAST_SUBJECT_SEQ: expected}, "create")

    async def delete(self, key: str, *, revision: int, bucket: str = CONFIG_BUCKET) -> int:
        """Revision-guarded delete; returns the tombstone's revision (for a later Create)."""
        headers = {_KV_OPERATION: "DEL", _EXPECTED_LAST_SUBJECT_SEQ: str(revision)}
        return await self._kv_publish(bucket, key, b"", headers, "delete")

    async def purge(self, key: str, *, revision: int | None = None, bucket: str = CONFIG_BUCKET) -> int:
        headers = {_KV_OPERATION: "PURGE", "Nats-Rollup": "sub"}
        if revision is not None:
            headers[_EXPECTED_LAST_SUBJECT_SEQ] = str(revision)
        return await self._kv_publish(bucket, key, b"", headers, "purge")

    async def put_raw(self, key: str, value: bytes, *, bucket: str = CONFIG_BUCKET) -> int:
        """Unconditional Put. Tests and benchmarks only: contract §0.3 forbids it for schedules."""
        return await self._kv_publish(bucket, key, value, {}, "put")

    async def write_many(
        self,
        ops: Sequence[WriteOp],
        *,
        max_in_flight: int = _DEFAULT_IN_FLIGHT,
        bucket: str = CONFIG_BUCKET,
    ) -> list[Outcome]:
        """Pipeline many writes (up to ``max_in_flight`` unanswered requests at once).

        One outcome per op, in order; never raises midway. Keys must be distinct, since
        concurrent writes to one key have no defined order (contract §3: Delete, then
        Create over the tombstone, is two batches).
        """
        keys = [op.key for op in ops]
        if len(set(keys)) != len(keys):
            raise ValueError("write_many needs distinct keys")
        limit = asyncio.Semaphore(max_in_flight)

        async def one(op: WriteOp) -> Outcome:
            async with limit:
                try:
                    if op.kind == "create":
                        rev = await self.create(op.key, op.value or b"", tombstone_revision=op.revision, bucket=bucket)
                    elif op.kind == "delete":
                        rev = await self.delete(op.key, revision=op.revision or 0, bucket=bucket)
                    else:
                        rev = await self.purge(op.key, revision=op.revision, bucket=bucket)
                except ConflictError as exc:
                    return Outcome(op.key, "conflict", None, str(exc))
                except StoreError as exc:
                    return Outcome(op.key, "error", None, str(exc))
                return Outcome(op.key, "ok", rev, None)

        return list(await asyncio.gather(*(one(op) for op in ops)))

    async def create_many(self, items: Sequence[tuple[str, bytes, int | None]], **kw: Any) -> list[Outcome]:
        """``(key, value, tombstone_revision)`` triples, see ``write_many``."""
        return await self.write_many([WriteOp.create(k, v, tombstone_revision=t) for k, v, t in items], **kw)

    async def delete_many(self, items: Sequence[tuple[str, int]], **kw: Any) -> list[Outcome]:
        """``(key, revision)`` pairs, see ``write_many``."""
        return await self.write_many([WriteOp.delete(k, revision=r) for k, r in items], **kw)

    def __repr__(self) -> str:
        return f"<Store {self.server}{' closed' if self._closed else ''}>"

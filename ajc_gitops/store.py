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
import time
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
_ERR_NO_MESSAGE_FOUND = 10037

_KV_OPERATION = "KV-Operation"
_EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"
# nats.go/nats.py key rule (kv.go validKeyRe), plus no leading/trailing dot.
_VALID_KEY_RE = re.compile(r"^[-/_=.a-zA-Z0-9]+$")
_SNAPSHOT_ATTEMPTS = 3
# A read from a replica behind the leader is repeated after these pauses (doubling).
_BEHIND_FIRST_PAUSE_S = 0.05
_BEHIND_MAX_PAUSE_S = 0.5
_DEFAULT_IN_FLIGHT = 1024
# Reconnecting stores give up on a silent server after about (2 + 1) x 2 s.
_PING_INTERVAL_S = 2
_MAX_OUTSTANDING_PINGS = 2
_CLOSE_TIMEOUT_S = 1.0  # a clean close takes milliseconds; see Store._close_quietly

Operation = Literal["PUT", "DEL", "PURGE"]
_log = logging.getLogger(__name__)
_TLS_EOF_NOISE = "returning true from eof_received() has no effect when using ssl"


class _TlsEofNoise(logging.Filter):
    """nats-py upgrades to TLS with its own StreamReaderProtocol (not created for SSL), so
    asyncio warns the line above whenever a TLS server closes the connection, e.g. after a
    refused client certificate. The failure itself is reported as our one error line; this
    stray extra line on stderr is dropped, nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _TLS_EOF_NOISE


logging.getLogger("asyncio").addFilter(_TlsEofNoise())


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
    kind: Literal["create", "update", "delete", "purge"]
    key: str
    value: bytes | None = None
    revision: int | None = None  # create: the tombstone revision; update/delete/purge: the guard

    @classmethod
    def create(cls, key: str, value: bytes, *, tombstone_revision: int | None) -> WriteOp:
        return cls("create", key, value, tombstone_revision)

    @classmethod
    def update(cls, key: str, value: bytes, *, revision: int) -> WriteOp:
        """Revision-guarded Update: never for ``scheduled_tasks.*`` (contract §0.3)."""
        _check_not_schedule(key)
        return cls("update", key, value, revision)

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


def _headers(op: WriteOp) -> dict[str, str]:
    """The KV headers nats.go sends for each operation (contract §3 table)."""
    if op.kind in ("create", "update"):
        return {_EXPECTED_LAST_SUBJECT_SEQ: str(op.revision or 0)}
    if op.kind == "delete":
        return {_KV_OPERATION: "DEL", _EXPECTED_LAST_SUBJECT_SEQ: str(op.revision or 0)}
    headers = {_KV_OPERATION: "PURGE", "Nats-Rollup": "sub"}
    if op.revision is not None:
        headers[_EXPECTED_LAST_SUBJECT_SEQ] = str(op.revision)
    return headers


def _check_not_schedule(key: str) -> None:
    # Contract §0.3/§3: an Update of a live schedule is still a Put to a Go scheduler, which
    # then fires the old and the new definition. Schedules change by Delete, then Create.
    if key.startswith(SCHEDULE_PREFIX):
        raise ValueError(f"KV Update of {key} refused: schedules change by Delete then Create (contract §3)")


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
        if reconnect:
            # A server that stops answering without closing the socket (SIGSTOP, a network
            # partition) is only noticed by unanswered PINGs: nats-py's default of one every
            # 2 minutes would keep a scheduler on a dead node that long, past any election
            # TTL, even with healthy nodes in --server (tests/process/test_scheduler_failover.py).
            kwargs.update(ping_interval=_PING_INTERVAL_S, max_outstanding_pings=_MAX_OUTSTANDING_PINGS)
        _check_files(options)
        tls = _tls_context(options)
        # Without reconnect, nats-py gives up on the first server that accepts TCP but never
        # sends INFO (a paused node, a half-open partition) instead of trying the next URL:
        # so each URL is tried on its own, with its share of the timeout
        # (tests/faults/test_cluster_faults.py).
        servers = list(options.servers)
        groups = [servers] if reconnect or len(servers) < 2 else [[url] for url in servers]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + options.timeout_s
        for index, group in enumerate(groups):
            last = index == len(groups) - 1
            share = max(deadline - loop.time(), 0.05) / (len(groups) - index)
            nc = NATSClient()
            try:
                with map_nats_errors(desc, "connect"):
                    try:
                        async with asyncio.timeout(share):
                            await nc.connect(
                                servers=group,
                                name="ajc-gitops",
                                error_cb=error_cb,
                                allow_reconnect=reconnect,
                                # >0 so nats-py drops a server after 2 attempts; reconnect mode
                                # keeps trying forever once connected.
                                max_reconnect_attempts=-1 if reconnect else 1,
                                reconnect_time_wait=1 if reconnect else 0,
                                # Whole seconds (nats-py's type); the timeout above bounds it to ``share``.
                                connect_timeout=max(1, int(share + 0.999)),
                                dont_randomize=True,
                                tls=tls,
                                tls_handshake_first=options.tls_first,
                                **kwargs,
                            )
                    except (TimeoutError, nats.errors.NoServersError) as exc:
                        if not last:
                            await cls._close_quietly(nc)
                            continue
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
        raise AssertionError("unreachable: the last server either connects or raises")  # pragma: no cover

    @staticmethod
    async def _close_quietly(nc: NATSClient) -> None:
        # Bounded: after a failed TLS upgrade (wrong CA) nats-py's close() waits forever on
        # the replaced plain transport (nats.py #718); the socket is already closed then.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
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

    @property
    def api_prefix(self) -> str:
        """The JetStream API prefix in use, for ``store_watch`` (with ``_raw_connection``)."""
        return self._api

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

    def _raw_connection(
        self, what: str, subject: str | None = None
    ) -> tuple[NATSClient, contextlib.AbstractContextManager[None]]:
        """The connection plus an error guard, for sibling store modules only (store_tasks.py;
        to be folded into a ``store`` package). Raises ``StoreError`` when closed."""
        return self._nc, self._guard(what, subject)

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
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        with self._guard(f"{what} {key}", subject):
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

    async def bucket_exists(self, bucket: str = CONFIG_BUCKET) -> bool:
        return await self._stream_exists(f"KV_{bucket}")

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
            info = await self._api_request(f"STREAM.INFO.{stream}", None, what=f"stream {stream}")
            cluster = info.get("cluster")
            if not isinstance(cluster, dict) or cluster.get("leader"):
                return
            if loop.time() >= deadline:
                raise StoreError(f"{self.server}: stream {stream} has no leader {self._timeout:g}s after creating it")
            await asyncio.sleep(0.05)  # a remote condition: nothing to await but the next answer

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

    async def _subject_counts(self, stream: str, subject_filter: str) -> tuple[dict[str, int], int]:
        """Per-subject message counts under a filter, following the server's paging, and the
        stream's last sequence (0 when it holds no message). In a cluster only the stream
        leader answers STREAM.INFO, so both are the leader's."""
        subjects: dict[str, int] = {}
        last_seq = 0
        while True:
            body = {"subjects_filter": subject_filter, "offset": len(subjects)}
            try:
                info = await self._api_request(f"STREAM.INFO.{stream}", body, what="stream state")
            except StoreError as exc:
                if _is_not_found(exc):
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
            await self._api_request(f"STREAM.MSG.GET.{stream}", {"seq": seq}, what="stream message")
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, nats.js.errors.APIError) and cause.err_code == _ERR_NO_MESSAGE_FOUND:
                return False
            raise
        return True

    async def _complete_read(self, stream: str, bucket: str, subject_filter: str) -> tuple[list[Entry], int]:
        """Every key under the filter, checked against the stream's per-subject state; a
        mismatch (a concurrent purge) is read again. Also returns the leader's last sequence."""
        for _ in range(_SNAPSHOT_ATTEMPTS):
            expected, last_seq = await self._subject_counts(stream, subject_filter)
            entries = await self._read_last_per_subject(stream, bucket, subject_filter, expected)
            if {f"$KV.{bucket}.{e.key}" for e in entries} >= expected.keys():
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
        entries, _ = await self._complete_read(f"KV_{bucket}", bucket, f"$KV.{bucket}.{prefix}>")
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
        stream = f"KV_{bucket}"
        deadline = time.monotonic() + self._timeout
        pause = _BEHIND_FIRST_PAUSE_S
        while True:
            entries, last_seq = await self._complete_read(stream, bucket, f"$KV.{bucket}.>")
            newest = max((e.revision for e in entries), default=0)
            if newest >= last_seq or not await self._leader_has(stream, last_seq):
                return tuple(Snapshot.build(p, [e for e in entries if e.key.startswith(p)]) for p in prefixes)
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
        return list(latest.values())

    # -- writing ------------------------------------------------------------------------

    async def create(
        self, key: str, value: bytes, *, tombstone_revision: int | None, bucket: str = CONFIG_BUCKET
    ) -> int:
        """KV Create: succeeds only if the key is absent (or still at its tombstone revision)."""
        expected = str(tombstone_revision or 0)
        return await self._kv_publish(bucket, key, value, {_EXPECTED_LAST_SUBJECT_SEQ: expected}, "create")

    async def update(self, key: str, value: bytes, *, revision: int, bucket: str = CONFIG_BUCKET) -> int:
        """KV Update: succeeds only if ``key`` is still at ``revision``. For ajc-gitops's own
        keys (the ownership markers); refused for schedules (contract §0.3)."""
        _check_not_schedule(key)
        return await self._kv_publish(bucket, key, value, {_EXPECTED_LAST_SUBJECT_SEQ: str(revision)}, "update")

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
        """Unconditional Put. Never for schedules (contract §0.3): tests, benchmarks, and keys
        with a single writer such as a scheduler's own member marker (``store_group.py``)."""
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
                    _check_not_schedule(op.key)
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
            with self._guard("write"):
                sub = await self._nc.subscribe(f"{inbox}.*", cb=on_ack)
                for i in todo:
                    await window.acquire()
                    if stalled:
                        break
                    op = ops[i]
                    open_ops[i] = op
                    await self._nc.publish(
                        f"$KV.{bucket}.{op.key}", op.value or b"", reply=f"{inbox}.{i}", headers=_headers(op)
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
        denied = [e for e in self._errors.since(mark) if _is_permission_text(e)]
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
                reason = f"{prefix}permission denied: {_permission_text(denied[-1], f'$KV.{bucket}.{op.key}')}"
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
            if err_code in _ERR_WRONG_LAST_SEQUENCE:
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

    def __repr__(self) -> str:
        return f"<Store {self.server}{' closed' if self._closed else ''}>"

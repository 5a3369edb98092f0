"""The connection half of ``Store``: connect (auth, TLS, one server at a time without
reconnect), check JetStream, close, and the error guard and JetStream API request that every
other store module goes through. Its public members below "for the asyncjobs adapters" are
the whole interface between the KV core and ``store/asyncjobs/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any, Self

import nats.errors
import nats.js.api
import nats.js.errors
from nats.aio.client import Client as NATSClient
from nats.js.client import JetStreamContext

from ajc_gitops.connect import ConnectOptions, client_servers
from ajc_gitops.errors import ConfigError, ConnectError, StoreError
from ajc_gitops.store.kv.errors import (
    ERR_JS_TEMPORARILY_UNAVAILABLE,
    ErrorLog,
    decode_reply,
    error_text,
    is_auth_text,
    is_permission_text,
    map_nats_errors,
    permission_text,
)

# Reconnecting stores give up on a silent server after about (2 + 1) x 2 s.
_PING_INTERVAL_S = 2
_MAX_OUTSTANDING_PINGS = 2
_CLOSE_TIMEOUT_S = 1.0  # a clean close takes milliseconds; see Store._close_quietly

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
        raise ConfigError(f"cannot load TLS files ({files}): {error_text(exc)}") from exc
    return ctx


def _temporarily_unavailable(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, nats.js.errors.APIError) and cause.err_code == ERR_JS_TEMPORARILY_UNAVAILABLE:
            return True
        cause = cause.__cause__
    return False


class Connection:
    """One NATS connection; ``Store`` adds the bucket, read and write methods."""

    def __init__(self, nc: NATSClient, options: ConnectOptions, errors: ErrorLog) -> None:
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
        errors = ErrorLog()

        async def error_cb(exc: Exception) -> None:
            _log.debug("nats: %s: %s", desc, exc)
            errors.add(error_text(exc))

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
        replaced = ("user", "password", "token", "nkeys_seed")
        client_urls, url_credentials = client_servers(
            options.servers, other_credentials=any(key in kwargs for key in replaced)
        )
        if url_credentials is not None:  # a URL's credentials win over the options, as in nats.go
            for key in replaced:
                kwargs.pop(key, None)
            kwargs.update(url_credentials)
        servers = list(client_urls)
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
                        if is_auth_text(cause):
                            raise nats.errors.Error(cause) from exc
                        raise ConnectError(f"{desc}: cannot connect: {cause.removeprefix('nats: ')}") from exc
                store = cls(nc, options, errors)
                try:
                    await store._check_jetstream()
                except ConnectError as exc:
                    # A node still recovering after a restart answers "temporarily
                    # unavailable"; the next server in the list may be ready.
                    if last or not _temporarily_unavailable(exc):
                        raise
                    await cls._close_quietly(nc)
                    continue
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
            await self.api_request("INFO", None, what="JetStream account info")
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
    def max_payload(self) -> int:
        """The largest message (headers and body) the connected server accepts, from its INFO."""
        return int(self._nc.max_payload)

    @property
    def api_prefix(self) -> str:
        """The JetStream API prefix in use (``$JS.API``, or with a domain or custom prefix)."""
        return self._api

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._close_quietly(self._nc)

    def guard(self, what: str, subject: str | None = None) -> contextlib.AbstractContextManager[None]:
        """The error guard of a call: nats-py errors become ours, naming the server and ``what``,
        and a permissions violation the server reported meanwhile is named. Raises
        ``StoreError`` when closed."""
        if self._closed:
            raise StoreError(f"{self.server}: store is closed")
        mark = self._errors.mark()

        def denied() -> str | None:
            recent = [e for e in self._errors.since(mark) if is_permission_text(e)]
            return permission_text(recent[-1], subject) if recent else None

        return map_nats_errors(self.server, what, permission_error=denied)

    # -- for the asyncjobs adapters (store/asyncjobs/) ------------------------------------

    @property
    def client(self) -> NATSClient:
        """The nats-py client, for the adapters in ``store/asyncjobs/`` only: use it inside
        ``guard()``, and never hand it, or anything nats-typed, out of the store package."""
        return self._nc

    @property
    def timeout(self) -> float:
        """The per-request timeout, in seconds."""
        return self._timeout

    def error_mark(self) -> int:
        """A mark in the log of errors the server reported asynchronously (see ``errors_since``)."""
        return self._errors.mark()

    def errors_since(self, mark: int) -> list[str]:
        """Errors the server reported since ``mark``: nats-py reports a permissions violation only
        there, and the request it refused then just times out (nats.py ``_process_err``)."""
        return self._errors.since(mark)

    # -- raw requests -------------------------------------------------------------------

    async def api_request(self, subject: str, body: Mapping[str, Any] | None, *, what: str) -> dict[str, Any]:
        payload = json.dumps(body).encode() if body is not None else b""
        api_subject = f"{self._api}.{subject}"
        with self.guard(what, api_subject):
            msg = await self._nc.request(api_subject, payload, timeout=self._timeout)
            return decode_reply(msg)

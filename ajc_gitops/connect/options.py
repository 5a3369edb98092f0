"""Connection options resolved the way the ``nats`` and ``ajc`` CLIs do it.

Precedence (natscli ``main.go`` flags with ``Envar``; jsm.go ``natscontext``):

1. explicit flags;
2. environment: ``NATS_URL`` (comma list), ``NATS_USER``, ``NATS_PASSWORD``, ``NATS_CREDS``,
   ``NATS_NKEY``, ``NATS_CERT``, ``NATS_KEY``, ``NATS_CA`` -- the variables natscli binds to
   the same flags;
3. the NATS CLI context: the name from ``--context``, else ``NATS_CONTEXT``, else the
   selection in ``$XDG_CONFIG_HOME/nats/context.txt``; its settings are in
   ``$XDG_CONFIG_HOME/nats/context/<name>.json`` (``~/.config`` without XDG_CONFIG_HOME);
4. defaults: ``nats://127.0.0.1:4222``, 5 s timeout.

Pure and synchronous: no sockets, no ``nats`` import (STYLE.md module map). Secrets never
appear in ``repr`` or ``describe()``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from ajc_gitops.connect.context import context_dir, expand_path, load_context, selected_context
from ajc_gitops.connect.urls import redact_url, split_servers
from ajc_gitops.errors import ConfigError

__all__ = ["DEFAULT_SERVER", "DEFAULT_TIMEOUT_S", "ConnectFlags", "ConnectOptions", "resolve_connect_options"]

DEFAULT_SERVER = "nats://127.0.0.1:4222"
DEFAULT_TIMEOUT_S = 5.0  # natscli --timeout default

# natscontext rejects names that would escape the context directory.

_DOMAIN_RE = re.compile(r"^[A-Za-z0-9_-]+$")
# Literal subject: dot-separated non-empty tokens, no wildcards or whitespace.
_SUBJECT_RE = re.compile(r"^[^.\s*>]+(\.[^.\s*>]+)*$")


def _safe_repr(obj: ConnectFlags | ConnectOptions) -> str:
    """Dataclass-like repr with URLs redacted and password/token fields left out."""
    parts = []
    for name in (f.name for f in fields(obj)):
        if name in ("password", "token"):
            continue
        value = getattr(obj, name)
        if name == "servers":
            value = tuple(redact_url(s) for s in value)
        elif name == "server" and value is not None:
            value = redact_url(value)
        parts.append(f"{name}={value!r}")
    return f"{type(obj).__name__}({', '.join(parts)})"


@dataclass(frozen=True, slots=True, repr=False)
class ConnectFlags:
    """What the user typed on the command line; ``None`` means "not given"."""

    server: str | None = None  # comma list, like nats --server
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    nkey: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_ca: str | None = None
    tls_first: bool | None = None
    js_domain: str | None = None
    js_api_prefix: str | None = None
    inbox_prefix: str | None = None
    timeout_s: float | None = None
    context: str | None = None

    def __repr__(self) -> str:
        return _safe_repr(self)


@dataclass(frozen=True, slots=True, repr=False)
class ConnectOptions:
    servers: tuple[str, ...] = (DEFAULT_SERVER,)
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: Path | None = None
    nkey: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    tls_first: bool = False
    js_domain: str | None = None
    js_api_prefix: str | None = None
    inbox_prefix: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    context_name: str | None = None

    def __repr__(self) -> str:
        return _safe_repr(self)

    @property
    def uses_tls(self) -> bool:
        return (
            self.tls_first
            or any(x is not None for x in (self.tls_cert, self.tls_key, self.tls_ca))
            or any(s.lower().startswith(("tls://", "wss://")) for s in self.servers)
        )

    def describe(self) -> str:
        """Redacted one-line description of where we connect, for messages."""
        text = ", ".join(redact_url(s) for s in self.servers)
        if self.context_name is not None:
            text += f" (context {self.context_name})"
        return text


def resolve_connect_options(
    flags: ConnectFlags,
    env: Mapping[str, str],
    config_home: Path | None = None,
) -> ConnectOptions:
    """Flags, then env, then the NATS context, then defaults (see module docstring).

    ``config_home`` replaces ``$XDG_CONFIG_HOME`` (tests pass a temp dir).
    """
    base = context_dir(env, config_home)
    selected = selected_context(flags.context, env, base)
    ctx = load_context(*selected, base) if selected is not None else None
    cv: Mapping[str, str | bool] = ctx.values if ctx is not None else {}

    def pick(flag: str | None, env_name: str | None, ctx_key: str) -> str | None:
        if flag:
            return flag
        if env_name is not None and env.get(env_name):
            return env[env_name]
        value = cv.get(ctx_key)
        return value if isinstance(value, str) else None

    def pick_path(flag: str | None, env_name: str, ctx_key: str) -> Path | None:
        value = pick(flag, env_name, ctx_key)
        return expand_path(value, env) if value is not None else None

    server_text = pick(flags.server, "NATS_URL", "url")
    if flags.server:
        source = "--server"
    elif env.get("NATS_URL"):
        source = "NATS_URL"
    else:
        source = f"{ctx.path if ctx is not None else 'context'} url"
    servers = split_servers(server_text, source) if server_text else ()
    if flags.server and not servers:
        raise ConfigError(f"--server {flags.server!r} names no server")

    timeout_s = DEFAULT_TIMEOUT_S if flags.timeout_s is None else flags.timeout_s
    if not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ConfigError(f"connect timeout must be a positive number of seconds, got {timeout_s}")

    tls_first = flags.tls_first
    if tls_first is None:
        ctx_tls_first = cv.get("tls_first", False)
        tls_first = ctx_tls_first if isinstance(ctx_tls_first, bool) else False

    def origin(flag: str | None, flag_name: str, ctx_key: str) -> str:
        """Where a value came from, so an error says which file or flag to fix."""
        return flag_name if flag else f"{ctx.path if ctx is not None else 'context'} {ctx_key}"

    js_domain = pick(flags.js_domain, None, "jetstream_domain")
    if js_domain is not None and not _DOMAIN_RE.fullmatch(js_domain):
        where = origin(flags.js_domain, "--js-domain", "jetstream_domain")
        raise ConfigError(f"invalid JetStream domain {js_domain!r} ({where}): use letters, digits, _ or -")
    js_api_prefix = pick(flags.js_api_prefix, None, "jetstream_api_prefix")
    inbox_prefix = pick(flags.inbox_prefix, None, "inbox_prefix")
    for label, subject, where in (
        ("JetStream API prefix", js_api_prefix, origin(flags.js_api_prefix, "--js-api-prefix", "jetstream_api_prefix")),
        ("inbox prefix", inbox_prefix, origin(flags.inbox_prefix, "--inbox-prefix", "inbox_prefix")),
    ):
        if subject is not None and not _SUBJECT_RE.fullmatch(subject):
            raise ConfigError(f"invalid {label} {subject!r} ({where}): it must be a NATS subject")

    return ConnectOptions(
        servers=servers or (DEFAULT_SERVER,),
        user=pick(flags.user, "NATS_USER", "user"),
        password=pick(flags.password, "NATS_PASSWORD", "password"),
        token=pick(flags.token, None, "token"),
        creds=pick_path(flags.creds, "NATS_CREDS", "creds"),
        nkey=pick_path(flags.nkey, "NATS_NKEY", "nkey"),
        tls_cert=pick_path(flags.tls_cert, "NATS_CERT", "cert"),
        tls_key=pick_path(flags.tls_key, "NATS_KEY", "key"),
        tls_ca=pick_path(flags.tls_ca, "NATS_CA", "ca"),
        tls_first=tls_first,
        js_domain=js_domain,
        js_api_prefix=js_api_prefix,
        inbox_prefix=inbox_prefix,
        timeout_s=timeout_s,
        context_name=ctx.name if ctx is not None else None,
    )

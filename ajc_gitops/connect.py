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

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import unquote, urlsplit

from ajc_gitops.errors import ConfigError

__all__ = [
    "DEFAULT_SERVER",
    "DEFAULT_TIMEOUT_S",
    "ConnectFlags",
    "ConnectOptions",
    "context_dir",
    "redact_url",
    "resolve_connect_options",
]

DEFAULT_SERVER = "nats://127.0.0.1:4222"
DEFAULT_TIMEOUT_S = 5.0  # natscli --timeout default

# natscontext rejects names that would escape the context directory.
_CONTEXT_NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]+$")
_ENV_VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
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


def _split_userinfo(url: str) -> tuple[str, str | None, str]:
    """(scheme with ``://``, userinfo or None, the rest). The last ``@`` ends the userinfo, so
    unescaped ``@`` or ``/`` in a password stay inside it."""
    m = _SCHEME_RE.match(url)
    scheme, rest = (url[: m.end()], url[m.end() :]) if m else ("", url)
    if "@" not in rest:
        return scheme, None, rest
    userinfo, hostpart = rest.rsplit("@", 1)
    return scheme, userinfo, hostpart


def redact_url(url: str) -> str:
    """Hide passwords and tokens: ``nats://user:***@host``, ``nats://***@host`` for a token.

    The last ``@`` ends the userinfo, so unescaped ``@`` or ``/`` in a password are hidden too.
    A comma list is redacted element by element.
    """
    if "," in url:
        return ",".join(redact_url(part) for part in url.split(","))
    scheme, userinfo, hostpart = _split_userinfo(url)
    if userinfo is None:
        return url
    if ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        return f"{scheme}{user}:***@{hostpart}"
    # A URL with a user and no password carries a token (nats.go/nats.py treat it so).
    return f"{scheme}***@{hostpart}"


def client_servers(servers: Sequence[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The server URLs as the NATS client gets them, and credentials taken out of them.

    nats.go (so natscli and Go asyncjobs) percent-decodes credentials in a URL
    (``nats://ci:p%40ss@host`` is the password ``p@ss``); nats-py sends them as written. When
    a URL's userinfo holds a ``%`` escape and every URL with userinfo holds the same one, it is
    decoded, removed from the URLs and returned as ``user``/``password`` (or ``token`` for a
    user alone, as nats.go reads it). Anything else goes through unchanged.
    """
    found: set[str] = set()
    bare = []
    for url in servers:
        scheme, userinfo, hostpart = _split_userinfo(url)
        if userinfo is not None:
            found.add(userinfo)
        bare.append(scheme + hostpart)
    if len(found) != 1 or "%" not in next(iter(found)):
        return tuple(servers), {}
    user, colon, password = next(iter(found)).partition(":")
    if colon:
        return tuple(bare), {"user": unquote(user), "password": unquote(password)}
    return tuple(bare), {"token": unquote(user)}


def context_dir(env: Mapping[str, str], config_home: Path | None = None) -> Path:
    """``$XDG_CONFIG_HOME/nats`` (natscontext ``parentDir``), default ``~/.config/nats``."""
    if config_home is None:
        xdg = env.get("XDG_CONFIG_HOME", "")
        config_home = Path(xdg) if xdg else _home(env) / ".config"
    return config_home / "nats"


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME", "")
    return Path(home) if home else Path.home()


def _expand_path(value: str, env: Mapping[str, str]) -> Path:
    """``~`` and ``$VAR``/``${VAR}`` from ``env``; unknown variables stay as written."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return env.get(name, m.group(0))

    expanded = _ENV_VAR_RE.sub(sub, value)
    if expanded == "~" or expanded.startswith("~/"):
        expanded = str(_home(env)) + expanded[1:]
    return Path(expanded)


_SCHEMES = frozenset({"nats", "tls", "ws", "wss"})


def _split_servers(value: str, source: str) -> tuple[str, ...]:
    """A comma list of server URLs, each checked so nats-py never sees a malformed one."""
    servers = []
    for raw in value.split(","):
        s = raw.strip()
        if not s:
            continue
        # nats.go and nats.py accept host:port; keep one spelling so redaction parses it.
        url = s if _SCHEME_RE.match(s) else f"nats://{s}"
        where = f"server URL {redact_url(s)!r} (from {source})"
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            # urlsplit's text can quote part of a password: in nats://u:pa/ss@host the '/' ends
            # the authority, so "pa" is read as the port. Never echo it when there is userinfo.
            hint = "not a valid URL (percent-encode '/', '?' and '#' in credentials, or use --user/--password)"
            reason = hint if "@" in s else str(exc)
            raise ConfigError(f"invalid {where}: {reason}") from exc
        if parts.scheme.lower() not in _SCHEMES:
            raise ConfigError(f"invalid {where}: scheme must be nats, tls, ws or wss")
        if not parts.hostname or port == 0:
            raise ConfigError(f"invalid {where}: it needs a host and an optional port")
        servers.append(url)
    websocket = {urlsplit(u).scheme.lower() in ("ws", "wss") for u in servers}
    if len(websocket) > 1:
        raise ConfigError(f"server list from {source} mixes websocket and nats URLs")
    return tuple(servers)


@dataclass(frozen=True, slots=True)
class _Context:
    name: str
    path: Path
    values: Mapping[str, str | bool]


_CONTEXT_STRING_FIELDS = (
    "url",
    "user",
    "password",
    "token",
    "creds",
    "nkey",
    "cert",
    "key",
    "ca",
    "jetstream_domain",
    "jetstream_api_prefix",
    "inbox_prefix",
)


def _selected_context(flags: ConnectFlags, env: Mapping[str, str], base: Path) -> tuple[str, str] | None:
    """(name, where it came from) or None when no context is chosen."""
    if flags.context:
        return flags.context, "--context"
    if env.get("NATS_CONTEXT"):
        return env["NATS_CONTEXT"], "NATS_CONTEXT"
    selection = base / "context.txt"
    try:
        name = selection.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{selection}: cannot read the selected NATS context ({_reason(exc)}); "
            "fix the file or select one with 'nats context select'"
        ) from exc
    return (name, str(selection)) if name else None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def load_context(name: str, origin: str, base: Path) -> _Context:
    """Read and check ``<base>/context/<name>.json``; every problem is a ``ConfigError``."""
    # fullmatch: with match, "$" also accepts a trailing newline ("prod\n"), which Go's regexp
    # rejects (found by tests/props/test_fuzz_inputs.py).
    if not _CONTEXT_NAME_RE.fullmatch(name) or name.startswith("."):
        raise ConfigError(
            f"invalid NATS context name {name!r} (from {origin}): use letters, digits, '_', '-', '.' or '@'"
        )
    path = base / "context" / f"{name}.json"
    hint = "create it with 'nats context add', or pick another with --context/NATS_CONTEXT"
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: NATS context {name!r} (from {origin}) does not exist; {hint}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read NATS context {name!r}: {_reason(exc)}") from exc
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(
            f"{path}: NATS context {name!r} is not valid JSON ({_short(exc)}); "
            "fix it or recreate it with 'nats context add'"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: NATS context {name!r} must be a JSON object")
    values: dict[str, str | bool] = {}
    for key in _CONTEXT_STRING_FIELDS:
        value = data.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise ConfigError(f"{path}: field {key!r} must be a string")
        if "\x00" in value:
            raise ConfigError(f"{path}: field {key!r} contains a NUL character")
        values[key] = value
    tls_first = data.get("tls_first")
    if tls_first is not None:
        if not isinstance(tls_first, bool):
            raise ConfigError(f"{path}: field 'tls_first' must be true or false")
        values["tls_first"] = tls_first
    return _Context(name, path, values)


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def resolve_connect_options(
    flags: ConnectFlags,
    env: Mapping[str, str],
    config_home: Path | None = None,
) -> ConnectOptions:
    """Flags, then env, then the NATS context, then defaults (see module docstring).

    ``config_home`` replaces ``$XDG_CONFIG_HOME`` (tests pass a temp dir).
    """
    base = context_dir(env, config_home)
    selected = _selected_context(flags, env, base)
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
        return _expand_path(value, env) if value is not None else None

    server_text = pick(flags.server, "NATS_URL", "url")
    if flags.server:
        source = "--server"
    elif env.get("NATS_URL"):
        source = "NATS_URL"
    else:
        source = f"{ctx.path if ctx is not None else 'context'} url"
    servers = _split_servers(server_text, source) if server_text else ()
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

"""Server URLs as the ``nats`` CLI and nats.go read them: a comma list checked so nats-py never
sees a malformed one, credentials in a URL's userinfo (percent-decoded, as nats.go does), and
redaction for every message and ``repr``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

from ajc_gitops.errors import ConfigError

__all__ = ["client_servers", "redact_url", "split_servers"]


_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


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


def client_servers(
    servers: Sequence[str], *, other_credentials: bool = False
) -> tuple[tuple[str, ...], dict[str, str] | None]:
    """The server URLs as the NATS client gets them, and the credentials the URLs carry.

    nats.go (so natscli and Go asyncjobs) sends a URL's userinfo when it has one, as user and
    password, or as a token for a user alone, and then ignores the User, Password, Token and
    Nkey options (``connectProto``); it percent-decodes it (``nats://ci:p%40ss@host`` is the
    password ``p@ss``). nats-py prefers its options to the URL and sends the userinfo as
    written. So: None when no URL has userinfo (the options apply); otherwise a dict that
    replaces the options' user, password, token and nkey: the decoded userinfo, taken out of
    the URLs, when every URL with userinfo shares it, else empty (each URL keeps its own).

    ``other_credentials``: user, password, token or nkey are also set elsewhere. nats.go
    would use them for the URLs without userinfo only; one client cannot, so a list that
    mixes the two is refused rather than silently sending one server's secret to another.
    """
    found: set[str] = set()
    bare = []
    plain = 0
    for url in servers:
        scheme, userinfo, hostpart = _split_userinfo(url)
        if userinfo is None:
            plain += 1
        else:
            found.add(userinfo)
        bare.append(scheme + hostpart)
    if not found:
        return tuple(servers), None
    if plain and other_credentials:
        raise ConfigError(
            "some server URLs carry credentials and some do not, while user, password, token or "
            "nkey are also set; put the credentials in every URL or in none"
        )
    if len(found) != 1:
        return tuple(servers), {}
    user, colon, password = next(iter(found)).partition(":")
    if colon:
        return tuple(bare), {"user": unquote(user), "password": unquote(password)}
    return tuple(bare), {"token": unquote(user)}


_SCHEMES = frozenset({"nats", "tls", "ws", "wss"})


def split_servers(value: str, source: str) -> tuple[str, ...]:
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

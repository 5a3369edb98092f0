"""Context files: any bytes give ConnectOptions or a ConfigError, never anything else; redaction
never leaks a password."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hypothesis import example, given
from hypothesis import strategies as st

from ajc_gitops.connect import ConnectFlags, ConnectOptions, redact_url, resolve_connect_options
from ajc_gitops.errors import ConfigError

FIELDS = [
    "url", "user", "password", "token", "creds", "nkey", "cert", "key", "ca",
    "jetstream_domain", "jetstream_api_prefix", "inbox_prefix", "tls_first",
]  # fmt: skip

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
context_objects = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), json_values)


def resolve_bytes(raw: bytes, env: dict[str, str] | None = None) -> ConnectOptions | None:
    with tempfile.TemporaryDirectory() as tmp:
        ctx_dir = Path(tmp) / "nats" / "context"
        ctx_dir.mkdir(parents=True)
        (ctx_dir / "prop.json").write_bytes(raw)
        try:
            opts = resolve_connect_options(ConnectFlags(context="prop"), env or {}, Path(tmp))
        except ConfigError as exc:
            message = str(exc)
            assert any(where in message for where in ("prop.json", "context", "NATS_URL"))
            assert "\n" not in message.strip()
            return None
    assert opts.servers
    for server in opts.servers:
        parts = urlsplit(server)  # nats-py parses them the same way
        assert parts.scheme in ("nats", "tls", "ws", "wss") and parts.hostname
        assert parts.port is None or 0 < parts.port < 65536
    assert opts.context_name == "prop"
    return opts


@given(st.binary(max_size=300))
@example(b"")
@example(b"\xef\xbb\xbf{}")  # UTF-8 BOM
@example(b'{"url": "nats://a:b@c", "tls_first": 1}')
@example(b"[" * 5000)  # deep nesting
@example(b'{"url": "\\ud800"}')  # lone surrogate
def test_any_context_bytes_give_options_or_config_error(raw):
    resolve_bytes(raw)


@given(context_objects, st.dictionaries(st.sampled_from(["HOME", "X", "NATS_URL"]), st.text()))
@example({}, {"HOME": "", "NATS_URL": "/"})
@example({"url": "nats://h:1,ws://h:2"}, {})
def test_any_json_object_gives_options_or_config_error(obj: dict[str, Any], env: dict[str, str]) -> None:
    raw = json.dumps(obj).encode()
    opts = resolve_bytes(raw, env)
    if opts is None:
        return
    url = obj.get("url")
    if not env.get("NATS_URL") and isinstance(url, str) and url.strip(" ,"):
        assert len(opts.servers) >= 1


safe = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=12)


@given(safe, safe, safe)
def test_redacted_urls_never_contain_the_password(user, password, host):
    secret = f"PW{password}PW"
    url = f"nats://{user}:{secret}@{host}:4222"
    redacted = redact_url(url)
    assert secret not in redacted
    assert redacted == f"nats://{user}:***@{host}:4222"
    assert secret not in ConnectOptions(servers=(url,)).describe()

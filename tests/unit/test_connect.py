"""Connection options: flags, env and NATS CLI contexts, as the nats/ajc CLIs resolve them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ajc_gitops.connect import (
    DEFAULT_SERVER,
    ConnectFlags,
    ConnectOptions,
    client_servers,
    context_dir,
    redact_url,
    resolve_connect_options,
)
from ajc_gitops.errors import ConfigError


@pytest.fixture
def config_home(tmp_path: Path) -> Path:
    home = tmp_path / "xdg"
    home.mkdir()
    return home


def write_context(config_home: Path, name: str, data: Any, *, select: bool = False) -> Path:
    ctx_dir = config_home / "nats" / "context"
    ctx_dir.mkdir(parents=True, exist_ok=True)
    path = ctx_dir / f"{name}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    if select:
        (config_home / "nats" / "context.txt").write_text(name + "\n")
    return path


def resolve(config_home: Path, flags: ConnectFlags | None = None, **env: str) -> ConnectOptions:
    return resolve_connect_options(flags or ConnectFlags(), env, config_home)


def test_defaults_without_flags_env_or_context(config_home):
    opts = resolve(config_home)
    assert opts == ConnectOptions()
    assert opts.servers == (DEFAULT_SERVER,) == ("nats://127.0.0.1:4222",)
    assert opts.timeout_s == 5.0
    assert opts.context_name is None


def test_nats_url_is_a_comma_list_and_bare_hosts_get_a_scheme(config_home):
    opts = resolve(config_home, NATS_URL=" nats://a:4222, b:4223,,tls://c:4224 ")
    assert opts.servers == ("nats://a:4222", "nats://b:4223", "tls://c:4224")
    assert opts.uses_tls


def test_server_flag_beats_nats_url_and_context(config_home):
    write_context(config_home, "prod", {"url": "nats://ctx:4222"}, select=True)
    flags = ConnectFlags(server="nats://flag:4222")
    assert resolve(config_home, flags, NATS_URL="nats://env:4222").servers == ("nats://flag:4222",)
    assert resolve(config_home, NATS_URL="nats://env:4222").servers == ("nats://env:4222",)
    assert resolve(config_home).servers == ("nats://ctx:4222",)


def test_selected_context_supplies_every_field(config_home):
    write_context(
        config_home,
        "prod",
        {
            "description": "ignored",
            "url": "nats://n1:4222,nats://n2:4222",
            "user": "alice",
            "password": "pw",
            "token": "",
            "creds": "~/creds/alice.creds",
            "nkey": "$KEYS/alice.nk",
            "cert": "${CERTS}/c.pem",
            "key": "/abs/k.pem",
            "ca": "$UNSET_VAR/ca.pem",
            "jetstream_domain": "hub",
            "jetstream_api_prefix": "",
            "inbox_prefix": "_MY_INBOX",
            "tls_first": True,
            "color_scheme": "dark",
        },
        select=True,
    )
    opts = resolve(config_home, HOME="/home/alice", KEYS="/keys", CERTS="/certs")
    assert opts.context_name == "prod"
    assert opts.servers == ("nats://n1:4222", "nats://n2:4222")
    assert (opts.user, opts.password, opts.token) == ("alice", "pw", None)
    assert opts.creds == Path("/home/alice/creds/alice.creds")
    assert opts.nkey == Path("/keys/alice.nk")
    assert opts.tls_cert == Path("/certs/c.pem")
    assert opts.tls_key == Path("/abs/k.pem")
    assert opts.tls_ca == Path("$UNSET_VAR/ca.pem")  # unknown variables stay visible
    assert opts.js_domain == "hub"
    assert opts.js_api_prefix is None
    assert opts.inbox_prefix == "_MY_INBOX"
    assert opts.tls_first is True


def test_flags_override_context_fields_one_by_one(config_home):
    write_context(
        config_home,
        "prod",
        {"user": "alice", "password": "pw", "tls_first": True, "jetstream_domain": "hub"},
        select=True,
    )
    flags = ConnectFlags(user="bob", tls_first=False, timeout_s=1.5, creds="~/b.creds")
    opts = resolve(config_home, flags, HOME="/h")
    assert (opts.user, opts.password) == ("bob", "pw")
    assert opts.tls_first is False
    assert opts.js_domain == "hub"
    assert opts.timeout_s == 1.5
    assert opts.creds == Path("/h/b.creds")


def test_env_credentials_beat_the_context(config_home):
    write_context(config_home, "prod", {"user": "alice", "password": "pw"}, select=True)
    opts = resolve(config_home, NATS_USER="env-user", NATS_PASSWORD="env-pw", NATS_CA="/ca.pem")
    assert (opts.user, opts.password, opts.tls_ca) == ("env-user", "env-pw", Path("/ca.pem"))


def test_context_choice_flag_then_nats_context_then_context_txt(config_home):
    write_context(config_home, "selected", {"url": "nats://selected:1"}, select=True)
    write_context(config_home, "env", {"url": "nats://env:1"})
    write_context(config_home, "flag", {"url": "nats://flag:1"})
    assert resolve(config_home).context_name == "selected"
    assert resolve(config_home, NATS_CONTEXT="env").servers == ("nats://env:1",)
    flags = ConnectFlags(context="flag")
    assert resolve(config_home, flags, NATS_CONTEXT="env").servers == ("nats://flag:1",)


def test_xdg_config_home_and_home_from_env(tmp_path):
    assert context_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "nats"
    assert context_dir({"HOME": str(tmp_path)}) == tmp_path / ".config" / "nats"
    write_context(tmp_path, "x", {"url": "nats://xdg:1"}, select=True)
    opts = resolve_connect_options(ConnectFlags(), {"XDG_CONFIG_HOME": str(tmp_path)}, None)
    assert opts.servers == ("nats://xdg:1",)


def test_missing_named_context_says_which_file_and_what_to_do(config_home):
    with pytest.raises(ConfigError) as info:
        resolve(config_home, ConnectFlags(context="nope"))
    message = str(info.value)
    assert str(config_home / "nats" / "context" / "nope.json") in message
    assert "--context" in message and "nats context add" in message


def test_context_txt_naming_a_missing_context_is_an_error(config_home):
    (config_home / "nats").mkdir()
    (config_home / "nats" / "context.txt").write_text("gone")
    with pytest.raises(ConfigError, match=r"'gone' \(from .*context\.txt\) does not exist"):
        resolve(config_home)


def test_empty_context_txt_means_no_context(config_home):
    (config_home / "nats").mkdir()
    (config_home / "nats" / "context.txt").write_text("  \n")
    assert resolve(config_home).context_name is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"url": 4222}', "field 'url' must be a string"),
        ('{"tls_first": "yes"}', "field 'tls_first' must be true or false"),
        (b"\xff\xfe".decode("latin-1"), "is not valid JSON"),
        ('{"creds": "a\\u0000b"}', "NUL"),
    ],
    ids=["syntax", "array", "url-number", "tls-first-string", "not-utf8", "nul"],
)
def test_invalid_context_file_is_a_config_error_naming_the_file(config_home, content, message):
    path = write_context(config_home, "bad", content, select=True)
    with pytest.raises(ConfigError) as info:
        resolve(config_home)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_unreadable_context_file_is_a_config_error(config_home):
    (config_home / "nats" / "context" / "dir.json").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"dir\.json: cannot read NATS context 'dir'"):
        resolve(config_home, ConnectFlags(context="dir"))


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "sp ace"])
def test_context_names_cannot_escape_the_context_dir(config_home, name):
    if not name:
        # An empty --context means "not given", like natscli.
        assert resolve(config_home, ConnectFlags(context=name)).context_name is None
        return
    with pytest.raises(ConfigError, match="invalid NATS context name"):
        resolve(config_home, ConnectFlags(context=name))


def test_non_positive_timeout_is_rejected(config_home):
    with pytest.raises(ConfigError, match="timeout"):
        resolve(config_home, ConnectFlags(timeout_s=0))


def test_empty_server_flag_is_rejected(config_home):
    with pytest.raises(ConfigError, match="names no server"):
        resolve(config_home, ConnectFlags(server=" , "))


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("nats://user:secret@host:4222", "nats://user:***@host:4222"),
        ("nats://s3cr3t-token@host:4222", "nats://***@host:4222"),
        ("tls://u:p@ss:w/rd@host", "tls://u:***@host"),
        ("u:p@host:4222", "u:***@host:4222"),
        ("nats://a:1@h1,nats://t@h2,nats://h3", "nats://a:***@h1,nats://***@h2,nats://h3"),
        ("", ""),
    ],
)
def test_redact_url_hides_passwords_and_tokens(url, redacted):
    assert redact_url(url) == redacted


def test_describe_and_repr_never_show_secrets(config_home):
    write_context(config_home, "prod", {"url": "nats://u:pw1@h:1,nats://tok@h:2"}, select=True)
    opts = resolve(config_home, ConnectFlags(password="pw2", token="tok2"))
    assert opts.describe() == "nats://u:***@h:1, nats://***@h:2 (context prod)"
    text = repr(opts) + repr(ConnectFlags(password="pw2", token="tok2"))
    for secret in ("pw1", "pw2", "tok2", "tok@"):
        assert secret not in text


@pytest.mark.parametrize(
    ("server", "message"),
    [
        ("nats://host:99999", "out of range"),
        ("nats://host:port", "invalid"),
        ("http://host:4222", "scheme must be nats, tls, ws or wss"),
        ("nats://:4222", "needs a host"),
        ("nats://u:secret@:4222", "needs a host"),
        ("ws://a:80,nats://b:4222", "mixes websocket and nats URLs"),
    ],
)
def test_malformed_server_urls_are_config_errors_naming_the_source(config_home, server, message):
    with pytest.raises(ConfigError, match=message) as info:
        resolve(config_home, ConnectFlags(server=server))
    assert "--server" in str(info.value)
    assert "secret" not in str(info.value)


def test_malformed_context_url_names_the_context_file(config_home):
    path = write_context(config_home, "prod", {"url": "nats://h:x"}, select=True)
    with pytest.raises(ConfigError, match=str(path)):
        resolve(config_home)


def test_connect_and_embedded_never_import_nats_or_asyncio():
    # STYLE.md module map: connect is pure, embedded is sync stdlib; only store imports nats.
    code = (
        "import sys, ajc_gitops.connect, ajc_gitops.embedded; "
        "bad = {'nats', 'asyncio'} & set(sys.modules); assert not bad, bad"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (ConnectFlags(js_domain="a.b"), "invalid JetStream domain"),
        (ConnectFlags(js_api_prefix="$JS.*.API"), "invalid JetStream API prefix"),
        (ConnectFlags(inbox_prefix="_INBOX..x"), "invalid inbox prefix"),
        (ConnectFlags(inbox_prefix="my inbox"), "invalid inbox prefix"),
        (ConnectFlags(timeout_s=float("inf")), "timeout"),
        (ConnectFlags(timeout_s=float("nan")), "timeout"),
    ],
)
def test_subject_like_options_and_timeouts_are_checked(config_home, flags, message):
    with pytest.raises(ConfigError, match=message):
        resolve(config_home, flags)


def test_valid_subject_like_options_pass(config_home):
    flags = ConnectFlags(js_domain="hub-1", js_api_prefix="$JS.hub.API", inbox_prefix="_I.me")
    opts = resolve(config_home, flags)
    assert (opts.js_domain, opts.js_api_prefix, opts.inbox_prefix) == (
        "hub-1",
        "$JS.hub.API",
        "_I.me",
    )


@pytest.mark.parametrize(
    ("servers", "expected_urls", "credentials"),
    [
        # Decoded as nats.go decodes them, and handed over as options.
        (("nats://ci:p%40ss%2Fw%23rd@h:4222",), ("nats://h:4222",), {"user": "ci", "password": "p@ss/w#rd"}),
        (("nats://t%3Aok@h1", "nats://t%3Aok@h2"), ("nats://h1", "nats://h2"), {"token": "t:ok"}),
        (("nats://ci:p%25@h1", "nats://h2"), ("nats://h1", "nats://h2"), {"user": "ci", "password": "p%"}),
        (("nats://ci:plain@h",), ("nats://h",), {"user": "ci", "password": "plain"}),
        # No userinfo: the options apply (None).
        (("nats://h1", "nats://h2"), ("nats://h1", "nats://h2"), None),
        # URLs that disagree keep their own; the options are still not used (empty).
        (("nats://a:%41@h1", "nats://b:%42@h2"), ("nats://a:%41@h1", "nats://b:%42@h2"), {}),
    ],
)
def test_percent_encoded_url_credentials_are_decoded_as_go_does(servers, expected_urls, credentials):
    assert client_servers(servers) == (expected_urls, credentials)


def test_url_credentials_replace_the_options_and_a_mixed_list_is_refused():
    # nats.go: a URL with userinfo ignores User/Password/Token/Nkey (issue 9 item 9).
    assert client_servers(("nats://ci:wrong@h",), other_credentials=True) == (
        ("nats://h",),
        {"user": "ci", "password": "wrong"},
    )
    assert client_servers(("nats://h1", "nats://h2"), other_credentials=True) == (("nats://h1", "nats://h2"), None)
    with pytest.raises(ConfigError, match="put the credentials in every URL or in none"):
        client_servers(("nats://ci:pw@h1", "nats://h2"), other_credentials=True)

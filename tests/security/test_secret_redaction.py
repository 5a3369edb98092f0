"""Passwords and tokens never appear in anything the CLI prints or writes (issue 5 item 3),
whether they come from a URL, a flag, the environment or a NATS context file: stdout and stderr
of plan, apply, export and validate, on success and on every failure path (bad credentials,
unreachable server, refused permission, malformed URL or context, TLS failure), with and
without ``--debug``, plus saved plan files and exported manifests. Each secret is a distinctive
random string, so a plain substring search of the captured output is the check."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from ajc_gitops.embedded import EmbeddedServer, free_ports
from tests.security.conftest import CliResult, Material, RunCli, WriteContext

pytestmark = pytest.mark.integration

TIMEOUT = ("--timeout", "1")


def _secret(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(10)}"


def _assert_hidden(texts: Iterable[str], *hidden: str) -> None:
    for text in texts:
        for secret in hidden:
            assert secret not in text, f"secret {secret!r} leaked in:\n{text}"


def _outputs(results: Iterable[CliResult], files: Iterable[Path] = ()) -> list[str]:
    return [r.text for r in results] + [f.read_text(errors="replace") for f in files]


@dataclass(frozen=True, slots=True)
class Case:
    """Where the secret travels: ``kind`` is the server's auth, ``how`` the client's way."""

    kind: str  # "users" or "token"
    how: str  # "url", "flag", "env", "context", "context-url"

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.how}"

    def server_config(self, secret: str) -> str:
        if self.kind == "users":
            return f"authorization {{ users = [{{user: alice, password: {secret}}}] }}"
        return f"authorization {{ token: {secret} }}"

    def client(self, url: str, secret: str, write_context: WriteContext) -> tuple[list[str], dict[str, str]]:
        """(arguments, environment) that carry ``secret`` to ``url`` this case's way."""
        host = url.removeprefix("nats://")
        in_url = f"nats://alice:{secret}@{host}" if self.kind == "users" else f"nats://{secret}@{host}"
        given = {"user": "alice", "password": secret} if self.kind == "users" else {"token": secret}
        if self.how == "url":
            return ["-s", in_url], {}
        if self.how == "flag":
            flags = ["--user", "alice", "--password", secret] if self.kind == "users" else ["--token", secret]
            return ["-s", url, *flags], {}
        if self.how == "env":
            return [], {"NATS_URL": url, "NATS_USER": "alice", "NATS_PASSWORD": secret}
        if self.how == "context":
            write_context("sec", {"url": url, **given})
            return ["--context", "sec"], {}
        write_context("sec", {"url": in_url})  # context-url
        return ["--context", "sec"], {}


CASES = [
    Case("users", "url"),
    Case("users", "flag"),
    Case("users", "env"),
    Case("users", "context"),
    Case("users", "context-url"),
    Case("token", "url"),
    Case("token", "flag"),
    Case("token", "context"),
    Case("token", "context-url"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_no_secret_in_any_output_of_a_successful_run(
    case: Case,
    nats_server_factory: Callable[..., EmbeddedServer],
    run_cli: RunCli,
    write_context: WriteContext,
    manifests: Path,
    tmp_path: Path,
) -> None:
    secret = _secret(case.kind)
    server = nats_server_factory(extra_config=case.server_config(secret))
    args, env = case.client(server.url, secret, write_context)
    plan_file = tmp_path / "plan.bin"
    exported = tmp_path / "exported"
    runs = [
        run_cli("--debug", "plan", str(manifests), *args, "--out", str(plan_file), env=env),
        run_cli("--debug", "apply", str(plan_file), *args, env=env),
        run_cli("--debug", "export", *args, "--dir", str(exported), env=env),
    ]
    assert [r.code for r in runs] == [0, 0, 0], [r.text for r in runs]
    _assert_hidden(_outputs(runs, [plan_file, *exported.iterdir()]), secret)
    if case.how in ("url", "context-url"):
        # Redacted, not just absent: the plan still names the server it read.
        assert "***@127.0.0.1" in runs[0].out, runs[0].out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_no_secret_in_any_output_of_a_failed_run(
    case: Case,
    nats_server_factory: Callable[..., EmbeddedServer],
    run_cli: RunCli,
    write_context: WriteContext,
    manifests: Path,
) -> None:
    wrong, right = _secret("wrong"), _secret("right")
    server = nats_server_factory(extra_config=case.server_config(right))
    args, env = case.client(server.url, wrong, write_context)
    # Independent processes: run them side by side to keep the suite fast.
    with ThreadPoolExecutor(2) as pool:
        plan = pool.submit(run_cli, "plan", str(manifests), *args, *TIMEOUT, env=env)
        apply = pool.submit(run_cli, "--debug", "apply", str(manifests), *args, "--auto-approve", *TIMEOUT, env=env)
        runs = [plan.result(), apply.result()]
    assert all(r.code == 1 and "authorization failed" in r.error_line() for r in runs), [r.text for r in runs]
    if case.how in ("url", "context-url"):
        # Nobody listens on a fresh port: connection refused, the other failure path of
        # connect, which names the server (so the URL, and the secret in it, is at stake).
        dead_url = f"nats://127.0.0.1:{free_ports(1)[0]}"
        dead_args, dead_env = case.client(dead_url, wrong, write_context)
        dead = run_cli("--debug", "plan", str(manifests), *dead_args, *TIMEOUT, env=dead_env)
        assert dead.code == 1 and "connection refused" in dead.error_line(), dead.text
        runs.append(dead)
    _assert_hidden(_outputs(runs), wrong)


READ_ONLY = """
authorization { users = [{user: reader, password: %s, permissions: {
  publish: {allow: ["$JS.API.INFO", "$JS.API.STREAM.INFO.>", "$JS.API.CONSUMER.>", "$JS.FC.>"]}
  subscribe: {allow: ["_INBOX.>"]}
}}, {user: admin, password: %s}] }
"""


def test_no_secret_when_a_permission_is_refused(
    nats_server_factory: Callable[..., EmbeddedServer], run_cli: RunCli, manifests: Path
) -> None:
    reader, admin = _secret("reader"), _secret("admin")
    server = nats_server_factory(extra_config=READ_ONLY % (reader, admin))
    host = server.url.removeprefix("nats://")
    bootstrap = run_cli("apply", str(manifests), "-s", f"nats://admin:{admin}@{host}", "--auto-approve")
    assert bootstrap.code == 0, bootstrap.text
    (manifests / "more.yaml").write_text("schedules:\n  - {name: SEC_MORE, schedule: '@daily', task_type: t}\n")
    reader_url = f"nats://reader:{reader}@{host}"
    refused = run_cli("--debug", "apply", str(manifests), "-s", reader_url, "--auto-approve", *TIMEOUT)
    assert refused.code == 1 and "permission denied" in refused.err, refused.text
    assert f"nats://reader:***@{host}" in refused.text
    _assert_hidden(_outputs([bootstrap, refused]), reader, admin)


MALFORMED = [
    "nats://alice:{a}/{b}@127.0.0.1:4222",  # '/' ends the authority: "{a}" reads as the port
    "nats://alice:{a}?{b}@127.0.0.1:4222",
    "nats://alice:{a}#{b}@127.0.0.1:4222",
    "nats://alice:{a}:{b}@127.0.0.1:x4222",  # a bad port after a password with ':'
    "127.0.0.1:4222,nats://alice:{a}/{b}@127.0.0.1:4223",  # the second of a list
]


@pytest.mark.parametrize(
    ("template", "where"),
    [(t, "flag") for t in MALFORMED] + [(MALFORMED[0], "env"), (MALFORMED[0], "context")],
)
def test_a_malformed_url_is_reported_without_its_credentials(
    template: str, where: str, run_cli: RunCli, write_context: WriteContext, manifests: Path
) -> None:
    a, b = _secret("a"), _secret("b")
    url = template.format(a=a, b=b)
    if where == "flag":
        args, env = ["-s", url], {}
    elif where == "env":
        args, env = [], {"NATS_URL": url}
    else:
        write_context("bad", {"url": url})
        args, env = ["--context", "bad"], {}
    result = run_cli("--debug", "plan", str(manifests), *args, *TIMEOUT, env=env)
    assert result.code == 1, result.text
    assert result.error_line().startswith("error: "), result.err
    _assert_hidden([result.text], a, b)


@pytest.mark.parametrize(
    "content",
    [
        '{"url": "nats://127.0.0.1:4222", "password": "%s", ',  # truncated JSON
        '{"url": 4222, "password": "%s"}',  # a field of the wrong type
        '["%s"]',  # not an object
        '{"password": "%s", "token": 7}',
    ],
    ids=["truncated", "wrong-type", "not-an-object", "wrong-type-after-secret"],
)
def test_a_broken_context_file_is_reported_without_its_secrets(
    content: str, run_cli: RunCli, config_home: Path, manifests: Path
) -> None:
    secret = _secret("ctx")
    directory = config_home / "nats" / "context"
    directory.mkdir(parents=True)
    (directory / "broken.json").write_text(content % secret)
    for debug in ([], ["--debug"]):
        result = run_cli(*debug, "plan", str(manifests), "--context", "broken", *TIMEOUT)
        assert result.code == 1 and "broken" in result.error_line(), result.text
        _assert_hidden([result.text], secret)


def test_a_tls_failure_is_reported_without_the_password(
    material: Material, nats_server_factory: Callable[..., EmbeddedServer], run_cli: RunCli, manifests: Path
) -> None:
    secret = _secret("tls")
    config = material.pki.server_tls_block() + f"\nauthorization {{ users = [{{user: alice, password: {secret}}}] }}"
    server = nats_server_factory(extra_config=config)
    host = server.url.removeprefix("nats://")
    url = f"nats://alice:{secret}@{host}"
    result = run_cli("--debug", "plan", str(manifests), "-s", url, "--tlsca", str(material.pki.other_ca), *TIMEOUT)
    assert result.code == 1 and "certificate verify failed" in result.error_line(), result.text
    assert result.error_line().startswith(f"error: nats://alice:***@{host}: ")
    _assert_hidden([result.text], secret)


def test_validate_never_shows_connection_secrets(run_cli: RunCli, write_context: WriteContext, manifests: Path) -> None:
    # validate is offline, but runs in the same CI job as plan, with the same environment.
    secret = _secret("env")
    write_context("sec", {"url": f"nats://alice:{secret}@127.0.0.1:4222", "token": secret}, select=True)
    env = {"NATS_URL": f"nats://alice:{secret}@127.0.0.1:4222", "NATS_PASSWORD": secret, "AJC_GITOPS_DEBUG": "1"}
    (manifests / "bad.yaml").write_text("schedules:\n  - {name: 'bad name', schedule: '61 * * * *'}\n")
    runs = [
        run_cli("validate", str(manifests), env=env),
        run_cli("validate", str(manifests), "--format", "json", env=env),
        run_cli("validate", str(manifests / "schedules.yaml"), env=env),
    ]
    assert [r.code for r in runs] == [1, 1, 0], [r.text for r in runs]
    _assert_hidden(_outputs(runs), secret)

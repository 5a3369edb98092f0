"""The published schema works standalone in editors: the real yaml-language-server (installed
from tests/lsp/package-lock.json on first use) reports a bad manifest through the schema
modeline and shows field descriptions on hover."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LSP_DIR = ROOT / "tests" / "lsp"
SCHEMA_URI = (ROOT / "schemas" / "schedule.schema.json").as_uri()


@pytest.fixture(scope="module")
def server_command() -> list[str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    assert node and npm, "node and npm are needed to check the schema in yaml-language-server"
    binary = LSP_DIR / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"
    if not binary.exists():
        subprocess.run([npm, "ci", "--silent", "--no-audit", "--no-fund"], cwd=LSP_DIR, check=True, timeout=600)
    return [node, str(binary), "--stdio"]


class Client:
    def __init__(self, command: list[str]) -> None:
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.messages: Queue[dict[str, Any]] = Queue()
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            length = 0
            while (line := self.proc.stdout.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if not line:
                return
            self.messages.put(json.loads(self.proc.stdout.read(length)))

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> int:
        self.next_id += 1
        self.send({"id": self.next_id, "method": method, "params": params})
        return self.next_id

    def wait_for(self, predicate: Any, timeout: float = 60) -> dict[str, Any]:
        """The first message matching ``predicate``; the server's own requests are answered."""
        while True:
            try:
                message = self.messages.get(timeout=timeout)
            except Empty:
                raise AssertionError("yaml-language-server did not answer in time") from None
            if "method" in message and "id" in message:  # e.g. workspace/configuration
                self.send({"id": message["id"], "result": [{"validate": True, "hover": True}] * 8})
            if predicate(message):
                return message

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.kill()
        self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        self.proc.stdout.close()


@pytest.fixture
def client(server_command: list[str], tmp_path: Path) -> Iterator[Client]:
    lsp = Client(server_command)
    init = lsp.request(
        "initialize",
        {
            "processId": None,
            "rootUri": tmp_path.as_uri(),
            "capabilities": {"textDocument": {"hover": {"contentFormat": ["plaintext", "markdown"]}}},
        },
    )
    lsp.wait_for(lambda m: m.get("id") == init)
    lsp.send({"method": "initialized", "params": {}})
    settings = {"yaml": {"validate": True, "hover": True, "schemaStore": {"enable": False}}}
    lsp.send({"method": "workspace/didChangeConfiguration", "params": {"settings": settings}})
    yield lsp
    lsp.close()


def open_document(lsp: Client, path: Path, text: str) -> str:
    uri = path.as_uri()
    lsp.send(
        {
            "method": "textDocument/didOpen",
            "params": {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}},
        }
    )
    return uri


def diagnostics(lsp: Client, uri: str) -> list[dict[str, Any]]:
    message = lsp.wait_for(lambda m: m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] == uri)
    return list(message["params"]["diagnostics"])


def test_schema_errors_show_in_the_editor(client, tmp_path):
    text = (
        f"# yaml-language-server: $schema={SCHEMA_URI}\n"
        "schedules:\n  - name: a\n    shedule: '@daily'\n    max_tries: -1\n"
    )
    found = diagnostics(client, open_document(client, tmp_path / "bad.yaml", text))
    lines = {d["range"]["start"]["line"] for d in found}
    assert 3 in lines and 4 in lines, found
    assert any("shedule" in d["message"] for d in found), found


def test_valid_manifest_has_no_diagnostics_and_hover_shows_descriptions(client, tmp_path):
    text = (
        f"# yaml-language-server: $schema={SCHEMA_URI}\n"
        "schedules:\n  - name: a\n    schedule: '@daily'\n    task_type: t\n    deadline: 90s\n"
    )
    uri = open_document(client, tmp_path / "good.yaml", text)
    assert diagnostics(client, uri) == []
    on_deadline = {"textDocument": {"uri": uri}, "position": {"line": 5, "character": 6}}
    hover = client.request("textDocument/hover", on_deadline)
    reply = client.wait_for(lambda m: m.get("id") == hover)
    contents = json.dumps(reply["result"]["contents"])
    assert "Go duration" in contents

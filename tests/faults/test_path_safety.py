"""A manifest, a plan file or the store's contents cannot make ajc-gitops read or write outside
the paths it was given (README "Paths and symlinks" states the rules tested here):

* `export --dir`: a schedule name is a file name only if it is a schedule name (no `/`, no
  `.`), so `../` and absolute names are skipped with a warning; an existing symlink in the
  directory is refused, never followed; a `--dir` that is itself a symlink is followed (the
  user named it, like `cp -r x link/`).
* `validate`/`plan` on a directory never follow a symlink found in it, to a file or a
  directory: each is an error naming the link, and its target is never opened.
* a plan file names no file to open: `source` is display text; crafted names are refused
  before any write; `plan --out LINK` replaces the link itself, not its target.

"Never opened" is checked with a Python audit hook recording every ``open`` in-process.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ajc_gitops.cli.app import main
from ajc_gitops.store import Store
from tests.faults.support import manifest_text, opts, run_cli, stream_last_seq, write_manifest

pytestmark = pytest.mark.integration

SECRET = "TOP-SECRET-OUTSIDE-CONTENT"
_OPENED: list[list[str]] = []  # stacks of recorders; the hook cannot be removed once added


def _audit(event: str, args: tuple[object, ...]) -> None:
    if event == "open" and _OPENED and isinstance(args[0], str | bytes | Path):
        _OPENED[-1].append(str(args[0]))


sys.addaudithook(_audit)


@contextmanager
def opened() -> Iterator[list[str]]:
    """Every path opened (read or write) inside the block, this process only."""
    paths: list[str] = []
    _OPENED.append(paths)
    try:
        yield paths
    finally:
        _OPENED.pop()


def run_main(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory the tool must never touch, with a secret file and a manifest-looking file."""
    directory = tmp_path / "outside"
    (directory / "sub").mkdir(parents=True)
    (directory / "secret.yaml").write_text(f"schedules: []\n# {SECRET}\n{SECRET}: [\n")
    (directory / "sub" / "more.yaml").write_text(manifest_text(2, prefix="outside"))
    return directory


def _tree(root: Path) -> dict[str, bytes | str]:
    """Everything under ``root``: file bytes, or a link's target."""
    out: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[str(path)] = f"-> {path.readlink()}"
        elif path.is_file():
            out[str(path)] = path.read_bytes()
    return out


async def _put_raw(url: str, records: dict[str, bytes]) -> None:
    async with Store.open(opts(url)) as store:
        await store.ensure_buckets()
        for key, value in records.items():
            await store.put_raw(key, value)


def _record(name: str) -> bytes:
    return (
        f'{{"name":"{name}","schedule":"@daily","queue":"DEFAULT","task_type":"t","payload":null,'
        f'"max_tries":10,"created_at":"2026-07-22T08:39:24Z"}}'
    ).encode()


# -- export --dir -----------------------------------------------------------------------------


def test_export_skips_names_that_are_paths(nats_server, tmp_path, outside):
    absolute = str(outside / "abs")  # a KV key may hold '/', so this key is possible
    records = {
        "scheduled_tasks.good": _record("good"),
        f"scheduled_tasks.{absolute}": _record(absolute),
        "scheduled_tasks.a/b": _record("a/b"),
        "scheduled_tasks.dotdot": _record("../../escape"),  # JSON name differs from its key
    }
    asyncio.run(_put_raw(nats_server.url, records))
    before = _tree(tmp_path)
    out = tmp_path / "export"
    done = run_cli("export", "--dir", str(out), "-s", nats_server.url)
    assert done.code == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good.yaml"]
    skipped = [line for line in done.error_lines if "not exported" in line]
    assert len(skipped) == 3, done.stderr
    after = _tree(tmp_path)
    assert {k: v for k, v in after.items() if not k.startswith(str(out))} == before
    # Names given on the command line only filter; they never become paths either.
    asked = run_cli("export", "--dir", str(out), "-s", nats_server.url, "../escape", absolute)
    assert asked.code == 1 and "no live schedule named ../escape" in asked.error_lines[-1]
    assert _tree(tmp_path) == after


@pytest.mark.parametrize("link", ["to-file", "dangling"])
def test_export_refuses_a_symlink_in_the_directory(nats_server, tmp_path, outside, link):
    asyncio.run(_put_raw(nats_server.url, {"scheduled_tasks.good": _record("good")}))
    out = tmp_path / "export"
    out.mkdir()
    target = outside / "secret.yaml" if link == "to-file" else outside / "created-by-export.yaml"
    (out / "good.yaml").symlink_to(target)
    before = _tree(outside)
    done = run_cli("export", "--dir", str(out), "-s", nats_server.url)
    assert done.code == 1
    assert "is a symlink; refusing to follow it" in done.error_lines[-1], done.stderr
    assert _tree(outside) == before


def test_export_dir_that_is_a_symlink_is_followed(nats_server, tmp_path):
    asyncio.run(_put_raw(nats_server.url, {"scheduled_tasks.good": _record("good")}))
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    done = run_cli("export", "--dir", str(tmp_path / "link"), "-s", nats_server.url)
    assert done.code == 0, done.stderr
    assert [p.name for p in real.iterdir()] == ["good.yaml"]


# -- validate / plan on a directory with symlinks --------------------------------------------


def test_validate_never_follows_a_symlink_in_a_directory(tmp_path, outside, capsys):
    manifests = write_manifest(tmp_path / "manifests", manifest_text(3))
    (manifests / "file-link.yaml").symlink_to(outside / "secret.yaml")
    (manifests / "dir-link").symlink_to(outside / "sub")
    (manifests / "inside-link.yaml").symlink_to(manifests / "schedules.yaml")  # same rule inside
    with opened() as paths:
        code = run_main(["validate", str(manifests)])
    printed = capsys.readouterr()
    assert code == 1
    assert not [p for p in paths if str(outside) in p or "inside-link" in p], paths
    assert SECRET not in printed.out + printed.err
    errors = [line for line in printed.out.splitlines() if ": error: " in line]
    assert [line.split(":")[0] for line in errors] == [
        str(manifests / "dir-link"),
        str(manifests / "file-link.yaml"),
        str(manifests / "inside-link.yaml"),
    ], printed.out
    assert all("symlink to" in line and "not followed" in line for line in errors)
    # Named on the command line, a link is the user's choice and is read.
    assert run_main(["validate", str(outside / "sub" / "more.yaml")]) == 0


def test_plan_refuses_a_directory_with_a_symlink_and_writes_nothing(nats_server, tmp_path, outside):
    manifests = write_manifest(tmp_path / "manifests", manifest_text(3))
    (manifests / "file-link.yaml").symlink_to(outside / "secret.yaml")
    for command in (["plan"], ["apply", "--auto-approve"]):
        done = run_cli(*command, str(manifests), "-s", nats_server.url)
        assert done.code == 1
        assert "file-link.yaml: error: symlink to" in done.stdout and SECRET not in done.stdout + done.stderr
    assert stream_last_seq(nats_server, missing_ok=True) == 0  # apply wrote nothing, not even the buckets


# -- plan files ---------------------------------------------------------------------------------


def _saved_plan(url: str, tmp_path: Path) -> tuple[Path, dict[str, object]]:
    # Applied once first, so the bucket exists and a write would move its last sequence.
    base = write_manifest(tmp_path / "base", manifest_text(3, variant="base"))
    assert run_cli("apply", str(base), "-s", url, "--auto-approve").code == 0
    manifests = write_manifest(tmp_path / "manifests", manifest_text(3))
    planfile = tmp_path / "saved.plan"
    assert run_cli("plan", str(manifests), "-s", url, "--out", str(planfile)).code == 0
    return planfile, json.loads(planfile.read_text())


def test_a_plan_file_names_no_file_to_open(nats_server, tmp_path, outside, capsys):
    planfile, document = _saved_plan(nats_server.url, tmp_path)
    changes = document["changes"]
    assert isinstance(changes, list)
    for change in changes:
        change["source"] = str(outside / "secret.yaml") + ":1:1"  # display text only
    planfile.write_text(json.dumps(document))
    with opened() as paths:
        code = run_main(["apply", str(planfile), "-s", nats_server.url])
    capsys.readouterr()
    assert code == 0
    assert not [p for p in paths if str(outside) in p], paths


@pytest.mark.parametrize("name", ["../escape", "/etc/cron.d/x", "a/b", "a.b", "..", "", "x\x00y"])
def test_a_plan_file_with_a_crafted_name_is_refused_before_any_write(nats_server, tmp_path, name):
    planfile, document = _saved_plan(nats_server.url, tmp_path)
    changes = document["changes"]
    assert isinstance(changes, list)
    changes[0]["name"] = name
    planfile.write_text(json.dumps(document))
    before = stream_last_seq(nats_server)
    done = run_cli("apply", str(planfile), "-s", nats_server.url)
    assert done.code == 1
    [line] = done.error_lines
    assert line.startswith(f"error: {planfile}: changes[0].name"), line
    assert stream_last_seq(nats_server) == before


def test_plan_out_replaces_a_symlink_not_its_target(nats_server, tmp_path, outside):
    manifests = write_manifest(tmp_path / "manifests", manifest_text(3))
    link = tmp_path / "plan.out"
    link.symlink_to(outside / "secret.yaml")
    before = _tree(outside)
    done = run_cli("plan", str(manifests), "-s", nats_server.url, "--out", str(link))
    assert done.code == 0, done.stderr
    assert not link.is_symlink() and json.loads(link.read_text())["kind"] == "ajc-gitops-plan"
    assert _tree(outside) == before

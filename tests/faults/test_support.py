"""The fault suite's own instruments must be able to fail: a reading that cannot be taken is a
failed test, never a number that makes "nothing changed" true by default."""

from __future__ import annotations

import pytest

from ajc_gitops.embedded import EmbeddedServer
from tests.faults.support import manifest_text, run_cli, stream_last_seq, write_manifest

pytestmark = pytest.mark.integration


def test_stream_last_seq_moves_with_writes(nats_server: EmbeddedServer, tmp_path) -> None:
    assert stream_last_seq(nats_server, missing_ok=True) == 0  # no bucket yet
    paths = write_manifest(tmp_path / "m", manifest_text(3))
    assert run_cli("apply", str(paths), "-s", nats_server.url, "--auto-approve").code == 0
    assert stream_last_seq(nats_server) >= 6  # 3 markers and 3 records at least


def test_stream_last_seq_fails_when_the_stream_is_absent(nats_server: EmbeddedServer) -> None:
    with pytest.raises(pytest.fail.Exception, match="is not on"):
        stream_last_seq(nats_server)


def test_stream_last_seq_fails_when_the_server_cannot_be_reached(nats_server: EmbeddedServer, tmp_path) -> None:
    paths = write_manifest(tmp_path / "m", manifest_text(1))
    assert run_cli("apply", str(paths), "-s", nats_server.url, "--auto-approve").code == 0
    before = stream_last_seq(nats_server)
    nats_server.kill()
    # Unreachable is not "nothing was written": comparing it with ``before`` must not pass.
    with pytest.raises(pytest.fail.Exception, match="cannot read"):
        assert stream_last_seq(nats_server) == before

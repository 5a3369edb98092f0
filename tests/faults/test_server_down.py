"""The server is down, dead or hung: `plan` (and `apply`) fail within `--timeout` with one line
naming the server, exit 1, never a traceback or a hang.

"refused": nothing listens on the port. "killed": a server that ran is gone (SIGKILL).
"paused": SIGSTOP, so the kernel still accepts the TCP connection but nothing ever answers,
the case a naive client waits on forever.
"""

from __future__ import annotations

import pytest

from ajc_gitops.embedded import free_ports
from tests.faults.support import assert_clean_failure, manifest_text, run_cli, write_manifest

pytestmark = pytest.mark.integration

TIMEOUT_S = 2.0
START_S = 5.0  # interpreter start and imports, generously


@pytest.mark.parametrize("state", ["refused", "killed", "paused"])
def test_plan_and_apply_fail_within_the_timeout_naming_the_server(nats_server, tmp_path, state):
    paths = write_manifest(tmp_path / "m", manifest_text(10))
    url = nats_server.url
    if state == "refused":
        url = f"nats://127.0.0.1:{free_ports(1)[0]}"
    elif state == "killed":
        nats_server.kill()
    else:
        nats_server.pause()
    try:
        for command in (["plan", str(paths)], ["apply", str(paths), "--auto-approve"]):
            done = run_cli(*command, "-s", url, "--timeout", str(TIMEOUT_S))
            assert done.seconds < TIMEOUT_S + START_S, f"{command[0]} took {done.seconds:.1f}s"
            line = assert_clean_failure(done, naming=url)
            assert "cannot connect" in line, line
            print(f"  {state} {command[0]}: {done.seconds:.1f}s: {line}")
    finally:
        if state == "paused":
            nats_server.resume()

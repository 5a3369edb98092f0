"""One node of a 3-node JetStream cluster (buckets created by `apply --replicas 3`) stopped, or
paused with SIGSTOP to mimic a partition (it keeps its sockets but answers nothing), while
`plan` and `apply` run as real processes.

The victim is the stream leader of the configuration bucket (the hardest case: a new leader has
to be elected) or a follower, and its URL is put first in `--server` (the client meets it first).
Proven: each command succeeds (quorum holds) or exits 1 with one error line naming the servers,
within twice `--timeout` (one share to connect past the dead node, one for a request the dead
leader never answers) plus interpreter start; after the node is back, apply then plan converge
to "No changes" with exactly the manifest's schedules.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from ajc_gitops.embedded import EmbeddedCluster, EmbeddedServer
from ajc_gitops.names import CONFIG_BUCKET
from ajc_gitops.store import Store
from tests.faults.support import (
    Finished,
    assert_exactly,
    desired_tasks,
    manifest_text,
    opts,
    read_live,
    repeat,
    run_cli,
    stream_leader,
    write_manifest,
)

pytestmark = pytest.mark.integration

SCHEDULES = 300
TIMEOUT_S = 4.0
START_S = 5.0  # interpreter start and imports, generously
CONVERGE_S = 60.0


async def _replicas(url: str) -> int:
    async with Store.open(opts(url)) as store:
        return int((await store.stream_info_summary()).config["num_replicas"])


def _judge(done: Finished, urls: list[str], ok_codes: tuple[int, ...]) -> str:
    assert done.seconds < 2 * TIMEOUT_S + START_S, f"took {done.seconds:.1f}s"
    if done.code in ok_codes:
        return "ok"
    assert done.code == 1, (done.code, done.stderr)
    # One error line; only warnings may precede it.
    *warnings, line = done.error_lines
    assert all(w.startswith("warning: ") for w in warnings), done.stderr
    assert line.startswith("error: ") and (any(url in line for url in urls) or "apply incomplete" in line), line
    return "failed cleanly" + (" after a warning" if warnings else "")


def _round(
    cluster: EmbeddedCluster, tmp_path: Path, i: int, fault: str, victim_role: str, outcomes: Counter[str]
) -> None:
    leader = stream_leader(cluster.servers, f"KV_{CONFIG_BUCKET}")
    assert leader is not None
    victim: EmbeddedServer = next(s for s in cluster.servers if (s is leader) == (victim_role == "leader"))
    others = [s.url for s in cluster.servers if s is not victim]
    urls = ",".join([victim.url, *others])  # the dead node first: the client must get past it
    paths = write_manifest(tmp_path / f"m{i}", manifest_text(SCHEDULES, variant="v" * (i + 2)))
    if fault == "stop":
        victim.stop()
    else:
        victim.pause()
    try:
        planned = run_cli("plan", str(paths), "-s", urls, "--timeout", str(TIMEOUT_S), "--detailed-exitcode")
        outcomes[f"plan: {_judge(planned, [victim.url, *others], (2,))}"] += 1
        applied = run_cli("apply", str(paths), "-s", urls, "--auto-approve", "--timeout", str(TIMEOUT_S))
        outcomes[f"apply: {_judge(applied, [victim.url, *others], (0,))}"] += 1
        print(
            f"  {fault} {victim_role} {victim.server_name}: plan exit {planned.code} in {planned.seconds:.1f}s, "
            f"apply exit {applied.code} in {applied.seconds:.1f}s {(applied.error_lines or [''])[-1][:120]}"
        )
    finally:
        if fault == "stop":
            victim.start(30)
        else:
            victim.resume()
            victim.wait_ready(30)
    # Converges once the node is back. The cluster may still be moving leaders, so apply then
    # plan are retried within a bound, each run itself bounded by --timeout. A node that just
    # restarted may still be catching up; reads are checked against the stream leader
    # (Store.snapshots), so neither plan nor the test's own read may see an old state.
    deadline = time.monotonic() + CONVERGE_S
    attempts = 0
    while True:
        attempts += 1
        rerun = run_cli("apply", str(paths), "-s", cluster.urls, "--auto-approve", "--timeout", str(TIMEOUT_S))
        if rerun.code != 0:
            outcomes[f"rerun {_judge(rerun, cluster.urls.split(','), (0,))}: {rerun.error_lines[-1][:90]}"] += 1
        else:
            final = run_cli("plan", str(paths), "-s", cluster.urls, "--detailed-exitcode")
            if final.code == 0 and "No changes." in final.stdout:
                assert "warning: drift" not in final.stderr, final.stderr
                assert_exactly(asyncio.run(read_live(cluster.urls)), desired_tasks(paths))
                break
            else:
                outcomes[f"plan after rerun: exit {final.code}, {final.error_lines[:1]}"] += 1
        assert time.monotonic() < deadline, f"no convergence within {CONVERGE_S}s: {rerun.stderr}"
    outcomes[f"converged after {attempts} apply+plan"] += 1


def _scenario(cluster: EmbeddedCluster, tmp_path: Path, fault: str, roles: list[str]) -> None:
    base = write_manifest(tmp_path / "base", manifest_text(SCHEDULES, variant="base"))
    created = run_cli("apply", str(base), "-s", cluster.urls, "--auto-approve", "--replicas", "3")
    assert created.code == 0, created.stderr
    assert asyncio.run(_replicas(cluster.urls)) == 3
    outcomes: Counter[str] = Counter()
    for i, role in enumerate(roles):
        _round(cluster, tmp_path, i, fault, role, outcomes)
    print(f"cluster {fault}: {len(roles)} rounds ({dict(Counter(roles))}), {dict(outcomes)}")


@pytest.mark.parametrize("fault", ["stop", "pause"])
def test_cluster_leader_down_under_plan_and_apply(nats_cluster, tmp_path, fault):
    _scenario(nats_cluster, tmp_path, fault, ["leader"])


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("fault", ["stop", "pause"])
def test_cluster_node_down_repeatedly(nats_cluster, tmp_path, fault):
    _scenario(nats_cluster, tmp_path, fault, ["leader", "follower"] * repeat(5))

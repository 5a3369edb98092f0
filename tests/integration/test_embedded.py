"""The embedded nats-server wrapper: readiness, JetStream usable, restart, stop by PID."""

from __future__ import annotations

import json
import os
import socket
import urllib.request

import pytest

from ajc_gitops.connect import ConnectOptions
from ajc_gitops.embedded import EmbeddedServer, find_nats_server, free_ports, start_server
from ajc_gitops.errors import AjcError, EmbeddedServerError
from ajc_gitops.state import WriteOp
from ajc_gitops.store import Store

pytestmark = pytest.mark.integration


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); Popen.wait() reaped it, so alive means running.
    return True


def _jsz(server: EmbeddedServer) -> dict[str, object]:
    with urllib.request.urlopen(server.monitor_url + "/jsz", timeout=2) as resp:
        data = json.load(resp)
    assert isinstance(data, dict)
    return data


def test_binary_comes_from_the_wheel():
    assert find_nats_server().name.startswith("nats-server")


def test_free_ports_are_distinct_loopback_ports():
    ports = free_ports(5)
    assert len(set(ports)) == 5
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_single_server_is_ready_on_loopback(nats_server):
    assert nats_server.url.startswith("nats://127.0.0.1:")
    assert nats_server.running
    assert _pid_alive(nats_server.pid)
    assert nats_server.store_dir.is_dir()
    assert "Server is ready" in nats_server.log_path.read_text()
    assert _jsz(nats_server)["config"]["store_dir"].startswith(str(nats_server.store_dir))  # type: ignore[index]


async def test_jetstream_is_usable_on_a_single_server(nats_server):
    async with Store.open(ConnectOptions(servers=(nats_server.url,))) as store:
        assert await store.ensure_buckets() == ["CHORIA_AJ_CONFIGURATION", "CHORIA_AJ_ELECTIONS"]
        rev = await store.create("scheduled_tasks.a", b"{}", tombstone_revision=None)
        assert (await store.snapshot()).live["scheduled_tasks.a"].revision == rev


async def test_cluster_is_ready_with_a_meta_leader_and_replicated_buckets(nats_cluster):
    assert len(nats_cluster.servers) == 3
    assert nats_cluster.urls.count(",") == 2
    leaders = {_jsz(s)["meta_cluster"]["leader"] for s in nats_cluster.servers}  # type: ignore[index]
    assert len(leaders) == 1 and leaders != {""}
    options = ConnectOptions(servers=tuple(nats_cluster.urls.split(",")))
    async with Store.open(options) as store:
        await store.ensure_buckets(replicas=3)
        summary = await store.stream_info_summary()
        assert summary.config["num_replicas"] == 3
        ops = [WriteOp.create(f"scheduled_tasks.k{i}", b"v", tombstone_revision=None) for i in range(50)]
        assert {o.status for o in await store.write_many(ops)} == {"ok"}
        assert len(await store.snapshot()) == 50


async def test_restart_keeps_ports_and_data(nats_server):
    url, pid = nats_server.url, nats_server.pid
    async with Store.open(ConnectOptions(servers=(url,))) as store:
        await store.ensure_buckets()
        await store.create("scheduled_tasks.keep", b"data", tombstone_revision=None)
    nats_server.restart()
    assert nats_server.url == url
    assert nats_server.pid != pid
    assert not _pid_alive(pid)
    async with Store.open(ConnectOptions(servers=(url,))) as store:
        assert await store.ensure_buckets() == []
        assert (await store.snapshot()).live["scheduled_tasks.keep"].value == b"data"


def test_stop_terminates_by_pid_and_is_idempotent(nats_server):
    pid = nats_server.pid
    assert nats_server.stop() == 0  # SIGTERM is a clean shutdown
    assert not nats_server.running
    assert not _pid_alive(pid)
    nats_server.stop()


def test_stop_of_a_paused_server_still_terminates(nats_server):
    pid = nats_server.pid
    nats_server.pause()
    nats_server.stop(grace=5)
    assert not _pid_alive(pid)


def test_kill_is_sigkill(nats_server):
    nats_server.kill()
    assert not nats_server.running
    assert nats_server._proc is not None and nats_server._proc.returncode == -9


def test_pause_and_resume(nats_server):
    nats_server.pause()
    with pytest.raises(OSError):
        urllib.request.urlopen(nats_server.monitor_url + "/healthz", timeout=0.3)
    nats_server.resume()
    nats_server.wait_ready(5)


def test_bad_extra_config_fails_with_the_log_tail(tmp_path):
    with pytest.raises(EmbeddedServerError) as info:
        start_server(work_dir=tmp_path, extra_config="this is { not valid", timeout=5)
    assert isinstance(info.value, AjcError)
    assert "exited with code" in str(info.value)
    assert str(tmp_path) in str(info.value)  # names the log file
    assert len(str(info.value).splitlines()) > 1  # and carries its tail


def test_occupied_client_port_fails_naming_the_cause_and_keeping_the_log(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(EmbeddedServerError, match="exited with code") as info:
            start_server(work_dir=tmp_path, client_port=port, timeout=5)
    assert "address already in use" in str(info.value)
    assert (tmp_path / "ajc-gitops-dev.log").is_file()


def test_server_without_jetstream(nats_server_factory):
    server = nats_server_factory(jetstream=False)
    assert server.running
    assert "JetStream" not in server.config_text()

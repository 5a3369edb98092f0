"""Store against a real nats-server: Go-identical buckets, complete snapshots, guarded writes,
and every connection failure as one clear ConnectError."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from typing import Any

import nats
import nats.errors
import nats.js.errors
import pytest

from ajc_gitops.connect import ConnectOptions
from ajc_gitops.embedded import free_ports
from ajc_gitops.errors import ConfigError, ConflictError, ConnectError, StoreError
from ajc_gitops.names import CONFIG_BUCKET, ELECTIONS_BUCKET
from ajc_gitops.state import Entry, Outcome, Snapshot, WriteOp
from ajc_gitops.store import Store, map_nats_errors

pytestmark = pytest.mark.integration

SECOND_NS = 1_000_000_000


def opts(url: str, **kw: Any) -> ConnectOptions:
    kw.setdefault("timeout_s", 2.0)
    return ConnectOptions(servers=(url,), **kw)


# -- buckets --------------------------------------------------------------------------------

# Contract §1 plus the nats.go jetstream KV stream defaults.
GO_COMMON = {
    "retention": "limits",
    "max_consumers": -1,
    "max_msgs": -1,
    "max_bytes": -1,
    "max_msg_size": -1,
    "max_msgs_per_subject": 1,
    "discard": "new",
    "storage": "file",
    "num_replicas": 1,
    "allow_rollup_hdrs": True,
    "deny_delete": True,
    "deny_purge": False,
    "allow_direct": True,
    "mirror_direct": False,
    "sealed": False,
    "compression": "none",
    "allow_msg_ttl": False,
}


@pytest.mark.parametrize(
    ("bucket", "description", "max_age", "duplicate_window"),
    [
        (CONFIG_BUCKET, "Choria Async Jobs Configuration", 0, 120 * SECOND_NS),
        (ELECTIONS_BUCKET, "Choria Async Jobs Leader Elections", 10 * SECOND_NS, 10 * SECOND_NS),
    ],
)
async def test_buckets_are_created_with_go_settings(nats_server, bucket, description, max_age, duplicate_window):
    async with Store.open(opts(nats_server.url)) as store:
        assert not await store.buckets_exist()
        assert await store.ensure_buckets() == [CONFIG_BUCKET, ELECTIONS_BUCKET]
        assert await store.buckets_exist()
        config = (await store.stream_info_summary(bucket)).config
    assert config["name"] == f"KV_{bucket}"
    assert config["subjects"] == [f"$KV.{bucket}.>"]
    assert config["description"] == description
    assert config["max_age"] == max_age
    assert config["duplicate_window"] == duplicate_window
    for key, value in GO_COMMON.items():
        assert config[key] == value, key


async def test_memory_and_replicas_are_chosen_at_creation(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets(memory=True)
        assert (await store.stream_info_summary()).config["storage"] == "memory"


async def test_existing_bucket_is_never_altered(nats_server):
    # Another client made the config bucket its own way (history 5, no description).
    nc = await nats.connect(nats_server.url)
    try:
        js = nc.jetstream()
        await js.create_key_value(bucket=CONFIG_BUCKET, history=5)
        before = (await js.stream_info(f"KV_{CONFIG_BUCKET}")).config
    finally:
        await nc.close()
    async with Store.open(opts(nats_server.url)) as store:
        assert await store.ensure_buckets(replicas=1, memory=True) == [ELECTIONS_BUCKET]
        after = (await store.stream_info_summary()).config
    assert after["max_msgs_per_subject"] == 5 == before.max_msgs_per_subject
    assert after["storage"] == "file"
    assert not after.get("description")


# -- snapshot -------------------------------------------------------------------------------


async def test_snapshot_of_5000_keys_is_complete_with_values_revisions_and_tombstones(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        ops = [
            WriteOp.create(f"scheduled_tasks.s{i:05d}", f"v{i}".encode(), tombstone_revision=None) for i in range(5000)
        ]
        outcomes = await store.write_many(ops)
        assert {o.status for o in outcomes} == {"ok"}
        revs = {o.key: o.revision for o in outcomes if o.revision is not None}
        deleted = await store.delete_many(
            [(f"scheduled_tasks.s{i:05d}", revs[f"scheduled_tasks.s{i:05d}"]) for i in range(10)]
        )
        await store.put_raw("other.key", b"not a schedule")
        started = time.monotonic()
        snap = await store.snapshot()
        elapsed = time.monotonic() - started
    assert isinstance(snap, Snapshot)
    assert len(snap.live) == 4990
    assert len(snap.tombstones) == 10
    assert "other.key" not in snap.live
    assert snap.live["scheduled_tasks.s04999"] == Entry(
        "scheduled_tasks.s04999", b"v4999", revs["scheduled_tasks.s04999"], "PUT"
    )
    assert snap.tombstone_revision("scheduled_tasks.s00003") == deleted[3].revision
    assert snap.tombstones["scheduled_tasks.s00003"].value is None
    assert snap.tombstones["scheduled_tasks.s00003"].operation == "DEL"
    assert elapsed < 2.0  # opts' timeout: a complete read never waits for a request to time out


async def test_snapshot_of_empty_or_missing_prefix_is_empty(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        started = time.monotonic()
        snap = await store.snapshot()
        assert time.monotonic() - started < store.timeout  # no waiting for a message that never comes
    assert len(snap) == 0 and not snap.tombstones


async def test_snapshot_during_concurrent_writes_contains_everything_written_before(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        before = [WriteOp.create(f"scheduled_tasks.b{i}", b"x", tombstone_revision=None) for i in range(2000)]
        await store.write_many(before)
        during = [WriteOp.create(f"scheduled_tasks.d{i}", b"y", tombstone_revision=None) for i in range(2000)]
        snap, outcomes = await asyncio.gather(store.snapshot(), store.write_many(during))
    assert {f"scheduled_tasks.b{i}" for i in range(2000)} <= set(snap.live)
    assert {o.status for o in outcomes} == {"ok"}


async def test_snapshots_split_one_read_of_the_bucket_by_prefix(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        await store.write_many(
            [WriteOp.create(f"scheduled_tasks.s{i}", b"r", tombstone_revision=None) for i in range(3)]
            + [WriteOp.create(f"ajc_gitops.managed.s{i}", b"m", tombstone_revision=None) for i in range(2)]
        )
        await store.put_raw("other.key", b"neither")
        records, markers = await store.snapshots(("scheduled_tasks.", "ajc_gitops.managed."))
        empty = await store.snapshots(("nothing.",))
    assert sorted(records.live) == [f"scheduled_tasks.s{i}" for i in range(3)]
    assert sorted(markers.live) == [f"ajc_gitops.managed.s{i}" for i in range(2)]
    assert [len(s) for s in empty] == [0]


async def test_snapshots_accept_a_stream_whose_last_message_was_purged(nats_server):
    # The currency check wants the leader's last sequence in the read; when that message
    # was purged from the stream (nats stream purge --subject) the leader says so and the
    # read stands.
    nc = await nats.connect(nats_server.url)
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        await store.create("scheduled_tasks.a", b"a", tombstone_revision=None)
        await store.create("scheduled_tasks.b", b"b", tombstone_revision=None)
        reply = await nc.request(
            "$JS.API.STREAM.PURGE.KV_CHORIA_AJ_CONFIGURATION",
            b'{"filter": "$KV.CHORIA_AJ_CONFIGURATION.scheduled_tasks.b"}',
            timeout=5,
        )
        assert b'"success":true' in reply.data
        started = time.monotonic()
        [records] = await store.snapshots(("scheduled_tasks.",))
        elapsed = time.monotonic() - started
    await nc.close()
    assert sorted(records.live) == ["scheduled_tasks.a"]
    assert elapsed < 2.0  # opts' timeout: answered, not retried until the timeout


async def test_purge_leaves_a_purge_tombstone(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        rev = await store.create("scheduled_tasks.p", b"1", tombstone_revision=None)
        purge_rev = await store.purge("scheduled_tasks.p", revision=rev)
        snap = await store.snapshot()
    assert snap.tombstones["scheduled_tasks.p"] == Entry("scheduled_tasks.p", None, purge_rev, "PURGE")


# -- guarded writes -------------------------------------------------------------------------


async def test_create_of_an_existing_key_is_a_conflict(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        await store.create("scheduled_tasks.a", b"1", tombstone_revision=None)
        with pytest.raises(ConflictError, match=r"scheduled_tasks\.a"):
            await store.create("scheduled_tasks.a", b"2", tombstone_revision=None)
        [outcome] = await store.create_many([("scheduled_tasks.a", b"3", None)])
    assert outcome.status == "conflict" and outcome.revision is None
    assert outcome.error and "wrong last sequence" in outcome.error


async def test_create_over_a_tombstone_needs_its_revision(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        rev = await store.create("scheduled_tasks.t", b"old", tombstone_revision=None)
        tomb = await store.delete("scheduled_tasks.t", revision=rev)
        assert tomb > rev
        with pytest.raises(ConflictError):
            await store.create("scheduled_tasks.t", b"new", tombstone_revision=None)
        new = await store.create("scheduled_tasks.t", b"new", tombstone_revision=tomb)
        snap = await store.snapshot()
    assert snap.live["scheduled_tasks.t"] == Entry("scheduled_tasks.t", b"new", new, "PUT")
    assert not snap.tombstones


async def test_delete_with_a_stale_revision_fails_and_keeps_the_key(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        rev = await store.create("scheduled_tasks.d", b"1", tombstone_revision=None)
        await store.put_raw("scheduled_tasks.d", b"2")  # someone changed it since we read it
        with pytest.raises(ConflictError):
            await store.delete("scheduled_tasks.d", revision=rev)
        [outcome] = await store.delete_many([("scheduled_tasks.d", rev)])
        snap = await store.snapshot()
    assert outcome.status == "conflict"
    assert snap.live["scheduled_tasks.d"].value == b"2"


async def test_write_many_reports_each_outcome_without_raising(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        existing = await store.create("scheduled_tasks.e", b"1", tombstone_revision=None)
        outcomes = await store.write_many(
            [
                WriteOp.create("scheduled_tasks.new", b"1", tombstone_revision=None),
                WriteOp.create("scheduled_tasks.e", b"2", tombstone_revision=None),
                WriteOp.create("scheduled_tasks.bad key", b"3", tombstone_revision=None),
                WriteOp.delete("scheduled_tasks.e2", revision=existing + 100),
            ],
            max_in_flight=2,
        )
        with pytest.raises(ValueError, match="distinct"):
            await store.write_many([WriteOp.purge("k"), WriteOp.purge("k")])
    assert [o.status for o in outcomes] == ["ok", "conflict", "error", "conflict"]
    assert outcomes[0].revision == existing + 1
    assert outcomes[2].error and "invalid KV key" in outcomes[2].error


async def test_write_to_a_missing_bucket_is_a_store_error(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        with pytest.raises(StoreError, match="bucket missing"):
            await store.create("scheduled_tasks.x", b"1", tombstone_revision=None)


async def test_closed_store_refuses_calls(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        pass
    with pytest.raises(StoreError, match="closed"):
        await store.snapshot()


# -- connection failures --------------------------------------------------------------------


async def test_unreachable_server_fails_fast_naming_the_redacted_url():
    port = free_ports(1)[0]
    url = f"nats://me:s3cret@127.0.0.1:{port}"
    started = time.monotonic()
    with pytest.raises(ConnectError) as info:
        async with Store.open(opts(url, timeout_s=5.0)):
            pass
    assert time.monotonic() - started < 5.0  # refused at once, not at the timeout
    message = str(info.value)
    assert f"nats://me:***@127.0.0.1:{port}" in message
    assert "connection refused" in message
    assert "s3cret" not in message and len(message.splitlines()) == 1


async def test_hung_server_fails_within_the_timeout(nats_server):
    timeout_s = 1.0
    nats_server.pause()
    started = time.monotonic()
    with pytest.raises(ConnectError, match="timed out"):
        async with Store.open(opts(nats_server.url, timeout_s=timeout_s)):
            pass
    # The connect is bounded by the timeout, closing the half-open socket by as much again.
    assert timeout_s <= time.monotonic() - started < 3 * timeout_s
    nats_server.resume()


AUTH_CONFIG = """
authorization {
  users = [
    {user: admin, password: adminpw}
    {user: reader, password: readerpw, permissions: {
      publish: {allow: ["$JS.API.>"]}
      subscribe: {allow: ["_INBOX.>"]}
    }}
  ]
}
"""


async def test_wrong_password_is_an_authorization_error(nats_server_factory):
    server = nats_server_factory(extra_config=AUTH_CONFIG)
    with pytest.raises(ConnectError, match="authorization") as info:
        async with Store.open(opts(server.url, user="admin", password="wrong")):
            pass
    assert "wrong" not in str(info.value)
    assert server.url in str(info.value)


async def test_user_without_publish_permission_gets_a_permission_error(nats_server_factory):
    server = nats_server_factory(extra_config=AUTH_CONFIG)
    async with Store.open(opts(server.url, user="admin", password="adminpw")) as store:
        await store.ensure_buckets()
    async with Store.open(opts(server.url, user="reader", password="readerpw", timeout_s=0.5)) as store:
        assert len(await store.snapshot()) == 0  # reading is allowed
        with pytest.raises(ConnectError) as info:
            await store.create("scheduled_tasks.x", b"1", tombstone_revision=None)
        [outcome] = await store.create_many([("scheduled_tasks.y", b"1", None)])
    assert "permission denied: not allowed to publish to $KV.CHORIA_AJ_CONFIGURATION.scheduled_tasks.x" in str(
        info.value
    )
    assert outcome.status == "error" and outcome.error and "permission denied" in outcome.error


async def test_server_without_jetstream_is_a_connect_error(nats_server_factory):
    server = nats_server_factory(jetstream=False)
    with pytest.raises(ConnectError, match="JetStream is not enabled"):
        async with Store.open(opts(server.url)):
            pass


async def test_account_without_jetstream_is_a_connect_error(nats_server_factory):
    server = nats_server_factory(
        extra_config="accounts { A: { jetstream: enabled, users: [{user: a, password: a}] }, "
        "B: { users: [{user: b, password: b}] } }"
    )
    with pytest.raises(ConnectError, match="JetStream is not enabled"):
        async with Store.open(opts(server.url, user="b", password="b")):
            pass
    async with Store.open(opts(server.url, user="a", password="a")) as store:
        assert await store.ensure_buckets()


async def test_second_server_in_the_list_is_used_when_the_first_is_down(nats_server):
    down = f"nats://127.0.0.1:{free_ports(1)[0]}"
    async with Store.open(ConnectOptions(servers=(down, nats_server.url), timeout_s=2)) as store:
        assert await store.ensure_buckets()


async def test_a_server_whose_jetstream_is_still_recovering_is_passed_over(nats_server, nats_server_factory):
    # A cluster node just back from a restart answers the JetStream API with 503/10008 until
    # it has found the meta leader. Played here by a server without JetStream whose $JS.API.INFO
    # is answered that way by a plain client; the next server in the list is then used.
    recovering = nats_server_factory(jetstream=False)
    responder = await nats.connect(recovering.url)
    unavailable = json.dumps(
        {"error": {"code": 503, "err_code": 10008, "description": "JetStream system temporarily unavailable"}}
    ).encode()

    async def answer(msg: Any) -> None:
        await msg.respond(unavailable)

    await responder.subscribe("$JS.API.INFO", cb=answer)
    await responder.flush()
    try:
        async with Store.open(ConnectOptions(servers=(recovering.url, nats_server.url), timeout_s=2)) as store:
            assert store.connected and await store.ensure_buckets()
        with pytest.raises(ConnectError, match="temporarily unavailable"):
            async with Store.open(ConnectOptions(servers=(recovering.url,), timeout_s=2)):
                pass
    finally:
        await responder.close()


async def test_percent_encoded_credentials_in_a_url_log_in(nats_server_factory):
    # What natscli accepts for a password with URL characters in it: nats://ci:p%40ss%2F...@host
    password = "p@ss/w#rd?x:%"
    server = nats_server_factory(
        extra_config=f"authorization {{ users = [{{user: ci, password: {json.dumps(password)}}}] }}"
    )
    host = server.url.removeprefix("nats://")
    url = f"nats://ci:{urllib.parse.quote(password, safe='')}@{host}"
    async with Store.open(opts(url)) as store:
        assert await store.ensure_buckets()
    with pytest.raises(ConnectError, match="authorization") as info:
        async with Store.open(opts(f"nats://ci:{urllib.parse.quote('wrong%', safe='')}@{host}")):
            pass
    assert "wrong" not in str(info.value) and "ci:***@" in str(info.value)


# -- error mapping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "expected", "text"),
    [
        (
            nats.js.errors.APIError(code=400, err_code=10071, description="wrong last sequence: 3"),
            ConflictError,
            "wrong last sequence: 3",
        ),
        (
            nats.js.errors.KeyWrongLastSequenceError("wrong last sequence: 1"),
            ConflictError,
            "revision changed",
        ),
        (
            nats.js.errors.APIError(code=503, err_code=10039, description="JetStream not enabled for account"),
            ConnectError,
            "JetStream is not enabled",
        ),
        (nats.js.errors.APIError(code=500, err_code=10049, description="boom"), StoreError, "boom"),
        (nats.errors.NoRespondersError(), StoreError, "no JetStream"),
        (nats.errors.TimeoutError(), StoreError, "timed out"),
        (nats.errors.ConnectionClosedError(), ConnectError, "connection lost"),
        (nats.errors.AuthorizationError(), ConnectError, "authorization failed"),
        (
            nats.errors.Error("nats: 'Authorization Violation'"),
            ConnectError,
            "authorization failed (Authorization Violation)",
        ),
        (
            nats.errors.Error('nats: permissions violation for publish to "x.y"'),
            ConnectError,
            "not allowed to publish to x.y",
        ),
        (nats.errors.NoServersError(), StoreError, "no servers"),
        (
            ConnectionRefusedError(111, "Connection refused"),
            ConnectError,
            "cannot connect: Connection refused",
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_map_nats_errors_picks_the_most_specific_error(exc, expected, text):
    with pytest.raises(expected) as info, map_nats_errors("nats://h:4222", "op"):
        raise exc
    assert type(info.value) is expected
    assert str(info.value).startswith("nats://h:4222: op: ")
    assert text in str(info.value)
    assert info.value.__cause__ is exc


def test_outcome_and_entry_are_frozen():
    with pytest.raises(AttributeError):
        Outcome("k", "ok", 1).status = "error"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        Entry("k", b"", 1, "PUT").revision = 2  # type: ignore[misc]


async def test_snapshot_of_a_missing_bucket_says_so(nats_server):
    async with Store.open(opts(nats_server.url)) as store:
        with pytest.raises(StoreError, match="bucket CHORIA_AJ_CONFIGURATION does not exist"):
            await store.snapshot()
        with pytest.raises(ValueError, match="must end with"):
            await store.snapshot("scheduled_tasks")


@pytest.mark.parametrize(
    ("field", "label"),
    [("creds", "creds"), ("nkey", "nkey"), ("tls_ca", "TLS CA"), ("tls_cert", "TLS certificate")],
)
async def test_missing_credential_or_tls_file_is_a_config_error(nats_server, tmp_path, field, label):
    missing = tmp_path / "nope.file"
    with pytest.raises(ConfigError, match=f"{label} file {missing} does not exist"):
        async with Store.open(opts(nats_server.url, **{field: missing})):
            pass


async def test_unreadable_tls_ca_is_a_config_error(nats_server, tmp_path):
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match="cannot load TLS files"):
        async with Store.open(opts(nats_server.url, tls_ca=bad)):
            pass


async def test_reconnecting_store_survives_a_server_restart(nats_server, async_wait_until):
    async with Store.open(opts(nats_server.url), reconnect=True) as store:
        await store.ensure_buckets()
        await store.create("scheduled_tasks.r", b"1", tombstone_revision=None)
        nats_server.restart()

        async def snapshot_works() -> bool:
            try:
                return len(await store.snapshot()) == 1
            except StoreError:
                return False

        assert await async_wait_until(snapshot_works, timeout=15)
        assert store.connected


async def test_non_reconnecting_store_reports_a_lost_connection(nats_server, async_wait_until):
    async with Store.open(opts(nats_server.url)) as store:
        await store.ensure_buckets()
        nats_server.stop()
        await async_wait_until(lambda: not store.connected, timeout=5)
        with pytest.raises(ConnectError, match="connection lost"):
            await store.snapshot()

"""A new leader that cannot read the member markers at its term start still catches up the
slots missed since the previous leader stopped (issue 9 item 6, the missing slots).

The fault is real and server-side: the configuration bucket is created with a consumer limit,
and once the member is up the test takes every free consumer slot, so the marker read at the
term start (an ordered consumer) is refused by the server, as a read during a node fault is
refused or times out. The previous leader is an ajc-gitops member (it has a marker) that
holds the election key and then stops refreshing it, firing nothing meanwhile: the slots
from then until the new term are inside the catch-up window and must get their tasks. Before
the fix the term's floor was "now" and those slots never got a task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import nats
import pytest

from ajc_gitops.model import MemberRecord
from ajc_gitops.names import CONFIG_BUCKET, ELECTION_KEY, ELECTIONS_BUCKET
from ajc_gitops.store import Store, write_member
from tests.integration.test_scheduler import leading, scheduler
from tests.scheduler_support import SHORT_TTL, assert_exactly_once, options, prepare, put_schedule, read_tasks, record

pytestmark = pytest.mark.integration
NS = 1_000_000_000
CONSUMER_LIMIT = 8


async def take_free_consumers(js: Any, taken: int) -> int:
    """Durable consumers on the configuration bucket until the server refuses one."""
    while True:
        try:
            await js.add_consumer(f"KV_{CONFIG_BUCKET}", durable_name=f"fill{taken}")
        except nats.js.errors.APIError:
            return taken
        taken += 1


async def test_unreadable_markers_at_term_start_still_catch_up_the_gap(nats_server, async_wait_until, caplog):
    caplog.set_level(logging.INFO, logger="ajc_gitops")
    url = nats_server.url
    async with Store.open(options(url)) as store:
        config = Store.bucket_config(CONFIG_BUCKET)
        config["max_consumers"] = CONSUMER_LIMIT
        await store.api_request(f"STREAM.CREATE.KV_{CONFIG_BUCKET}", config, what="consumer-limited config bucket")
        await prepare(url)
        await write_member(store, MemberRecord("py-old", time.time_ns(), None, None))
    await put_schedule(url, "gap", record("gap", "@every 1s", created_ns=time.time_ns() - 600 * NS))
    nc = await nats.connect(url)
    js = nc.jetstream()
    kv = await js.key_value(ELECTIONS_BUCKET)
    revision = await kv.create(ELECTION_KEY, b"py-old")  # the previous leader, still alive
    try:
        async with scheduler(url, name="py-b", catchup_window=timedelta(hours=1), resync_s=3600) as service:
            group = service.group
            assert group is not None and service.follower is not None
            await async_wait_until(lambda: service.follower.ready and group.view.chain_start_ns is not None)
            # The fault: every consumer slot of the bucket taken, so no marker read succeeds.
            # Topped up at each refresh: a slot the member's own short reads held comes free.
            taken = await take_free_consumers(js, 0)
            # The previous leader keeps the key four refreshes more, then stops (a crash).
            for _ in range(4):
                await asyncio.sleep(0.75 * SHORT_TTL)  # its refresh ticker, not a wait for an event
                revision = await kv.update(ELECTION_KEY, b"py-old", last=revision)
                taken = await take_free_consumers(js, taken)
            last_refresh_s = time.time()
            await leading(service, async_wait_until)
            term_start_s = time.time()
            await async_wait_until(lambda: service.fire is not None and service.fire.fired >= 3, timeout=3 * SHORT_TTL)
            chain_start_ns = group.view.chain_start_ns
            reach_ns = group.view.timing.unseen_reach_ns
    finally:
        await nc.close()
    assert "cannot read member markers" in caplog.text, "the fault did not land: the markers were read"
    slots = assert_exactly_once(await read_tasks(url), "t:gap")
    # Every slot after the previous leader stopped has its task, the gap before the term too.
    assert slots[0] <= last_refresh_s, f"first slot {slots[0]}, previous leader stopped at {last_refresh_s:.1f}"
    assert slots[-1] >= term_start_s - 1
    # And never further back than the member's own polls vouch for (no Go leader can be hidden).
    assert chain_start_ns is not None and slots[0] * NS > chain_start_ns + reach_ns

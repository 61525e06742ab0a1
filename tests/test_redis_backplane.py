"""RedisBackplane against the real Redis: local delivery at once, other nodes' messages,
no echo, nothing blocks the loop while Redis is away, reconnection after CLIENT KILL."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from ratehubd.adapters.redis_backplane import RedisBackplane, backoff
from ratehubd.hub.backplane import EventMessage, MarketMessage, Message, RatesDirty
from tests.conftest import timeout


def event(seq: int) -> EventMessage:
    return EventMessage("rate_override_set", {"seq": seq}, "s1", seq, time.time())


async def wait_for(cond: Callable[[], bool], within: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout(within)
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def pair(
    redis_url: str, channel: str
) -> AsyncIterator[tuple[RedisBackplane, RedisBackplane]]:
    # Names of this test's own: another run of the suite may share the Redis server.
    a = RedisBackplane(redis_url, channel, f"a-{channel}")
    b = RedisBackplane(redis_url, channel, f"b-{channel}")
    assert await a.start(timeout(5)) and await b.start(timeout(5))
    try:
        yield a, b
    finally:
        await a.stop()
        await b.stop()


def collect(bp: RedisBackplane) -> list[Message]:
    got: list[Message] = []
    bp.subscribe(got.append)
    return got


async def test_a_node_gets_its_own_message_at_once_and_the_other_node_soon(
    pair: tuple[RedisBackplane, RedisBackplane],
) -> None:
    a, b = pair
    got_a, got_b = collect(a), collect(b)
    a.publish(event(1))
    assert [m.seq for m in got_a if isinstance(m, EventMessage)] == [1]  # at once, no await
    await wait_for(lambda: len(got_b) == 1, what="node b to get the event")
    assert isinstance(got_b[0], EventMessage) and got_b[0].data == {"seq": 1}
    a.publish(event(2))
    await wait_for(lambda: len(got_b) == 2)
    await wait_for(lambda: a.echoes == 2, what="a's own echoes to come back")
    assert [m.seq for m in got_a if isinstance(m, EventMessage)] == [1, 2]  # echo dropped
    st = b.status()
    assert st["connected"] is True and st["received"] == 2 and st["lagMs"] is not None
    assert a.status()["sent"] == 2 and a.status()["published"] == 2


async def test_market_and_rate_marks_stay_on_the_node(
    pair: tuple[RedisBackplane, RedisBackplane],
) -> None:
    a, b = pair
    got_a, got_b = collect(a), collect(b)
    a.publish(MarketMessage([{"currencyPair": "USD/CAD"}], 1.0))
    a.publish(RatesDirty(("USD/CAD",), None))
    a.publish(event(7))  # sent after them on the same connection: they would be first
    await wait_for(lambda: len(got_b) == 1)
    assert [type(m) for m in got_b] == [EventMessage]
    assert len(got_a) == 3


async def test_publish_never_blocks_while_redis_is_unreachable(channel: str) -> None:
    bp = RedisBackplane("redis://127.0.0.1:1/0", channel, "lonely", queue_limit=2)
    assert await bp.start(0.2) is False
    got = collect(bp)
    t0 = time.perf_counter()
    for seq in (1, 2, 3):
        bp.publish(event(seq))
    elapsed = time.perf_counter() - t0
    try:
        assert len(got) == 3  # this node's own clients are served regardless
        st = bp.status()
        assert st["connected"] is False and st["queued"] == 2 and st["dropped"] == 1
        assert elapsed < 0.05
    finally:
        await bp.stop()


async def kill(redis_url: str, name: str) -> int:
    admin = aioredis.Redis.from_url(redis_url)
    try:
        clients: list[dict[str, Any]] = await admin.client_list()
        ids = [c["id"] for c in clients if c.get("name") == name]
        for cid in ids:
            await admin.client_kill_filter(_id=cid)
        return len(ids)
    finally:
        await admin.aclose()


async def test_a_killed_subscription_reconnects_logs_and_delivers_again(
    pair: tuple[RedisBackplane, RedisBackplane],
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = pair
    got_b = collect(b)
    reconnected: list[int] = []
    b.on_connect = lambda: reconnected.append(1)
    caplog.set_level(logging.INFO, "ratehub.backplane")
    assert await kill(redis_url, f"ratehub:{b.node_id}:sub") == 1
    await wait_for(lambda: b.reconnects == 1, what="node b to resubscribe")
    assert reconnected == [1]
    assert any("lost" in r.getMessage() for r in caplog.records)
    assert any("restored" in r.getMessage() for r in caplog.records)
    a.publish(event(3))
    await wait_for(lambda: [m.seq for m in got_b if isinstance(m, EventMessage)] == [3])
    assert await kill(redis_url, f"ratehub:{a.node_id}:pub") == 1  # the sender recovers too
    a.publish(event(4))
    await wait_for(lambda: len(got_b) == 2, what="a message sent after the sender was killed")


def test_backoff_grows_to_its_cap() -> None:
    delays = backoff(initial=0.1, cap=1.0, jitter=0)
    assert [next(delays) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]

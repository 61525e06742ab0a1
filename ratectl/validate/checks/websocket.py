"""The WebSocket hub: handshake and welcome, subscribe and its first rate_update,
ping/pong, and the heartbeat within the interval the welcome announces."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from ratectl.validate.context import Ctx, ms
from ratectl.validate.hub import Frame, HubClient, NotArrived
from ratectl.validate.model import Fail, Outcome, Skip, judged, passed
from ratehubd.wire import PROTOCOL_VERSION

HEARTBEAT_SLACK = 1.5  # a heartbeat is due within one interval; allow half more, plus:
HEARTBEAT_PAD_S = 0.5


@asynccontextmanager
async def connected(
    ctx: Ctx, client_type: str = "store_os"
) -> AsyncIterator[tuple[HubClient, Frame]]:
    """A fresh connection and its welcome frame."""
    hub = await ctx.hub(client_type=client_type)
    try:
        yield hub, await _arrive(hub, lambda f: f.type == "welcome", "the welcome message", ctx)
    finally:
        await hub.close()


async def _arrive(
    hub: HubClient,
    match: Callable[[Frame], bool],
    what: str,
    ctx: Ctx,
    since: int = 0,
    limit: float | None = None,
) -> Frame:
    try:
        return await hub.wait(match, what, limit or ctx.timeout, since)
    except NotArrived as exc:
        raise Fail(exc.message) from None


async def handshake(ctx: Ctx) -> Outcome:
    t0 = asyncio.get_running_loop().time()
    async with connected(ctx) as (_, welcome):
        d = welcome.data
        problems = []
        if d.get("protocol") != PROTOCOL_VERSION:
            problems.append(
                f"protocol {d.get('protocol')!r}; this ratectl speaks {PROTOCOL_VERSION}"
            )
        for key in ("epoch", "seq", "heartbeatIntervalMs", "sessionId"):
            if d.get(key) is None:
                problems.append(f"the welcome message has no {key}")
        return judged(
            f"welcome after {ms(welcome.at - t0)} (protocol {d.get('protocol')}, "
            f"epoch {d.get('epoch')}, seq {d.get('seq')})",
            problems,
        )


async def subscribe(ctx: Ctx) -> Outcome:
    pairs = [str(p) for p in (await ctx.status())["rateEngine"].get("pairs", [])]
    if not pairs:
        raise Fail("the daemon reports no configured pairs (rateEngine.pairs)")
    wanted = pairs[:2]
    async with connected(ctx, "dashboard") as (hub, _):
        mark = hub.inbox.mark()
        t0 = asyncio.get_running_loop().time()
        await hub.send("subscribe", {"symbols": wanted, "subscriptionType": "rates"})
        ack = await _arrive(hub, lambda f: f.type in ("subscribed", "error"), "the ack", ctx, mark)
        if ack.type == "error":
            raise Fail(f"subscribe was refused: {ack.data.get('message')} ({ack.data.get('code')})")
        problems = []
        if sorted(ack.data.get("pairs") or []) != sorted(wanted):
            problems.append(f"acknowledged pairs {ack.data.get('pairs')}, asked for {wanted}")
        if ack.data.get("unknownSymbols"):
            problems.append(f"known symbols reported unknown: {ack.data['unknownSymbols']}")
        after_ack = next(i for i, f in enumerate(hub.inbox.frames) if f is ack) + 1
        upd = await _arrive(
            hub, lambda f: f.type == "rate_update", "a rate_update after the ack", ctx, after_ack
        )
        got = [r.get("currencyPair") for r in upd.data.get("rates") or []]
        if not got:
            problems.append("the first rate_update after subscribing holds no rates")
        if set(got) - set(wanted):
            problems.append(
                f"rate_update holds pairs not subscribed to: {sorted(set(got) - set(wanted))}"
            )
        return judged(
            f"{', '.join(wanted)}: ack after {ms(ack.at - t0)}, first rate_update "
            f"({len(got)} rates) after {ms(upd.at - t0)}",
            problems,
        )


async def ping(ctx: Ctx) -> Outcome:
    async with connected(ctx) as (hub, _):
        mark = hub.inbox.mark()
        t0 = asyncio.get_running_loop().time()
        await hub.send("ping", {"timestamp": 4242})
        pong = await _arrive(hub, lambda f: f.type == "pong", "pong", ctx, mark)
        problems = []
        if pong.data.get("clientTimestamp") != 4242:
            problems.append(
                f"pong.data.clientTimestamp is {pong.data.get('clientTimestamp')!r}, "
                "not the ping's timestamp 4242"
            )
        return judged(f"pong after {ms(pong.at - t0)}", problems)


async def heartbeat(ctx: Ctx) -> Outcome:
    async with connected(ctx) as (hub, welcome):
        interval_ms = welcome.data.get("heartbeatIntervalMs")
        if not isinstance(interval_ms, int) or interval_ms <= 0:
            raise Fail(
                f"welcome.data.heartbeatIntervalMs is {interval_ms!r}, not a positive integer"
            )
        interval = interval_ms / 1000
        limit = interval * HEARTBEAT_SLACK + HEARTBEAT_PAD_S
        if limit > ctx.timeout:
            raise Skip(
                f"the heartbeat interval ({interval:g} s) does not fit in --timeout "
                f"{ctx.timeout:g} s: raise --timeout to {math.ceil(limit)} or lower "
                "WEBSOCKET_HEARTBEAT_INTERVAL (websocket.ping checked liveness)"
            )
        beat = await _arrive(hub, lambda f: f.type == "heartbeat", "a heartbeat", ctx, limit=limit)
        if not isinstance(beat.data.get("serverTime"), int):
            raise Fail("the heartbeat has no data.serverTime")
        return passed(f"heartbeat after {beat.at - welcome.at:.2f} s (interval {interval:g} s)")


RUN = {
    "websocket.handshake": handshake,
    "websocket.subscribe": subscribe,
    "websocket.ping": ping,
    "websocket.heartbeat": heartbeat,
}

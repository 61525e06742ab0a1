"""The business flow on a scratch store, as a store terminal sees it over the WebSocket.

override (set; rate_override_set and the store's rate_update arrive) -> lock, consume,
expire (:mod:`.locks`) -> clear (rate_override_cleared; the store is back to market)
-> cleanup (:mod:`.cleanup`, always: undo whatever is left, then prove nothing is).
The run leaves only audit records. :class:`~ratectl.validate.context.FlowState`
carries what one step leaves for the next.
"""

from __future__ import annotations

import asyncio

from ratectl.validate.checks import cleanup, locks
from ratectl.validate.checks.flowbase import (
    OVERRIDE_LIFETIME_MS,
    SOURCE,
    arrive,
    event,
    hub_of,
    now,
    override_id,
    rate_of,
    slow,
)
from ratectl.validate.context import Ctx, ms
from ratectl.validate.hub import NotArrived
from ratectl.validate.invariants import dec
from ratectl.validate.model import Fail, Outcome, judged, passed
from ratectl.validate.registry import TERMINAL_WAIT_S


async def _pick_pair(ctx: Ctx) -> tuple[str, int]:
    """A pair with fresh market data (USD/CAD if it is), and the daemon's time in ms."""
    st = await ctx.status()
    market = st["rateEngine"].get("marketData") or {}
    fresh = [
        p
        for p in st["rateEngine"].get("pairs") or []
        if isinstance(market.get(p), dict) and not market[p].get("stale")
    ]
    if not fresh:
        raise Fail("no pair has fresh market data to run the flow on (see market.fresh)")
    return ("USD/CAD" if "USD/CAD" in fresh else fresh[0]), int(st["integration"]["timestamp"])


async def override(ctx: Ctx) -> Outcome:
    f, store = ctx.flow, ctx.store
    pair, server_ms = await _pick_pair(ctx)
    mine = [
        o
        for o in await ctx.probe.api("GET", "/api/rates/overrides", params={"storeId": store})
        if o.get("storeId") == store
    ]
    if mine:
        raise Fail(
            f"store {store} already has an override on {mine[0].get('currencyPair')}: the flow "
            "needs a store of its own; leave out --store (a new validate-<random> is used)"
        )
    f.hub = await ctx.hub(store=store)
    await arrive(ctx, lambda fr: fr.type == "welcome", "the welcome message", 0)
    rates = await ctx.probe.api("GET", "/api/rates/get", params={"storeId": store})
    now_rate = next((r for r in rates if r.get("currencyPair") == pair), None)
    if now_rate is None:
        raise Fail(f"GET /api/rates/get?storeId={store} has no {pair} rate")
    tick = dec(now_rate["provenance"]["tick"])
    f.pair = pair
    f.buy, f.sell = dec(now_rate["buyRate"]) + tick, dec(now_rate["sellRate"]) - tick
    body = {
        "currencyPair": pair,
        "buyRate": float(f.buy),
        "sellRate": float(f.sell),
        "storeId": store,
        "validUntil": server_ms + OVERRIDE_LIFETIME_MS,
        "reason": "ratectl validate: scratch override, cleared by the same run",
        "source": SOURCE,
    }
    mark, t0 = hub_of(ctx).inbox.mark(), now()
    f.override_set = True  # from here on the cleanup clears it (a timeout may have set it)
    rate = await ctx.probe.api("POST", "/api/rates/set", body=body)
    f.audit.append(("override_set", None))
    problems = []
    if (dec(rate["buyRate"]), dec(rate["sellRate"])) != (f.buy, f.sell):
        problems.append(
            f"the daemon answered {rate['sellRate']}/{rate['buyRate']}, set {f.sell}/{f.buy}"
        )
    ov_id = override_id(rate)
    ev = await arrive(
        ctx,
        event("rate_override_set", currencyPair=pair, storeId=store),
        "rate_override_set",
        mark,
    )
    upd = await arrive(
        ctx,
        lambda fr: override_id(rate_of(fr, pair)) == ov_id,
        f"a rate_update with the override on {pair}",
        mark,
    )
    got = rate_of(upd, pair) or {}
    if (dec(got["buyRate"]), dec(got["sellRate"])) != (f.buy, f.sell):
        problems.append(
            f"rate_update shows {got['sellRate']}/{got['buyRate']}, set {f.sell}/{f.buy}"
        )
    if not problems:
        f.passed.add("flow.override")
    lat = {"rate_override_set": ev.at - t0, "rate_update": upd.at - t0}
    return judged(
        f"{pair} at store {store}: {f.sell}/{f.buy}; rate_override_set after "
        f"{ms(lat['rate_override_set'])}, rate_update after {ms(lat['rate_update'])}",
        problems,
        slow(lat),
    )


async def clear(ctx: Ctx) -> Outcome:
    f, store = ctx.flow, ctx.store
    f.need("flow.override")
    pair = f.pair
    assert pair is not None
    mark, t0 = hub_of(ctx).inbox.mark(), now()
    body = {"currencyPair": pair, "storeId": store, "reason": "ratectl validate: done"}
    rate = await ctx.probe.api("POST", "/api/rates/clear", body=body)
    f.override_cleared = True
    f.audit.append(("override_cleared", None))
    ev = await arrive(
        ctx,
        event("rate_override_cleared", currencyPair=pair, storeId=store),
        "rate_override_cleared",
        mark,
    )
    upd = await arrive(
        ctx,
        lambda fr: (r := rate_of(fr, pair)) is not None and override_id(r) is None,
        f"a rate_update without the store override on {pair}",
        mark,
    )
    problems = []
    if override_id(rate) is not None or rate.get("source") == SOURCE:
        problems.append(f"after clearing, {pair} at store {store} still shows the override")
    prov = rate.get("provenance") or {}
    if prov.get("override") is None and dec(rate["rate"]) != dec(prov.get("marketMid", -1)):
        problems.append(f"mid {rate['rate']} is not the market mid {prov.get('marketMid')}")
    if not problems:
        f.passed.add("flow.clear")
    lat = {"rate_override_cleared": ev.at - t0, "rate_update": upd.at - t0}
    return judged(
        f"back to market: {rate['sellRate']}/{rate['buyRate']} (mid {rate['rate']}); "
        f"rate_override_cleared after {ms(lat['rate_override_cleared'])}",
        problems,
        slow(lat),
    )


async def terminals(ctx: Ctx) -> Outcome:
    """The flow's store terminal acks the newest table until the daemon lists it current,
    then stops: a dashboard of the store must get terminal_stale for it."""
    f, store = ctx.flow, ctx.store
    f.need("flow.override")
    hub = hub_of(ctx)
    welcome = hub.inbox.find(lambda fr: fr.type == "welcome")
    assert welcome is not None
    sid = welcome.data.get("sessionId")
    dash = await ctx.hub(store=store, client_type="dashboard")
    try:
        await dash.wait(lambda fr: fr.type == "welcome", "the dashboard's welcome", ctx.timeout)
        mark, t0 = dash.inbox.mark(), now()
        path = f"/api/stores/{store}/terminals"
        while True:
            tables = [fr for fr in hub.inbox.frames if fr.type == "rate_update"]
            newest = next((fr for fr in reversed(tables) if "checksum" in fr.data), None)
            if newest is None:
                raise Fail("the flow's terminal got no rate_update with a checksum to ack")
            await hub.send("ack", {"checksum": newest.data["checksum"]})
            await asyncio.sleep(0.1)
            listed = await ctx.probe.api("GET", path)
            mine = [t for t in listed if t.get("sessionId") == sid]
            if mine and mine[0].get("state") == "current":
                break
            if now() - t0 > ctx.timeout:
                got = mine[0].get("state") if mine else "not listed"
                raise Fail(f"GET {path}: the acking terminal is {got}, not current")
        current_at = now()
        try:
            ev = await dash.wait(
                lambda fr: fr.type == "terminal_stale" and fr.data.get("sessionId") == sid,
                "terminal_stale for the terminal that stopped acking",
                ctx.timeout + TERMINAL_WAIT_S,
                mark,
            )
        except NotArrived as exc:
            raise Fail(exc.message) from None
        f.audit.append(("terminal_stale", None))
    finally:
        await dash.close()
    return passed(
        f"terminal {sid} at store {store}: current {ms(current_at - t0)} after its ack; "
        f"terminal_stale {ms(ev.at - current_at)} after it stopped acking"
    )


RUN = {
    "flow.override": override,
    "flow.terminals": terminals,
    "flow.lock": locks.lock,
    "flow.consume": locks.consume,
    "flow.expire": locks.expire,
    "flow.clear": clear,
    "flow.cleanup": cleanup.cleanup,
}

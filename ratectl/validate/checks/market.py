"""Market data and the engine: every pair fresh within its staleness budget, no circuit
breaker open, and every published rate keeping the engine's invariants on the global
channel and a few stores (the scratch store and stores with overrides)."""

from __future__ import annotations

from typing import Any

from ratectl.validate.context import Ctx
from ratectl.validate.invariants import SpreadBounds, missing_pairs, rate_problems
from ratectl.validate.model import Fail, Outcome, judged

MAX_STORES = 3  # stores with overrides checked besides the global channel and scratch store


async def _readyz(ctx: Ctx) -> tuple[list[str], list[str], str]:
    """(problems, warnings, summary) from GET /readyz."""
    reply = await ctx.probe.raw("GET", "/readyz", key=False)
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status == 200:
        return [], [], "/readyz ready"
    if reply.status == 404:
        return [], ["GET /readyz: 404, this daemon has no readiness endpoint"], "no /readyz"
    reasons = body.get("problems") or [f"HTTP {reply.status}"]
    return [f"/readyz: not ready: {'; '.join(map(str, reasons))}"], [], "/readyz not ready"


async def fresh(ctx: Ctx) -> Outcome:
    engine = (await ctx.status())["rateEngine"]
    pairs = [str(p) for p in engine.get("pairs") or []]
    market: dict[str, Any] = engine.get("marketData") or {}
    if not pairs:
        raise Fail("the daemon reports no configured pairs (rateEngine.pairs)")
    problems = []
    for pair in pairs:
        m = market.get(pair)
        if not isinstance(m, dict):
            problems.append(f"{pair}: no market data at all")
        elif m.get("stale"):
            problems.append(
                f"{pair}: market data is stale, {m.get('ageSeconds')} s old "
                f"(sources: {', '.join(m.get('sources') or []) or 'none'})"
            )
    ready_problems, warnings, ready = await _readyz(ctx)
    ages = [
        float(m["ageSeconds"]) for m in market.values() if isinstance(m, dict) and "ageSeconds" in m
    ]
    oldest = f"oldest {max(ages):.1f} s" if ages else "no ages reported"
    return judged(
        f"{len(pairs)} pairs fresh ({oldest}); {ready}", problems + ready_problems, warnings
    )


def _breaker(pair: str, m: dict[str, Any]) -> tuple[bool, str | None]:
    """(reported, why it is open or None)."""
    for key in ("breakerOpen", "breaker_open"):
        if key in m:
            return True, (m.get("breakerReason") or "open") if m[key] else None
    b = m.get("breaker")
    if isinstance(b, dict):
        return True, (b.get("reason") or "open") if b.get("open") else None
    if isinstance(b, str):
        return True, b if b.lower() == "open" else None
    return False, None


async def breakers(ctx: Ctx) -> Outcome:
    engine = (await ctx.status())["rateEngine"]
    market: dict[str, Any] = engine.get("marketData") or {}
    reported, problems = 0, []
    for pair, m in sorted(market.items()):
        if isinstance(m, dict):
            seen, why = _breaker(pair, m)
            reported += seen
            if why is not None:
                problems.append(f"{pair}: circuit breaker open ({why})")
    reply = await ctx.probe.raw("GET", "/readyz", key=False)
    if isinstance(reply.body, dict):
        problems += [
            f"/readyz: {p}" for p in reply.body.get("problems") or [] if "breaker" in str(p)
        ]
    if reported:
        return judged(f"{reported} pairs' breakers closed", problems)
    feed = engine.get("feed", "unknown")
    return judged(f"no breaker open (feed {feed} reports no circuit breakers)", problems)


async def invariants(ctx: Ctx) -> Outcome:
    engine = (await ctx.status())["rateEngine"]
    with_market = [p for p in engine.get("pairs") or [] if p in (engine.get("marketData") or {})]
    bounds = SpreadBounds.from_status(engine)
    overrides = await ctx.probe.api("GET", "/api/rates/overrides")
    stores: list[str | None] = [None, ctx.store]
    for ov in overrides if isinstance(overrides, list) else []:
        sid = ov.get("storeId") if isinstance(ov, dict) else None
        if sid and sid not in stores and len(stores) < 2 + MAX_STORES:
            stores.append(sid)
    problems, count = [], 0
    for store in stores:
        rates = await ctx.probe.api(
            "GET", "/api/rates/get", params={"storeId": store} if store else None
        )
        if not isinstance(rates, list):
            raise Fail(f"GET /api/rates/get returned {type(rates).__name__}, not a list")
        name = f"store {store}" if store else "global"
        problems += [f"{p} at {name}: no rate published" for p in missing_pairs(with_market, rates)]
        for rate in rates:
            count += 1
            problems += rate_problems(rate, bounds)
            if rate.get("storeId") != store:
                got = rate.get("storeId")
                problems.append(f"{rate.get('currencyPair')}: asked {name}, got storeId {got!r}")
    where = ", ".join(f"store {s}" if s else "global" for s in stores)
    limits = f"bounds [{bounds.low}, {bounds.high}]" if bounds else "bounds (0, 1)"
    return judged(
        f"{count} rates ({where}) keep sell < mid < buy, spread, tick, {limits}", problems
    )


RUN = {
    "market.fresh": fresh,
    "market.breakers": breakers,
    "engine.invariants": invariants,
}

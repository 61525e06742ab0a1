"""The business flow on a scratch store, as a store terminal sees it over the WebSocket.

override (set; rate_override_set and the store's rate_update arrive) -> lock (two
locks at the override's rates; rate_lock_created for each; a retried idempotency key
gives the same lock) -> consume (one lock, once; rate_lock_consumed; a second consume
is refused) -> expire (the short lock; rate_lock_expired; consuming it is refused) ->
clear (rate_override_cleared; the store is back to market) -> cleanup (always: undo
whatever is left, then prove nothing is). The run leaves only audit records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ratectl.validate.context import SLOW_S, Ctx
from ratectl.validate.hub import Frame, HubClient, NotArrived
from ratectl.validate.invariants import dec
from ratectl.validate.model import Fail, Outcome, Skip, judged
from ratectl.validate.probe import Refused
from ratectl.validate.registry import EXPIRE_TTL_S

SOURCE = "ratectl-validate"
REFERENCE = "ratectl validate: "  # every lock the flow makes says so: cleanup finds them
OVERRIDE_LIFETIME_MS = 10 * 60 * 1000  # if every cleanup fails, the override still ends
CONSUME_TTL_S = 120
SWEEP_S = 1.0  # the daemon ends due locks once a second


def _now() -> float:
    return asyncio.get_running_loop().time()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _hub(ctx: Ctx) -> HubClient:
    assert ctx.flow.hub is not None
    return ctx.flow.hub


async def _arrive(
    ctx: Ctx, match: Callable[[Frame], bool], what: str, since: int, limit: float | None = None
) -> Frame:
    try:
        return await _hub(ctx).wait(match, what, limit or ctx.timeout, since)
    except NotArrived as exc:
        raise Fail(exc.message) from None


def _event(type_: str, **fields: Any) -> Callable[[Frame], bool]:
    return lambda f: f.type == type_ and all(f.data.get(k) == v for k, v in fields.items())


def _rate_of(frame: Frame, pair: str) -> dict[str, Any] | None:
    if frame.type != "rate_update":
        return None
    return next((r for r in frame.data.get("rates") or [] if r.get("currencyPair") == pair), None)


def _override_id(rate: dict[str, Any] | None) -> str | None:
    ov = ((rate or {}).get("provenance") or {}).get("override")
    return ov.get("id") if isinstance(ov, dict) and ov.get("storeId") else None


def _slow(latencies: dict[str, float], limit: float = SLOW_S) -> list[str]:
    return [
        f"{what} took {_ms(s)} (over {limit:g} s)" for what, s in latencies.items() if s > limit
    ]


# -- steps --------------------------------------------------------------------------------------


async def _pick_pair(ctx: Ctx) -> tuple[str, int]:
    st = await ctx.status()
    market = st["rateEngine"].get("marketData") or {}
    fresh = [
        p
        for p in st["rateEngine"].get("pairs") or []
        if not (market.get(p) or {"stale": True})["stale"]
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
    await _arrive(ctx, lambda fr: fr.type == "welcome", "the welcome message", 0)
    rates = await ctx.probe.api("GET", "/api/rates/get", params={"storeId": store})
    now_rate = next((r for r in rates if r.get("currencyPair") == pair), None)
    if now_rate is None:
        raise Fail(f"GET /api/rates/get?storeId={store} has no {pair} rate")
    tick = dec(now_rate["provenance"]["tick"])
    f.pair, f.tick = pair, tick
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
    mark, t0 = _hub(ctx).inbox.mark(), _now()
    f.override_set = True  # from here on the cleanup clears it (a timeout may have set it)
    rate = await ctx.probe.api("POST", "/api/rates/set", body=body)
    f.audit.append(("override_set", None))
    problems = []
    if (dec(rate["buyRate"]), dec(rate["sellRate"])) != (f.buy, f.sell):
        problems.append(
            f"the daemon answered {rate['sellRate']}/{rate['buyRate']}, set {f.sell}/{f.buy}"
        )
    ov_id = _override_id(rate)
    ev = await _arrive(
        ctx,
        _event("rate_override_set", currencyPair=pair, storeId=store),
        "rate_override_set",
        mark,
    )
    upd = await _arrive(
        ctx,
        lambda fr: _override_id(_rate_of(fr, pair)) == ov_id,
        f"a rate_update with the override on {pair}",
        mark,
    )
    got = _rate_of(upd, pair) or {}
    if (dec(got["buyRate"]), dec(got["sellRate"])) != (f.buy, f.sell):
        problems.append(
            f"rate_update shows {got['sellRate']}/{got['buyRate']}, set {f.sell}/{f.buy}"
        )
    if not problems:
        f.passed.add("flow.override")
    lat = {"rate_override_set": ev.at - t0, "rate_update": upd.at - t0}
    return judged(
        f"{pair} at store {store}: {f.sell}/{f.buy}; rate_override_set after "
        f"{_ms(lat['rate_override_set'])}, rate_update after {_ms(lat['rate_update'])}",
        problems,
        _slow(lat),
    )


async def _create_lock(ctx: Ctx, role: str, ttl: int) -> tuple[dict[str, Any], float]:
    f = ctx.flow
    body = {
        "currencyPair": f.pair,
        "ttlSeconds": ttl,
        "storeId": ctx.store,
        "reference": f"{REFERENCE}{role}",
        "idempotencyKey": f"{ctx.store}-{role}",
    }
    mark, t0 = _hub(ctx).inbox.mark(), _now()
    lock = await ctx.probe.api("POST", "/api/rates/lock", body=body)
    f.locks[role] = lock["lockId"]
    f.created[role] = t0
    f.audit.append(("lock_created", lock["lockId"]))
    ev = await _arrive(
        ctx, _event("rate_lock_created", lockId=lock["lockId"]), f"rate_lock_created ({role})", mark
    )
    return lock, ev.at - t0


async def lock(ctx: Ctx) -> Outcome:
    f = ctx.flow
    f.need("flow.override")
    problems, lat = [], {}
    for role, ttl in (("expire", EXPIRE_TTL_S), ("consume", CONSUME_TTL_S)):
        made, lat[f"rate_lock_created ({role})"] = await _create_lock(ctx, role, ttl)
        if ctx.probe.last_status != 201:
            problems.append(
                f"creating the {role} lock answered HTTP {ctx.probe.last_status}, not 201"
            )
        if made.get("state") != "active":
            problems.append(f"the new {role} lock is {made.get('state')!r}, not active")
        if (dec(made["buyRate"]), dec(made["sellRate"])) != (f.buy, f.sell):
            problems.append(
                f"the {role} lock froze {made['sellRate']}/{made['buyRate']}, not the store's "
                f"override {f.sell}/{f.buy}"
            )
    retry = await ctx.probe.api(
        "POST",
        "/api/rates/lock",
        body={
            "currencyPair": f.pair,
            "ttlSeconds": CONSUME_TTL_S,
            "storeId": ctx.store,
            "reference": f"{REFERENCE}consume",
            "idempotencyKey": f"{ctx.store}-consume",
        },
    )
    if retry.get("lockId") != f.locks["consume"] or ctx.probe.last_status != 200:
        problems.append(
            f"retrying with the same idempotency key answered HTTP {ctx.probe.last_status} with "
            f"lock {retry.get('lockId')}, not 200 with {f.locks['consume']}"
        )
    if not problems:
        f.passed.add("flow.lock")
    worst = max(lat.values())
    return judged(
        f"2 locks at {f.sell}/{f.buy}; rate_lock_created within {_ms(worst)}; retry-safe",
        problems,
        _slow(lat),
    )


async def _refused_twice(ctx: Ctx, lock_id: str, why: str) -> list[str]:
    """Consuming ``lock_id`` again must be refused with 409."""
    reply = await ctx.probe.raw("POST", f"/api/rates/locks/{lock_id}/consume")
    if reply.status == 409:
        return []
    return [f"consuming a lock that is {why} answered HTTP {reply.status}, not 409"]


async def consume(ctx: Ctx) -> Outcome:
    f = ctx.flow
    f.need("flow.lock")
    lock_id = f.locks["consume"]
    mark, t0 = _hub(ctx).inbox.mark(), _now()
    done = await ctx.probe.api("POST", f"/api/rates/locks/{lock_id}/consume")
    f.ended.add(lock_id)
    f.audit.append(("lock_consumed", lock_id))
    problems = (
        []
        if done.get("state") == "consumed"
        else [f"the lock is {done.get('state')!r} after consume"]
    )
    ev = await _arrive(
        ctx, _event("rate_lock_consumed", lockId=lock_id), "rate_lock_consumed", mark
    )
    problems += await _refused_twice(ctx, lock_id, "already consumed")
    lat = {"rate_lock_consumed": ev.at - t0}
    return judged(
        f"consumed once; rate_lock_consumed after {_ms(ev.at - t0)}; again: 409",
        problems,
        _slow(lat),
    )


async def expire(ctx: Ctx) -> Outcome:
    f = ctx.flow
    f.need("flow.lock")
    lock_id, created = f.locks["expire"], f.created["expire"]
    limit = EXPIRE_TTL_S + ctx.timeout - (_now() - created)
    ev = await _arrive(
        ctx,
        _event("rate_lock_expired", lockId=lock_id),
        f"rate_lock_expired within {EXPIRE_TTL_S} s ttl + {ctx.timeout:g} s",
        0,
        max(limit, 0.1),
    )
    f.ended.add(lock_id)
    f.audit.append(("lock_expired", lock_id))
    shown = await ctx.probe.api("GET", f"/api/rates/locks/{lock_id}")
    problems = (
        []
        if shown.get("state") == "expired"
        else [f"GET the lock says {shown.get('state')!r}, not expired"]
    )
    problems += await _refused_twice(ctx, lock_id, "expired")
    after = ev.at - created
    late = after - EXPIRE_TTL_S - SWEEP_S
    return judged(
        f"ttl {EXPIRE_TTL_S} s: rate_lock_expired {after:.2f} s after creation; consume: 409",
        problems,
        _slow({"expiry past ttl + 1 s sweep": late}),
    )


async def clear(ctx: Ctx) -> Outcome:
    f, store = ctx.flow, ctx.store
    f.need("flow.override")
    pair = f.pair
    assert pair is not None
    mark, t0 = _hub(ctx).inbox.mark(), _now()
    body = {"currencyPair": pair, "storeId": store, "reason": "ratectl validate: done"}
    rate = await ctx.probe.api("POST", "/api/rates/clear", body=body)
    f.override_cleared = True
    f.audit.append(("override_cleared", None))
    ev = await _arrive(
        ctx,
        _event("rate_override_cleared", currencyPair=pair, storeId=store),
        "rate_override_cleared",
        mark,
    )
    upd = await _arrive(
        ctx,
        lambda fr: (r := _rate_of(fr, pair)) is not None and _override_id(r) is None,
        f"a rate_update without the store override on {pair}",
        mark,
    )
    problems = []
    if _override_id(rate) is not None or rate.get("source") == SOURCE:
        problems.append(f"after clearing, {pair} at store {store} still shows the override")
    prov = rate.get("provenance") or {}
    if prov.get("override") is None and dec(rate["rate"]) != dec(prov.get("marketMid", -1)):
        problems.append(f"mid {rate['rate']} is not the market mid {prov.get('marketMid')}")
    if not problems:
        f.passed.add("flow.clear")
    lat = {"rate_override_cleared": ev.at - t0, "rate_update": upd.at - t0}
    return judged(
        f"back to market: {rate['sellRate']}/{rate['buyRate']} (mid {rate['rate']}); "
        f"rate_override_cleared after {_ms(lat['rate_override_cleared'])}",
        problems,
        _slow(lat),
    )


async def cleanup(ctx: Ctx) -> Outcome:
    f, store = ctx.flow, ctx.store
    if not f.started:
        raise Skip("no flow step ran")
    problems: list[str] = []
    undone: list[str] = []
    try:
        for lk in await _our_active_locks(ctx):
            undone += await _undo(ctx, f"release lock {lk['lockId']}", lk["lockId"], problems)
        if f.override_set and not f.override_cleared:
            undone += await _undo(ctx, "clear the override", None, problems)
    finally:
        if f.hub is not None:
            await f.hub.close()
    left = await ctx.probe.api("GET", "/api/rates/overrides", params={"storeId": store})
    problems += [
        f"override left on {o.get('currencyPair')} at store {store}"
        for o in left
        if o.get("storeId") == store
    ]
    problems += [f"lock {lk.get('lockId')} still active" for lk in await _our_active_locks(ctx)]
    note = f"; undid: {', '.join(undone)}" if undone else ""
    return judged(f"store {store}: no override, no active lock{note}", problems)


async def _our_active_locks(ctx: Ctx) -> list[dict[str, Any]]:
    params = {"storeId": ctx.store, "state": "active"}
    locks = await ctx.probe.api("GET", "/api/rates/locks", params=params)
    return [lk for lk in locks if str(lk.get("reference", "")).startswith(REFERENCE)]


async def _undo(ctx: Ctx, what: str, lock_id: str | None, problems: list[str]) -> list[str]:
    """Release a lock or clear the override; 404/409 mean there was nothing to undo."""
    f = ctx.flow
    try:
        if lock_id is not None:
            await ctx.probe.api("POST", f"/api/rates/locks/{lock_id}/release")
            f.ended.add(lock_id)
        else:
            body = {
                "currencyPair": f.pair,
                "storeId": ctx.store,
                "reason": "ratectl validate: cleanup",
            }
            await ctx.probe.api("POST", "/api/rates/clear", body=body)
            f.override_cleared = True
    except Refused as exc:
        if exc.status not in (404, 409):
            problems.append(f"could not {what}: {exc.message}")
        return []
    f.audit.append(("lock_released" if lock_id else "override_cleared", lock_id))
    return [what]


RUN = {
    "flow.override": override,
    "flow.lock": lock,
    "flow.consume": consume,
    "flow.expire": expire,
    "flow.clear": clear,
    "flow.cleanup": cleanup,
}

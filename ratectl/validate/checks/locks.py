"""The flow's locks: two at the override's rates (one to consume, one to let expire),
each announced by rate_lock_created; a retried idempotency key returns the same lock;
consume once (rate_lock_consumed), expire (rate_lock_expired), and a second consume of
either is refused with 409."""

from __future__ import annotations

from typing import Any

from ratectl.validate.checks.flowbase import (
    CONSUME_TTL_S,
    REFERENCE,
    SWEEP_S,
    arrive,
    event,
    hub_of,
    now,
    slow,
)
from ratectl.validate.context import Ctx, ms
from ratectl.validate.invariants import dec
from ratectl.validate.model import Outcome, judged
from ratectl.validate.registry import EXPIRE_TTL_S


async def _create_lock(ctx: Ctx, role: str, ttl: int) -> tuple[dict[str, Any], float]:
    f = ctx.flow
    body = {
        "currencyPair": f.pair,
        "ttlSeconds": ttl,
        "storeId": ctx.store,
        "reference": f"{REFERENCE}{role}",
        "idempotencyKey": f"{ctx.store}-{role}",
    }
    mark, t0 = hub_of(ctx).inbox.mark(), now()
    lock = await ctx.probe.api("POST", "/api/rates/lock", body=body)
    f.locks[role] = lock["lockId"]
    f.created[role] = t0
    f.audit.append(("lock_created", lock["lockId"]))
    ev = await arrive(
        ctx, event("rate_lock_created", lockId=lock["lockId"]), f"rate_lock_created ({role})", mark
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
        f"2 locks at {f.sell}/{f.buy}; rate_lock_created within {ms(worst)}; retry-safe",
        problems,
        slow(lat),
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
    mark, t0 = hub_of(ctx).inbox.mark(), now()
    done = await ctx.probe.api("POST", f"/api/rates/locks/{lock_id}/consume")
    f.audit.append(("lock_consumed", lock_id))
    problems = (
        []
        if done.get("state") == "consumed"
        else [f"the lock is {done.get('state')!r} after consume"]
    )
    ev = await arrive(ctx, event("rate_lock_consumed", lockId=lock_id), "rate_lock_consumed", mark)
    problems += await _refused_twice(ctx, lock_id, "already consumed")
    lat = {"rate_lock_consumed": ev.at - t0}
    return judged(
        f"consumed once; rate_lock_consumed after {ms(ev.at - t0)}; again: 409",
        problems,
        slow(lat),
    )


async def expire(ctx: Ctx) -> Outcome:
    f = ctx.flow
    f.need("flow.lock")
    lock_id, created = f.locks["expire"], f.created["expire"]
    limit = EXPIRE_TTL_S + ctx.timeout - (now() - created)
    ev = await arrive(
        ctx,
        event("rate_lock_expired", lockId=lock_id),
        f"rate_lock_expired within {EXPIRE_TTL_S} s ttl + {ctx.timeout:g} s",
        0,
        max(limit, 0.1),
    )
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
        slow({"expiry past ttl + 1 s sweep": late}),
    )

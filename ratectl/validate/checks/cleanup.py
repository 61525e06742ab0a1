"""The flow's cleanup: release every active lock the run made (their reference says
so) and clear its override, even after a failure; then prove nothing is left."""

from __future__ import annotations

from typing import Any

from ratectl.validate.checks.flowbase import REFERENCE
from ratectl.validate.context import Ctx
from ratectl.validate.model import Outcome, Skip, judged
from ratectl.validate.probe import Refused


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

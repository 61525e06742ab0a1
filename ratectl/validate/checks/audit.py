"""The audit trail: the hash chain verifies, and it holds a record of every change the
business flow made on the scratch store."""

from __future__ import annotations

from typing import Any

from ratectl.validate.context import Ctx
from ratectl.validate.model import Fail, Outcome, Skip, judged, passed


async def verify(ctx: Ctx) -> Outcome:
    data = await ctx.probe.api("GET", "/api/audit/verify")
    if not isinstance(data, dict) or "ok" not in data:
        raise Fail("GET /api/audit/verify did not answer {ok, checked, end, problem}")
    if not data["ok"]:
        p = data.get("problem") or {}
        raise Fail(
            f"the audit chain is broken at record {p.get('seq')}: {p.get('message')}",
            [f"kind: {p.get('kind')}", f"records checked: {data.get('checked')}"],
        )
    end = data.get("end") or {}
    head = f"{end.get('seq')}:{str(end.get('hash', ''))[:16]}"
    return passed(f"{data.get('checked')} records verify; head {head}")


def _lock_id(record: dict[str, Any]) -> str | None:
    after = record.get("after")
    return after.get("lockId") if isinstance(after, dict) else None


async def flow(ctx: Ctx) -> Outcome:
    wanted = ctx.flow.audit
    if not wanted:
        raise Skip("no flow step changed anything in this run")
    params = {"storeId": ctx.store, "order": "asc", "limit": "1000"}
    records = await ctx.probe.api("GET", "/api/audit", params=params)
    if not isinstance(records, list):
        raise Fail(f"GET /api/audit returned {type(records).__name__}, not a list")
    problems, unused = [], list(records)
    for type_, lock_id in wanted:
        match = next(
            (
                r
                for r in unused
                if r.get("type") == type_ and (lock_id is None or _lock_id(r) == lock_id)
            ),
            None,
        )
        if match is None:
            lock = f" for lock {lock_id}" if lock_id else ""
            problems.append(f"no {type_} record{lock} at store {ctx.store}")
        else:
            unused.remove(match)
    foreign = [r.get("seq") for r in records if r.get("store_id") != ctx.store]
    if foreign:
        problems.append(f"records {foreign[:5]} are not of store {ctx.store} (storeId filter)")
    kinds = ", ".join(t for t, _ in wanted)
    return judged(f"{len(wanted)} records of the flow: {kinds}", problems)


RUN = {"audit.verify": verify, "audit.flow": flow}

"""Group commit: many changes in one transaction stay exactly as if written one by one."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from ratehubd import wire
from ratehubd.runtime import Runtime


def body(store: str, buy: float) -> wire.SetRateRequest:
    return wire.SetRateRequest.model_validate(
        {"currencyPair": "USD/CAD", "buyRate": buy, "sellRate": 1.33, "storeId": store}
    )


async def test_same_key_twice_in_one_batch_leaves_one_active_row(runtime: Runtime) -> None:
    svc = runtime.service
    before = runtime.writer.batches
    # Fired together, these land in one or two transactions; either way one row stays active.
    await asyncio.gather(*(svc.set_override(body("s1", b), "k") for b in (1.37, 1.38, 1.36)))
    await asyncio.gather(*(svc.set_override(body(f"x{i}", 1.37), "k") for i in range(20)))
    assert runtime.writer.batches - before < 23  # some of them shared a commit
    with sqlite3.connect(runtime.config.state_path / "ratehub.db") as db:
        rows = db.execute(
            "select version, status from overrides where store_id = 's1' order by version"
        ).fetchall()
        events = db.execute("select count(*) from events where type = 'rate_override_set'")
        audit = db.execute("select count(*) from audit where type = 'override_set'")
        assert events.fetchone()[0] == 23 and audit.fetchone()[0] == 23
    assert [status for _, status in rows] == ["replaced", "replaced", "active"]
    active = runtime.engine.overrides.get(runtime.engine.pair("USD/CAD"), "s1", runtime.clock.now())
    assert active is not None and active.version == rows[-1][0]
    verdict = await runtime.audit_verify()
    assert verdict["ok"] and verdict["checked"] == 23


async def test_stores_without_rates_of_their_own_share_the_global_table(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hub's per-store tables: a copy of the global rates under the store's id, until the
    store gets an override of its own; a global change reaches every copy at once."""
    svc = runtime.service
    usd = runtime.engine.pair("USD/CAD")
    with monkeypatch.context() as m:
        now = svc.clock.now()
        m.setattr(svc.clock, "now", lambda: now)  # one clock reading for both tables
        plain, glob_table = svc.rate_table("s9"), svc.rate_table(None)
    assert plain[usd]["storeId"] == "s9"
    assert {k: v for k, v in plain[usd].items() if k != "storeId"} == {
        k: v for k, v in glob_table[usd].items() if k != "storeId"
    }
    await svc.set_override(body("s9", 1.37), "k")
    assert svc.rate_table("s9")[usd]["buyRate"] == 1.37
    assert svc.rate_table("s8")[usd]["buyRate"] != 1.37
    glob = wire.SetRateRequest.model_validate(
        {"currencyPair": "USD/CAD", "buyRate": 1.38, "sellRate": 1.33}
    )
    await svc.set_override(glob, "k")
    assert svc.rate_table("s8")[usd]["buyRate"] == 1.38  # no stale copy
    assert svc.rate_table("s9")[usd]["buyRate"] == 1.37  # the store's own still wins

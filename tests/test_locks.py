"""Rate locks: the pure lock book with a fake clock, and the HTTP API over a real
daemon, including restarts (each expiry fires exactly once)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from ratehubd.config import Config
from ratehubd.engine.engine import RateEngine
from ratehubd.engine.locks import ACTIVE, CONSUMED, EXPIRED, RELEASED, LockRequest
from ratehubd.engine.pairs import Pair
from ratehubd.errors import Conflict, InvalidRequest, NotFound, Unavailable
from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY, FakeClock

USD = Pair("USD", "CAD")
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(make_config: Callable[..., Config]) -> RateEngine:
    cfg = make_config()
    eng = RateEngine(cfg.pair_policies(), cfg.override_policy(), cfg.threshold_policies())
    eng.on_market_tick(USD, Decimal("1.35"), "test", T0)
    return eng


def plan(eng: RateEngine, now: datetime, ttl: int = 300, key: str | None = None, **kw: Any) -> Any:
    req = LockRequest(
        pair=USD, ttl_seconds=ttl, store_id="s1", reference="TX1", idempotency_key=key, **kw
    )
    return eng.plan_lock(req, lock_id=f"L{now.timestamp()}{ttl}{key}", author="k", now=now)


def test_lock_freezes_the_store_rate(engine: RateEngine) -> None:
    lock, created = plan(engine, T0)
    engine.locks.commit(lock)
    rate = engine.rate(USD, "s1", T0)
    assert created and (lock.buy, lock.sell) == (rate.buy, rate.sell)
    engine.on_market_tick(USD, Decimal("1.36"), "test", T0 + timedelta(seconds=1))
    assert engine.locks.get(lock.id).buy == rate.buy  # the market moved, the lock did not
    assert lock.expires_at == T0 + timedelta(seconds=300)


def test_consume_is_single_use(engine: RateEngine) -> None:
    lock, _ = plan(engine, T0)
    engine.locks.commit(lock)
    consumed = engine.locks.plan_consume(lock.id, "k", T0 + timedelta(seconds=10))
    engine.locks.commit(consumed)
    assert engine.locks.get(lock.id).state == CONSUMED
    with pytest.raises(Conflict):
        engine.locks.plan_consume(lock.id, "k", T0 + timedelta(seconds=11))
    with pytest.raises(Conflict):
        engine.locks.plan_release(lock.id, "k", T0 + timedelta(seconds=11))


def test_consume_refused_at_expiry_even_before_the_sweeper(engine: RateEngine) -> None:
    lock, _ = plan(engine, T0, ttl=60)
    engine.locks.commit(lock)
    assert engine.locks.get(lock.id).state == ACTIVE  # nobody swept it
    with pytest.raises(Conflict, match="expired"):
        engine.locks.plan_consume(lock.id, "k", T0 + timedelta(seconds=60))
    due = engine.locks.due_expiries(T0 + timedelta(seconds=60))
    assert [d.state for d in due] == [EXPIRED]


def test_release_ends_early_and_expiry_then_does_nothing(engine: RateEngine) -> None:
    lock, _ = plan(engine, T0, ttl=60)
    engine.locks.commit(lock)
    engine.locks.commit(engine.locks.plan_release(lock.id, "k", T0))
    assert engine.locks.get(lock.id).state == RELEASED
    assert engine.locks.due_expiries(T0 + timedelta(hours=1)) == []


def test_expired_lock_cannot_be_revived(engine: RateEngine) -> None:
    lock, _ = plan(engine, T0, ttl=60)
    engine.locks.commit(lock)
    (expired,) = engine.locks.due_expiries(T0 + timedelta(seconds=61))
    assert engine.locks.commit(expired)
    assert not engine.locks.commit(lock)  # a stale active copy never wins
    assert engine.locks.get(lock.id).state == EXPIRED


def test_idempotency_key(engine: RateEngine) -> None:
    first, created = plan(engine, T0, key="abc")
    assert created
    again, created_again = plan(engine, T0 + timedelta(seconds=1), key="abc")
    assert again is first and not created_again  # even before the write committed
    engine.locks.commit(first)
    again, created_again = plan(engine, T0 + timedelta(seconds=2), key="abc")
    assert again.id == first.id and not created_again
    with pytest.raises(Conflict, match="different lock"):
        plan(engine, T0, ttl=30, key="abc")


@pytest.mark.parametrize(("ttl", "error"), [(0, InvalidRequest), (100_000, InvalidRequest)])
def test_ttl_bounds(engine: RateEngine, ttl: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        plan(engine, T0, ttl=ttl)


def test_stale_pair_refuses_locks(engine: RateEngine) -> None:
    later = T0 + timedelta(hours=2)  # fiat staleness budget is 300 s by default
    with pytest.raises(Unavailable, match="stale"):
        plan(engine, later)


def test_unknown_lock(engine: RateEngine) -> None:
    with pytest.raises(NotFound):
        engine.locks.plan_consume("nope", "k", T0)


# -- over HTTP, with restarts -------------------------------------------------------------


async def start(cfg: Config, clock: FakeClock) -> tuple[Runtime, httpx.AsyncClient]:
    rt = Runtime(cfg, clock=clock)  # type: ignore[arg-type]
    await rt.start()
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}", headers=AUTH)
    return rt, client


def expired_events(cfg: Config, lock_id: str) -> int:
    with sqlite3.connect(cfg.state_path / "ratehub.db") as db:
        rows = db.execute("select payload from events where type = 'rate_lock_expired'").fetchall()
    return sum(1 for (p,) in rows if lock_id in p)


async def test_lock_api_lifecycle(runtime: Runtime) -> None:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{runtime.api_port}", headers=AUTH
    ) as c:
        body = {
            "currencyPair": "USD/CAD",
            "ttlSeconds": 300,
            "storeId": "store123",
            "reference": "TX123",
        }
        r = await c.post("/api/rates/lock", json=body, headers={"Idempotency-Key": "tx-123"})
        assert r.status_code == 201, r.text
        lock = r.json()["data"]
        assert lock["state"] == "active" and lock["sellRate"] < lock["buyRate"]
        retry = await c.post("/api/rates/lock", json=body, headers={"Idempotency-Key": "tx-123"})
        assert retry.status_code == 200 and retry.json()["data"]["lockId"] == lock["lockId"]
        other = await c.post(
            "/api/rates/lock",
            json={**body, "ttlSeconds": 60},
            headers={"Idempotency-Key": "tx-123"},
        )
        assert other.status_code == 409
        listed = (await c.get("/api/rates/locks", params={"storeId": "store123"})).json()["data"]
        assert [x["lockId"] for x in listed] == [lock["lockId"]]
        r = await c.post(f"/api/rates/locks/{lock['lockId']}/consume")
        assert r.status_code == 200 and r.json()["data"]["state"] == "consumed"
        again = await c.post(f"/api/rates/locks/{lock['lockId']}/consume")
        assert again.status_code == 409 and "consumed" in again.json()["error"]
        assert (await c.post("/api/rates/locks/nope/release")).status_code == 404
        too_long = await c.post("/api/rates/lock", json={**body, "ttlSeconds": 99_999})
        assert too_long.status_code == 400 and "maximum" in too_long.json()["error"]


async def test_expiry_fires_once_across_restarts(make_config: Callable[..., Config]) -> None:
    cfg = make_config()
    clock = FakeClock()
    rt, c = await start(cfg, clock)
    try:
        r = await c.post(
            "/api/rates/lock", json={"currencyPair": "USD/CAD", "ttlSeconds": 60, "storeId": "s1"}
        )
        lock_id = r.json()["data"]["lockId"]
    finally:
        await c.aclose()
        await rt.stop()
    clock.advance(120)  # the lock expires while the daemon is down
    for _ in range(2):
        rt, c = await start(cfg, clock)
        try:
            data = (await c.get(f"/api/rates/locks/{lock_id}")).json()["data"]
            assert data["state"] == "expired"
            consume = await c.post(f"/api/rates/locks/{lock_id}/consume")
            assert consume.status_code == 409
        finally:
            await c.aclose()
            await rt.stop()
    assert expired_events(cfg, lock_id) == 1


async def test_overrides_survive_a_restart(make_config: Callable[..., Config]) -> None:
    cfg = make_config()
    clock = FakeClock()
    rt, c = await start(cfg, clock)
    body = {
        "currencyPair": "USD/CAD",
        "buyRate": 1.37,
        "sellRate": 1.33,
        "storeId": "s1",
        "reason": "r",
    }
    try:
        assert (await c.post("/api/rates/set", json=body)).status_code == 200
    finally:
        await c.aclose()
        await rt.stop()
    rt, c = await start(cfg, clock)
    try:
        rates = (await c.get("/api/rates/get", params={"storeId": "s1"})).json()["data"]
        usd = next(x for x in rates if x["currencyPair"] == "USD/CAD")
        assert (usd["buyRate"], usd["sellRate"]) == (1.37, 1.33)
        assert usd["provenance"]["override"]["reason"] == "r"
        conflict = await c.post("/api/rates/set", json={**body, "expectedVersion": 0})
        assert conflict.status_code == 409
    finally:
        await c.aclose()
        await rt.stop()

"""Market data through the daemon: a provider polled over real HTTP and crossed through
USD/CAD, pushed prices (HTTP and WebSocket), and the circuit breaker end to end."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from ratehubd import auth
from ratehubd.config import Config
from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY, timeout
from tests.fixtures.sources.server import FixtureServer, Reply
from tests.test_ws_hub import recv_until, ws_url

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def started(cfg: Config) -> tuple[Runtime, httpx.AsyncClient]:
    rt = Runtime(cfg)
    await rt.start()
    return rt, httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}", headers=AUTH)


async def rate(c: httpx.AsyncClient, pair: str) -> dict[str, Any]:
    rates = (await c.get("/api/rates/get")).json()["data"]
    found = [r for r in rates if r["currencyPair"] == pair]
    return found[0] if found else {"provenance": {"marketSources": []}}


async def eventually(check: Callable[[], Any], within: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout(within)
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


async def test_coinbase_btc_is_crossed_through_usd_cad(make_config: Callable[..., Config]) -> None:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ticker = {"ask": "97012.00", "bid": "97010.00", "price": "97011.00", "time": now}
    async with FixtureServer() as server:
        server.route("/products/BTC-USD/ticker", Reply(json.dumps(ticker).encode()))
        cfg = make_config(
            sources={
                "coinbase": {
                    "enabled": True,
                    "base_url": server.url,
                    "interval_s": 0.1,
                    "products": ["BTC-USD"],
                },
                "pairs": {"BTC/CAD": {"sources": ["coinbase"]}},
            }
        )
        rt, c = await started(cfg)
        try:

            async def crossed() -> dict[str, Any] | None:
                r = await rate(c, "BTC/CAD")
                return r if r["provenance"]["marketSources"] == ["coinbase"] else None

            btc = await eventually(crossed)
            assert btc is not None, "BTC/CAD never came from coinbase"
            usd = await rate(c, "USD/CAD")
            expected = 97011 * usd["provenance"]["marketMid"]
            assert abs(btc["provenance"]["marketMid"] - expected) / expected < 0.002
            assert any("BTC/USD" in leg for leg in btc["provenance"]["legs"])
            health = (await c.get("/api/rates/sources")).json()["data"]["BTC/CAD"]
            assert health["status"] == "live" and health["sourcesUsed"] == ["coinbase"]
        finally:
            await c.aclose()
            await rt.stop()


@pytest.fixture
async def push_daemon(make_config: Callable[..., Config]) -> Any:
    cfg = make_config(
        sources={"breaker_rejections": 3, "pairs": {"USD/CAD": {"sources": ["push"]}}}
    )
    rt, c = await started(cfg)
    try:
        yield rt, c
    finally:
        await c.aclose()
        await rt.stop()


async def test_push_over_http_and_websocket(push_daemon: tuple[Runtime, httpx.AsyncClient]) -> None:
    rt, c = push_daemon
    r = await c.post("/api/rates/push", json={"symbol": "USD", "priceCAD": 1.3650})
    assert r.status_code == 200, r.text
    assert (await rate(c, "USD/CAD"))["provenance"]["marketMid"] == 1.365
    async with connect(ws_url(rt, "hub", clientType="dashboard")) as ws:
        await ws.send(
            json.dumps({"type": "push_rate", "data": {"symbol": "USD/CAD", "priceCAD": 1.3660}})
        )
        ack = await recv_until(ws, lambda m: m["type"] == "push_ack")
        assert ack["data"]["accepted"] is True
    assert (await rate(c, "USD/CAD"))["provenance"]["marketMid"] == 1.366
    # a pair that does not take pushes, a bad price, a key that may not feed
    no = await c.post("/api/rates/push", json={"symbol": "EUR", "priceCAD": 1.5})
    assert no.status_code == 403 and "push" in no.json()["error"]
    bad = await c.post("/api/rates/push", json={"symbol": "USD", "priceCAD": -1})
    assert bad.status_code == 400
    key, secret = auth.new_key("terminal", auth.STORE, frozenset({"s1"}))
    rt.keys.add(key)
    refused = await c.post(
        "/api/rates/push",
        json={"symbol": "USD", "priceCAD": 1.36},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert refused.status_code == 403 and "feed" in refused.json()["error"]


async def test_breaker_opens_freezes_and_resets(
    push_daemon: tuple[Runtime, httpx.AsyncClient],
) -> None:
    rt, c = push_daemon
    assert (
        await c.post("/api/rates/push", json={"symbol": "USD", "priceCAD": 1.35})
    ).status_code == 200
    async with connect(ws_url(rt, "hub", clientType="dashboard")) as ws:
        for _ in range(3):  # three wild prices in a row: far outside the sanity band
            r = await c.post("/api/rates/push", json={"symbol": "USD", "priceCAD": 9.99})
            assert r.status_code == 400 and "refused" in r.json()["error"]
        ev = await recv_until(
            ws, lambda m: m["type"] == "data" and m["data"]["type"] == "rate_threshold_breach"
        )
        assert ev["data"]["kind"] == "circuit_breaker" and ev["data"]["state"] == "begun"
    usd = await rate(c, "USD/CAD")
    assert usd["stale"] is True and usd["provenance"]["marketMid"] == 1.35  # frozen
    lock = await c.post("/api/rates/lock", json={"currencyPair": "USD/CAD", "storeId": "s1"})
    assert lock.status_code == 503
    health = (await c.get("/api/rates/sources")).json()["data"]["USD/CAD"]
    assert health["breakerOpen"] is True
    r = await c.post("/api/rates/sources/USD/CAD/reset", json={"reason": "feed fixed"})
    assert r.status_code == 200 and r.json()["data"]["USD/CAD"]["breakerOpen"] is False
    await asyncio.sleep(0.1)  # the breaker events are written in the background
    types = [a["type"] for a in (await c.get("/api/audit", params={"order": "asc"})).json()["data"]]
    assert "breaker_opened" in types and "breaker_reset" in types

"""The HTTP API against a real server on 127.0.0.1 port 0."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
GUIDE_BODY = {
    "currencyPair": "USD/CAD",
    "buyRate": 1.37,
    "sellRate": 1.33,
    "source": "manual",
    "storeId": "store123",
}


@pytest.fixture
async def api(runtime: Any) -> Any:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.api_port}") as client:
        yield client


async def test_healthz_needs_no_key(api: httpx.AsyncClient) -> None:
    r = await api.get("/healthz")
    assert r.status_code == 200
    assert r.json()["success"] is True


async def test_get_rates_envelope_and_shape(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/rates/get", params={"storeId": "store123"}, headers=AUTH)
    body = r.json()
    assert r.status_code == 200
    assert set(body) >= {"success", "data", "error", "timestamp"}
    pairs = {rate["currencyPair"] for rate in body["data"]}
    assert pairs == {"USD/CAD", "EUR/CAD", "GBP/CAD", "BTC/CAD", "ETH/CAD"}
    for rate in body["data"]:
        assert rate["sellRate"] < rate["rate"] < rate["buyRate"]
        for field in ("baseCurrency", "targetCurrency", "spread", "source", "timestamp", "storeId"):
            assert field in rate


async def test_guide_set_body_is_accepted_for_that_store_only(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/rates/set", json=GUIDE_BODY, headers=AUTH)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert (data["buyRate"], data["sellRate"], data["storeId"]) == (1.37, 1.33, "store123")
    assert data["provenance"]["override"]["reason"] == "no reason given"
    mine = await api.get("/api/rates/get", params={"storeId": "store123"}, headers=AUTH)
    other = await api.get("/api/rates/get", params={"storeId": "store999"}, headers=AUTH)
    usd = {
        r["storeId"]: r
        for r in mine.json()["data"] + other.json()["data"]
        if r["currencyPair"] == "USD/CAD"
    }
    assert usd["store123"]["buyRate"] == 1.37
    assert usd["store999"]["source"] == "simulated"


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({**GUIDE_BODY, "buyRate": 1.33, "sellRate": 1.37}, 400, "must be greater than sellRate"),
        ({**GUIDE_BODY, "buyRate": 0, "sellRate": -1}, 400, "positive"),
        ({**GUIDE_BODY, "currencyPair": "XYZ/CAD"}, 400, "configured pairs are"),
        ({**GUIDE_BODY, "validUntil": "2001-01-01T00:00:00Z"}, 400, "in the past"),
        ({**GUIDE_BODY, "bogus": 1}, 400, "unknown field"),
        ({"buyRate": 1.37}, 400, "currencyPair"),
    ],
)
async def test_bad_input_is_rejected_and_changes_nothing(
    api: httpx.AsyncClient, body: dict[str, Any], status: int, needle: str
) -> None:
    before = (await api.get("/api/rates/get", params={"storeId": "store123"}, headers=AUTH)).json()
    r = await api.post("/api/rates/set", json=body, headers=AUTH)
    assert r.status_code == status
    assert needle in r.json()["error"]
    assert r.json()["success"] is False
    overrides = (await api.get("/api/rates/overrides", headers=AUTH)).json()["data"]
    assert overrides == []
    after = (await api.get("/api/rates/get", params={"storeId": "store123"}, headers=AUTH)).json()
    assert [x["source"] for x in after["data"]] == [x["source"] for x in before["data"]]


async def test_malformed_json(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/rates/set", content=b'{"currencyPair": ', headers=AUTH)
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}]
)
async def test_missing_or_wrong_key(api: httpx.AsyncClient, headers: dict[str, str]) -> None:
    for path in ("/api/rates/get", "/api/rates/market", "/api/system/status"):
        r = await api.get(path, headers=headers)
        assert r.status_code == 401
        assert r.json()["code"] == "unauthorized"
    r = await api.post("/api/rates/set", json=GUIDE_BODY, headers=headers)
    assert r.status_code == 401


async def test_market_and_status(api: httpx.AsyncClient) -> None:
    market = (await api.get("/api/rates/market", headers=AUTH)).json()["data"]
    usd = next(q for q in market if q["currencyPair"] == "USD/CAD")
    assert 1.2 < usd["rate"] < 1.5
    status = (await api.get("/api/system/status", headers=AUTH)).json()["data"]
    assert set(status) >= {"websocketHub", "rateEngine", "integration"}


async def test_openapi_is_served(api: httpx.AsyncClient) -> None:
    r = await api.get("/openapi.json")
    assert "/api/rates/set" in r.json()["paths"]

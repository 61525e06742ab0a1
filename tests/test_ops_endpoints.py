"""/metrics (Prometheus text format) and /readyz against a real daemon."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY, FakeClock
from tests.test_ws_hub import ws_url

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_metrics_are_prometheus_text(runtime: Runtime) -> None:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{runtime.api_port}", headers=AUTH
    ) as c:
        body = {"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33, "storeId": "s1"}
        assert (await c.post("/api/rates/set", json=body)).status_code == 200
        async with connect(ws_url(runtime, "hub", clientType="store_os", storeId="s1")):
            r = await c.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert families["ratehub_overrides_set"].samples[0].value == 1
    assert families["ratehub_overrides_active"].samples[0].value == 1
    conns = {s.labels["client_type"]: s.value for s in families["ratehub_ws_connections"].samples}
    assert conns == {"store_os": 1}
    pairs = {s.labels["pair"] for s in families["ratehub_market_age_seconds"].samples}
    assert "USD/CAD" in pairs
    for name in ("ratehub_ws_frames", "ratehub_ticks_accepted", "ratehub_db_write_ops"):
        assert name in families


async def test_readyz(runtime: Runtime) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.api_port}") as c:
        r = await c.get("/readyz")
        assert r.status_code == 200 and r.json() == {"ready": True, "problems": []}
        assert (await c.get("/healthz")).status_code == 200


async def test_readyz_reports_stale_market_data(make_config: object) -> None:
    clock = FakeClock()
    rt = Runtime(make_config(), clock=clock)  # type: ignore[operator, arg-type]
    await rt.start()
    try:
        clock.advance(3600)  # no tick for an hour: every pair is stale
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}") as c:
            r = await c.get("/readyz")
        assert r.status_code == 503
        assert any("stale" in p for p in r.json()["problems"])
    finally:
        await rt.stop()

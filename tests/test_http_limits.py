"""HTTP limits and transport: the per-key rate limit (with a fake clock), CORS from
CORS_ORIGINS, and the security headers on every response, whatever its status."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ratehubd.config import Config
from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY, FakeClock

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


@pytest.fixture
async def limited(
    make_config: Callable[..., Config], clock: FakeClock
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    cfg = make_config(security={"requests_per_second": 2, "burst": 3})
    rt = Runtime(cfg, clock=clock)  # type: ignore[arg-type]
    await rt.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}") as c:
            yield rt, c
    finally:
        await rt.stop()


async def test_rate_limit_per_key_with_retry_after(
    limited: tuple[Runtime, httpx.AsyncClient], clock: FakeClock
) -> None:
    rt, c = limited
    r = await c.post("/api/keys", json={"name": "dash", "role": "read-only"}, headers=AUTH)
    other = {"Authorization": f"Bearer {r.json()['data']['secret']}"}
    for _ in range(2):  # the burst of 3, the key creation included
        assert (await c.get("/api/rates/market", headers=AUTH)).status_code == 200
    refused = await c.get("/api/rates/market", headers=AUTH)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"  # half a token short at 2/s: 0.5 s, rounded up
    body = refused.json()
    assert body["code"] == "rate_limited" and "at most 2/s (burst 3)" in body["error"]
    assert {k: refused.headers[k] for k in SECURITY} == SECURITY
    # another key has its own bucket
    assert (await c.get("/api/rates/market", headers=other)).status_code == 200
    clock.advance(0.5)  # one token back
    assert (await c.get("/api/rates/market", headers=AUTH)).status_code == 200
    assert (await c.get("/api/rates/market", headers=AUTH)).status_code == 429
    # no key at all is a 401, not a 429; /healthz is never limited
    assert (await c.get("/api/rates/market")).status_code == 401
    for _ in range(10):
        assert (await c.get("/healthz")).status_code == 200
    assert rt.limiter.refused == 2


async def test_reload_applies_new_limits(
    limited: tuple[Runtime, httpx.AsyncClient], make_config: Callable[..., Config]
) -> None:
    rt, c = limited
    for _ in range(3):
        await c.get("/api/rates/market", headers=AUTH)
    assert (await c.get("/api/rates/market", headers=AUTH)).status_code == 429
    rt.reload(make_config(security={"requests_per_second": 0}))  # 0: no limit
    for _ in range(20):
        assert (await c.get("/api/rates/market", headers=AUTH)).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/healthz", {}, 200),
        ("GET", "/api/rates/get", AUTH, 200),
        ("GET", "/api/rates/get", {}, 401),
        ("GET", "/api/audit", {"Authorization": "Bearer nope"}, 401),
        ("GET", "/api/nothing-here", AUTH, 404),
        ("POST", "/api/rates/set", AUTH, 400),
        ("GET", "/openapi.json", {}, 200),
    ],
)
async def test_security_headers_on_every_response(
    runtime: Runtime, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.api_port}") as c:
        r = await c.request(method, path, headers=headers)
    assert r.status_code == status
    assert {k: r.headers.get(k) for k in SECURITY} == SECURITY
    assert "strict-transport-security" not in r.headers  # only with TLS


async def test_security_headers_on_hub_port_refusals(runtime: Runtime) -> None:
    url = f"ws://127.0.0.1:{runtime.hub_port}/api/rates/websocket"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    response = refused.value.response
    assert response.status_code == 401
    assert {k: response.headers.get(k) for k in SECURITY} == SECURITY


async def cors(c: httpx.AsyncClient, origin: str) -> tuple[httpx.Response, httpx.Response]:
    preflight = await c.options(
        "/api/rates/set",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    get = await c.get("/api/rates/get", headers={**AUTH, "Origin": origin})
    return preflight, get


async def test_cors_from_cors_origins(make_config: Callable[..., Config]) -> None:
    rt = Runtime(make_config(env={"CORS_ORIGINS": "http://localhost:3000,http://localhost:3001"}))
    await rt.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}") as c:
            preflight, get = await cors(c, "http://localhost:3001")
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == "http://localhost:3001"
            assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
            assert get.status_code == 200
            assert get.headers["access-control-allow-origin"] == "http://localhost:3001"
            preflight, get = await cors(c, "https://evil.example")
            assert "access-control-allow-origin" not in preflight.headers
            assert get.status_code == 403 and "CORS_ORIGINS" in get.json()["error"]
            assert "access-control-allow-origin" not in get.headers
            no_browser = await c.get("/api/rates/get", headers=AUTH)  # curl sends no Origin
            assert no_browser.status_code == 200
    finally:
        await rt.stop()


async def test_cors_allows_any_origin_when_unset(runtime: Runtime) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.api_port}") as c:
        preflight, get = await cors(c, "http://anywhere.example")
    assert preflight.status_code == 200 and get.status_code == 200
    assert get.headers["access-control-allow-origin"] == "*"
    assert "retry-after" in get.headers["access-control-expose-headers"].lower()

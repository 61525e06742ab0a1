"""The WebSocket hub against a real daemon on 127.0.0.1, on both listeners:
the API port (``/api/rates/websocket``, uvicorn handing the upgrade to the hub's
endpoint) and the hub port (WEBSOCKET_PORT)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ratehubd.config import Config
from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY, timeout

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
LISTENERS = ["api", "hub"]


def ws_url(rt: Runtime, listener: str, **query: str) -> str:
    port = rt.api_port if listener == "api" else rt.hub_port
    qs = "&".join(f"{k}={v}" for k, v in {"token": ADMIN_KEY, **query}.items())
    return f"ws://127.0.0.1:{port}/api/rates/websocket?{qs}"


async def recv_until(
    ws: ClientConnection, pred: Callable[[dict[str, Any]], bool], within: float = 5
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout(within)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("expected message did not arrive in time")
        msg = json.loads(await asyncio.wait_for(ws.recv(), left))
        if pred(msg):
            return msg


def is_rate_update_dashboard(m: dict[str, Any]) -> bool:
    return m["type"] == "data" and m["data"]["type"] == "rate_update"


def is_rate_update_store(m: dict[str, Any]) -> bool:
    return m["type"] == "rate_update"


async def set_rate(rt: Runtime, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}") as c:
        return await c.post("/api/rates/set", json=body, headers=AUTH)


@pytest.mark.parametrize("listener", LISTENERS)
async def test_guide_dashboard_snippet(runtime: Runtime, listener: str) -> None:
    async with connect(ws_url(runtime, listener, clientType="dashboard")) as ws:
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "welcome"
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "data": {
                        "symbols": ["USD/CAD", "EUR/CAD", "GBP/CAD", "BTC/CAD", "ETH/CAD"],
                        "subscriptionType": "market_data",
                        "frequency": 30000,
                    },
                    "timestamp": int(time.time() * 1000),
                }
            )
        )
        msg = await recv_until(ws, is_rate_update_dashboard)
        rates = msg["data"]["rates"]
        assert {r["currencyPair"] for r in rates} == {
            "USD/CAD",
            "EUR/CAD",
            "GBP/CAD",
            "BTC/CAD",
            "ETH/CAD",
        }
        assert {"seq", "epoch"} <= set(msg)


@pytest.mark.parametrize("listener", LISTENERS)
async def test_store_terminal_gets_its_override_fast(runtime: Runtime, listener: str) -> None:
    url = ws_url(runtime, listener, clientType="store_os", storeId="store123")
    async with connect(url) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "rate_subscribe",
                    "data": {
                        "currencies": ["USD", "EUR", "GBP", "BTC", "ETH"],
                        "storeId": "store123",
                        "includeMarketData": False,
                        "rateType": "both",
                    },
                }
            )
        )
        snap = await recv_until(ws, lambda m: is_rate_update_store(m) and m["data"].get("snapshot"))
        # the SmartCalculator reads baseCurrency, targetCurrency and rate
        for r in snap["data"]["rates"]:
            assert f"{r['baseCurrency']}{r['targetCurrency']}" and r["rate"] > 0
        body = {"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33, "storeId": "store123"}
        t0 = time.monotonic()
        assert (await set_rate(runtime, body)).status_code == 200
        msg = await recv_until(
            ws,
            lambda m: (
                is_rate_update_store(m)
                and any(
                    r["currencyPair"] == "USD/CAD" and r["buyRate"] == 1.37
                    for r in m["data"]["rates"]
                )
            ),
        )
        elapsed = time.monotonic() - t0
        assert msg["data"]["rates"][0]["storeId"] == "store123"
        assert elapsed < timeout(1.0)  # generous; the benchmark measures the real figure


async def test_store_override_does_not_reach_other_stores(runtime: Runtime) -> None:
    async with connect(ws_url(runtime, "hub", clientType="store_os", storeId="other")) as ws:
        await recv_until(ws, lambda m: is_rate_update_store(m) and m["data"].get("snapshot"))
        body = {"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33, "storeId": "store123"}
        assert (await set_rate(runtime, body)).status_code == 200
        runtime.pump.tick()
        with pytest.raises(asyncio.TimeoutError):
            await recv_until(
                ws,
                lambda m: (
                    m["type"] == "rate_override_set"
                    or (
                        is_rate_update_store(m)
                        and any(r["buyRate"] == 1.37 for r in m["data"]["rates"])
                    )
                ),
                within=0.3,
            )


@pytest.mark.parametrize("listener", LISTENERS)
async def test_ping_pong_and_garbage(runtime: Runtime, listener: str) -> None:
    async with connect(ws_url(runtime, listener, clientType="store_os")) as ws:
        await ws.send("not json at all")
        err = await recv_until(ws, lambda m: m["type"] == "error")
        assert "accepted types" in err["data"]["message"]
        await ws.send(json.dumps({"type": "launch_missiles", "data": {}}))
        err = await recv_until(ws, lambda m: m["type"] == "error")
        assert err["data"]["code"] == "unknown_type"
        await ws.send(json.dumps({"type": "ping", "data": {"timestamp": 42}}))
        pong = await recv_until(ws, lambda m: m["type"] == "pong")
        assert pong["data"]["clientTimestamp"] == 42
        assert pong["data"]["serverTime"] > 0


@pytest.mark.parametrize("listener", LISTENERS)
async def test_binary_frame_closes_only_that_connection(runtime: Runtime, listener: str) -> None:
    async with connect(ws_url(runtime, listener, clientType="store_os")) as good:
        async with connect(ws_url(runtime, listener, clientType="store_os")) as bad:
            await bad.send(b"\x00\x01")
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(bad.recv(), timeout(5))
            assert info.value.rcvd is not None and info.value.rcvd.code == 1003
        await good.send(json.dumps({"type": "ping", "data": {}}))
        await recv_until(good, lambda m: m["type"] == "pong")


@pytest.mark.parametrize("listener", LISTENERS)
async def test_fragmented_and_whole_messages_are_answered_in_order(
    runtime: Runtime, listener: str
) -> None:
    """Whole text messages are handled in the protocol callback, fragmented ones by the
    connection's task: a fragmented message first must still be answered first."""
    async with connect(ws_url(runtime, listener, clientType="store_os")) as ws:
        await ws.send(['{"type": "ping", ', '"data": {"timestamp": 1}}'])
        for n in (2, 3):
            await ws.send(json.dumps({"type": "ping", "data": {"timestamp": n}}))
        got = [
            (await recv_until(ws, lambda m: m["type"] == "pong"))["data"]["clientTimestamp"]
            for _ in range(3)
        ]
        assert got == [1, 2, 3]


@pytest.mark.parametrize("listener", LISTENERS)
async def test_invalid_utf8_closes_with_1007(runtime: Runtime, listener: str) -> None:
    async with connect(ws_url(runtime, listener, clientType="store_os")) as ws:
        await ws.send(b'{"type": "ping\xff"}', text=True)
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), timeout(5))
        assert info.value.rcvd is not None and info.value.rcvd.code == 1007


@pytest.mark.parametrize("listener", LISTENERS)
async def test_oversized_frame_closes_with_1009(runtime: Runtime, listener: str) -> None:
    async with connect(ws_url(runtime, listener, clientType="store_os"), max_size=None) as ws:
        await ws.send(json.dumps({"type": "ping", "data": {"pad": "x" * 70_000}}))
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(ws.recv(), timeout(5))
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009


@pytest.mark.parametrize("listener", LISTENERS)
@pytest.mark.parametrize(("token", "status"), [(None, 401), ("wrong", 401)])
async def test_handshake_needs_a_key(
    runtime: Runtime, listener: str, token: str | None, status: int
) -> None:
    port = runtime.api_port if listener == "api" else runtime.hub_port
    url = f"ws://127.0.0.1:{port}/api/rates/websocket?clientType=store_os"
    if token:
        url += f"&token={token}"
    with pytest.raises(InvalidStatus) as info:
        async with connect(url):
            pass
    assert info.value.response.status_code == status


async def test_key_in_authorization_header(runtime: Runtime) -> None:
    url = f"ws://127.0.0.1:{runtime.hub_port}/api/rates/websocket?clientType=dashboard"
    async with connect(url, additional_headers=AUTH) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"


async def test_bad_client_type_is_refused(runtime: Runtime) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(runtime, "hub", clientType="toaster")):
            pass
    assert info.value.response.status_code == 400


@pytest.mark.parametrize("last_seq", ["-5", "abc", str(2**64)])
async def test_a_bad_last_seq_is_refused(runtime: Runtime, last_seq: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(runtime, "hub", clientType="store_os", lastSeq=last_seq)):
            pass
    assert info.value.response.status_code == 400
    assert b"lastSeq must be a non-negative integer" in info.value.response.body


async def test_heartbeat_arrives(make_config: Callable[..., Config]) -> None:
    rt = Runtime(make_config(env={"WEBSOCKET_HEARTBEAT_INTERVAL": "200"}))
    await rt.start()
    try:
        async with connect(ws_url(rt, "hub", clientType="dashboard")) as ws:
            beat = await recv_until(ws, lambda m: m["type"] == "heartbeat", within=3)
            assert beat["data"]["epoch"] == rt.hub.epoch
    finally:
        await rt.stop()


async def test_resume_after_reconnect_replays_missed_events(runtime: Runtime) -> None:
    url = ws_url(runtime, "hub", clientType="store_os", storeId="store123")
    async with connect(url) as ws:
        welcome = await recv_until(ws, lambda m: m["type"] == "welcome")
        last_seq, epoch = welcome["data"]["seq"], welcome["data"]["epoch"]
    body = {"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33, "storeId": "store123"}
    assert (await set_rate(runtime, body)).status_code == 200
    async with connect(url + f"&lastSeq={last_seq}&epoch={epoch}") as ws:
        missed = await recv_until(ws, lambda m: m["type"] == "rate_override_set")
        assert missed["seq"] > last_seq
        snap = await recv_until(ws, lambda m: is_rate_update_store(m) and m["data"].get("snapshot"))
        assert snap["data"]["recovered"] is True
        assert snap["data"]["missedEvents"] == 1


async def test_resume_with_another_epoch_says_not_recovered(runtime: Runtime) -> None:
    url = ws_url(runtime, "hub", clientType="store_os", storeId="s1", lastSeq="0", epoch="deadbeef")
    async with connect(url) as ws:
        snap = await recv_until(ws, lambda m: is_rate_update_store(m) and m["data"].get("snapshot"))
        assert snap["data"]["recovered"] is False
        assert snap["data"]["gap"]["reason"] == "epoch changed"


@pytest.mark.parametrize("listener", LISTENERS)
async def test_guide_api_reference_snippet(runtime: Runtime, listener: str) -> None:
    """The guide's "WebSocket Connection" example connects as store_os, sends `subscribe`
    and reads `type: "data"` with `data.type === "rate_update"`: subscribe picks that shape."""
    url = ws_url(runtime, listener, clientType="store_os", storeId="store123")
    async with connect(url) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "data": {
                        "symbols": ["USDCAD", "EURCAD", "BTCUSD"],
                        "subscriptionType": "rates",
                        "storeId": "store123",
                    },
                    "timestamp": int(time.time() * 1000),
                }
            )
        )
        ack = await recv_until(ws, lambda m: m["type"] == "subscribed")
        assert ack["data"]["unknownSymbols"] == ["BTCUSD"]  # not a configured pair
        msg = await recv_until(ws, is_rate_update_dashboard)
        assert {r["currencyPair"] for r in msg["data"]["rates"]} == {"USD/CAD", "EUR/CAD"}
        body = {"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33, "storeId": "store123"}
        assert (await set_rate(runtime, body)).status_code == 200
        await recv_until(
            ws,
            lambda m: (
                is_rate_update_dashboard(m)
                and any(r["buyRate"] == 1.37 for r in m["data"]["rates"])
            ),
        )


async def test_api_port_upgrades_only_the_hub_path(runtime: Runtime) -> None:
    """uvicorn hands every upgrade on the API port to the hub's endpoint: other paths get
    404 with where the hub is, and plain HTTP on the same port is untouched."""
    for path in ("/", "/api/rates/get", "/ws"):
        url = f"ws://127.0.0.1:{runtime.api_port}{path}?token={ADMIN_KEY}"
        with pytest.raises(InvalidStatus) as info:
            async with connect(url):
                pass
        assert info.value.response.status_code == 404
        assert b"/api/rates/websocket" in info.value.response.body
    async with connect(ws_url(runtime, "api", clientType="dashboard")) as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.api_port}") as c:
            r = await c.get("/api/rates/get", headers=AUTH)
        assert r.status_code == 200

"""Hub limits and failure modes over real sockets: origin, connection limits, floods,
dead and stalled clients, conflation at a fast feed, resume across a restart."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ratehubd.config import Config
from ratehubd.hub.session import CLOSE_RATE_LIMITED, CLOSE_SLOW_CONSUMER
from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY, timeout
from tests.test_ws_hub import recv_until, ws_url

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def started(cfg: Config) -> Runtime:
    rt = Runtime(cfg)
    await rt.start()
    return rt


async def test_origin_outside_the_allowlist_is_refused_before_upgrade(
    make_config: Callable[..., Config],
) -> None:
    rt = await started(make_config(env={"CORS_ORIGINS": "https://dash.example"}))
    try:
        for port in (rt.api_port, rt.hub_port):
            url = f"ws://127.0.0.1:{port}/api/rates/websocket?token={ADMIN_KEY}"
            with pytest.raises(InvalidStatus) as info:
                async with connect(url, origin="https://evil.example"):  # type: ignore[arg-type]
                    pass
            assert info.value.response.status_code == 403
            async with connect(url, origin="https://dash.example") as ws:  # type: ignore[arg-type]
                assert json.loads(await ws.recv())["type"] == "welcome"
    finally:
        await rt.stop()


async def test_connection_limits_per_store(make_config: Callable[..., Config]) -> None:
    rt = await started(make_config(hub={"max_connections_per_store": 2}))
    try:
        url = ws_url(rt, "hub", clientType="store_os", storeId="s1")
        async with connect(url), connect(url):
            with pytest.raises(InvalidStatus) as info:
                async with connect(url):
                    pass
            assert info.value.response.status_code == 429
            async with connect(ws_url(rt, "api", clientType="store_os", storeId="s2")):
                pass  # another store is not affected
        async with connect(url):  # closing frees the slots
            pass
    finally:
        await rt.stop()


async def test_flood_gets_an_error_then_a_close(make_config: Callable[..., Config]) -> None:
    rt = await started(make_config(hub={"messages_per_second": 5, "message_burst": 5}))
    try:
        async with connect(ws_url(rt, "hub", clientType="store_os")) as ws:
            codes = []
            with pytest.raises(ConnectionClosed) as info:
                for _ in range(200):
                    await ws.send(json.dumps({"type": "ping", "data": {}}))
                while True:
                    msg = json.loads(await asyncio.wait_for(ws.recv(), timeout(5)))
                    if msg["type"] == "error":
                        codes.append(msg["data"]["code"])
            assert "rate_limited" in codes
            assert info.value.rcvd is not None and info.value.rcvd.code == CLOSE_RATE_LIMITED
    finally:
        await rt.stop()


def raw_upgrade(port: int, path: str, rcvbuf: int | None = None) -> socket.socket:
    """A client that completes the handshake and then neither reads nor answers pings."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    sock.settimeout(timeout(10))
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


async def test_dead_client_is_detected_and_cleaned_up(make_config: Callable[..., Config]) -> None:
    rt = await started(
        make_config(hub={"ping_interval_s": 0.2, "ping_timeout_s": 0.3, "close_timeout_s": 0.3})
    )
    try:
        path = f"/api/rates/websocket?token={ADMIN_KEY}&clientType=store_os&storeId=dead"
        sock = await asyncio.to_thread(raw_upgrade, rt.hub_port or 0, path)
        deadline = time.monotonic() + timeout(10)
        while not rt.hub.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert len(rt.hub.sessions) == 1
        t0 = time.monotonic()
        # A half-dead client: the socket stays open, nothing answers the pings.
        while rt.hub.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not rt.hub.sessions, "the dead client was not cleaned up"
        assert time.monotonic() - t0 >= 0.2  # at least one ping interval went by
        sock.close()
    finally:
        await rt.stop()


@pytest.mark.parametrize("listener", ["api", "hub"])
async def test_a_client_that_never_answers_a_close_is_cut_off(
    make_config: Callable[..., Config], listener: str
) -> None:
    """The hub closes a session (a revoked key here; drain and slow consumers alike): a
    client that never answers the close is dropped after close_timeout_s, not at the
    next ping, and its session and its slot under the connection limits go with it."""
    rt = await started(make_config(hub={"ping_interval_s": 60, "close_timeout_s": 0.3}))
    try:
        port = rt.api_port if listener == "api" else rt.hub_port
        path = f"/api/rates/websocket?token={ADMIN_KEY}&clientType=store_os&storeId=mute"
        sock = await asyncio.to_thread(raw_upgrade, port or 0, path)
        deadline = time.monotonic() + timeout(10)
        while not rt.hub.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        (session,) = rt.hub.sessions.values()
        assert rt.pump.close_key(session.key_id, "API key revoked") == 1
        while rt.hub.sessions and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not rt.hub.sessions, "the mute client's session outlived close_timeout_s"
        assert time.monotonic() < deadline
        sock.close()
    finally:
        await rt.stop()


async def test_stalled_client_is_closed_and_others_keep_flowing(
    make_config: Callable[..., Config],
) -> None:
    rt = await started(
        make_config(
            feed={"update_frequency_ms": 10, "crypto_speedup": 1},
            hub={"queue_frames": 8, "send_buffer_bytes": 4096, "ping_interval_s": 60},
        )
    )
    try:
        path = f"/api/rates/websocket?token={ADMIN_KEY}&clientType=store_os&storeId=slow"
        stalled = await asyncio.to_thread(raw_upgrade, rt.hub_port or 0, path, 2048)
        api = httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}", headers=AUTH)
        async with connect(ws_url(rt, "hub", clientType="store_os", storeId="fast")) as good, api:
            deadline = time.monotonic() + timeout(30)
            received = 0
            while rt.hub.stats.dropped == 0 and time.monotonic() < deadline:
                msg = json.loads(await asyncio.wait_for(good.recv(), timeout(5)))
                received += msg["type"] == "rate_update"
            assert rt.hub.stats.dropped > 0, "rate frames for the stalled client were not dropped"
            assert rt.hub.stats.slow_closes == 0  # superseded rates alone never close it
            # Events are never dropped: once they fill the queue, the client is closed.
            n = 0
            while rt.hub.stats.slow_closes == 0 and time.monotonic() < deadline:
                n += 1
                body = {"currencyPair": "USD/CAD", "buyRate": (1.37, 1.38)[n % 2], "sellRate": 1.33}
                r = await api.post("/api/rates/set", json={**body, "storeId": "slow"})
                assert r.status_code == 200
                msg = json.loads(await asyncio.wait_for(good.recv(), timeout(5)))
                received += msg["type"] == "rate_update"
            assert rt.hub.stats.slow_closes == 1, "the stalled client was never closed"
            before = received
            for _ in range(5):  # the healthy client keeps getting updates
                msg = json.loads(await asyncio.wait_for(good.recv(), timeout(5)))
                received += msg["type"] == "rate_update"
            assert received > before
        marker = CLOSE_SLOW_CONSUMER.to_bytes(2, "big") + b"slow consumer; resume with lastSeq="
        # the close frame (code 4008 and the resume position) follows what was buffered
        assert marker in await asyncio.to_thread(read_until, stalled, marker)
        stalled.close()
    finally:
        await rt.stop()


async def test_fast_feed_is_conflated_to_the_window(make_config: Callable[..., Config]) -> None:
    # 5 pairs at 200 Hz: a client still gets at most one rates frame per 50 ms window
    rt = await started(make_config(feed={"update_frequency_ms": 10, "crypto_speedup": 2}))
    try:
        async with connect(ws_url(rt, "hub", clientType="store_os", storeId="s")) as ws:
            await recv_until(ws, lambda m: m["type"] == "rate_update")
            frames, t0 = 0, time.monotonic()
            latest: dict[str, Any] = {}
            while time.monotonic() - t0 < 1.0:
                msg = json.loads(await asyncio.wait_for(ws.recv(), timeout(5)))
                if msg["type"] == "rate_update":
                    frames += 1
                    latest.update({r["currencyPair"]: r for r in msg["data"]["rates"]})
            assert frames <= 22  # 20 windows a second, plus slack for the edges
            assert rt.hub.stats.conflated > 0
            rates = {r["currencyPair"]: r for r in rt.service.rates("s")}
            await asyncio.sleep(0.2)
            assert set(latest) == set(rates)
    finally:
        await rt.stop()


async def test_resume_across_a_daemon_restart(make_config: Callable[..., Config]) -> None:
    cfg = make_config()
    rt = await started(cfg)
    url = ws_url(rt, "hub", clientType="store_os", storeId="store123")
    async with connect(url) as ws:
        welcome = await recv_until(ws, lambda m: m["type"] == "welcome")
    last, epoch = welcome["data"]["seq"], welcome["data"]["epoch"]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}", headers=AUTH) as c:
        body = {"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33, "storeId": "store123"}
        assert (await c.post("/api/rates/set", json=body)).status_code == 200
    await rt.stop()
    rt = await started(cfg)
    try:
        async with connect(
            ws_url(
                rt, "hub", clientType="store_os", storeId="store123", lastSeq=str(last), epoch=epoch
            )
        ) as ws:
            missed = await recv_until(ws, lambda m: m["type"] == "rate_override_set")
            assert missed["data"]["buyRate"] == 1.37 and missed["epoch"] == epoch
            snap = await recv_until(
                ws, lambda m: m["type"] == "rate_update" and m["data"].get("snapshot")
            )
            assert snap["data"]["recovered"] is True
    finally:
        await rt.stop()


async def test_status_reports_hub_metrics(runtime: Runtime) -> None:
    async with connect(ws_url(runtime, "hub", clientType="dashboard")):
        st = runtime.status()["websocketHub"]
        assert st["connections"] == 1 and st["byClientType"] == {"dashboard": 1}
        assert {"messagesPerSecond", "framesPerSecond", "fanoutLatencyMs", "dropped"} <= set(st)

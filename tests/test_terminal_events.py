"""Alarms for screens showing an old rate: ``terminal_stale`` once when a confirming
terminal stops acknowledging the newest table, ``terminal_current`` once when it catches
up; to dashboards only, durable (seq), audited, and counted in ``/metrics``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from ratehubd.config import Config
from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY
from tests.test_ws_hub import recv_until

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def url(rt: Runtime, client: str) -> str:
    return (
        f"ws://127.0.0.1:{rt.api_port}/api/rates/websocket?token={ADMIN_KEY}"
        f"&clientType={client}&storeId=s1"
    )


def event(m: dict[str, Any]) -> dict[str, Any]:
    """A message's type and fields, in either dialect."""
    if m["type"] == "data":
        return dict(m["data"])
    return {"type": m["type"], **(m.get("data") or {})}


def is_(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: event(m)["type"] == kind


async def rate_frame(ws: ClientConnection) -> dict[str, Any]:
    return event(await recv_until(ws, is_("rate_update")))


async def test_a_frozen_terminal_is_announced_stale_once_and_current_once(
    make_config: Callable[..., Config],
) -> None:
    rt = Runtime(make_config(hub={"confirm_timeout_ms": 200}))
    await rt.start()
    base = f"http://127.0.0.1:{rt.api_port}"
    try:
        async with (
            httpx.AsyncClient(base_url=base, headers=AUTH) as api,
            connect(url(rt, "dashboard")) as dash,
            connect(url(rt, "store_os")) as term,
        ):
            snap = await rate_frame(term)
            await term.send(json.dumps({"type": "ack", "data": {"checksum": snap["checksum"]}}))
            body = {"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33, "storeId": "s1"}
            assert (await api.post("/api/rates/set", json=body)).status_code == 200
            stale = event(await recv_until(dash, is_("terminal_stale"), within=5))
            assert stale["storeId"] == "s1" and stale["ackChecksum"] == snap["checksum"]
            assert stale["keyName"] and stale["expectedChecksum"] != snap["checksum"]
            assert stale["since"].endswith("Z")
            await asyncio.sleep(0.6)  # still stale: no second announcement
            # The terminal catches up: it applies everything and confirms the newest.
            newest = snap
            while True:
                try:
                    newest = event(json.loads(await asyncio.wait_for(term.recv(), 0.3)))
                except TimeoutError:
                    break
                assert newest["type"] not in ("terminal_stale", "terminal_current")
            await term.send(json.dumps({"type": "ack", "data": {"checksum": newest["checksum"]}}))
            seen = []
            while True:
                m = event(await recv_until(dash, lambda m: "terminal" in event(m)["type"]))
                seen.append(m["type"])
                if m["type"] == "terminal_current":
                    break
            assert seen == ["terminal_current"]
            metrics = (await api.get("/metrics")).text
            assert 'ratehub_terminals{state="current"} 1.0' in metrics
            assert 'ratehub_terminals{state="unconfirmed"} 1.0' in metrics  # the dashboard
            got = await api.get("/api/audit", params={"type": "terminal_stale"})
            records = got.json()["data"]
            assert len(records) == 1 and records[0]["store_id"] == "s1"
    finally:
        await rt.stop()

"""The hub on the API port (``/api/rates/websocket``), through ASGI.

Browsers reach the hub on the API host, so the endpoint must live there too.
ASGI sends are coroutines, so each connection gets a small sender task that
drains what the pump hands it; ``writable`` is false while that task is behind.
The ``WEBSOCKET_PORT`` listener (``ws_server.py``) is the faster path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

from daemon.adapters.ws_common import WS_PATH, handshake
from daemon.adapters.ws_pump import HubPump
from daemon.auth import KeyRing
from daemon.errors import RatehubError
from daemon.hub.session import Frame

BACKLOG = 16  # frames waiting on the sender task before the connection counts as slow


class AsgiConn:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.pending: deque[str] = deque()
        self.wake = asyncio.Event()
        self.closing: tuple[int, str] | None = None
        self.task = asyncio.get_running_loop().create_task(self._sender())

    def writable(self) -> bool:
        return len(self.pending) < BACKLOG

    def write(self, frames: list[Frame]) -> None:
        self.pending.extend(f.text for f in frames)
        self.wake.set()

    def write_now(self, frame: Frame) -> bool:
        if len(self.pending) >= BACKLOG:
            return False
        self.pending.append(frame.text)
        self.wake.set()
        return True

    def close(self, code: int, reason: str) -> None:
        self.closing = (code, reason)
        self.wake.set()

    async def _sender(self) -> None:
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                while self.pending:
                    await self.ws.send_text(self.pending.popleft())
                if self.closing is not None:
                    await self.ws.close(*self.closing)
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            return


def add_hub_route(
    app: FastAPI, pump: HubPump, keys: KeyRing, allowed_origins: tuple[str, ...]
) -> None:
    @app.websocket(WS_PATH)
    async def hub_endpoint(ws: WebSocket) -> None:
        try:
            hs = handshake(dict(ws.query_params), dict(ws.headers), keys, allowed_origins)
            pump.admit(hs.key.id, hs.store_id)
        except RatehubError as exc:
            body = {"success": False, "error": exc.message, "code": exc.code}
            await ws.send_denial_response(JSONResponse(body, status_code=exc.status))
            return
        await ws.accept()
        conn = AsgiConn(ws)
        session = pump.attach(conn, hs.client_type, hs.store_id, hs.key.id, hs.last_seq, hs.epoch)
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                text = msg.get("text")
                if text is None:
                    conn.close(1003, "binary frames are not accepted; send JSON text")
                    break
                pump.receive(session.id, text)
        except WebSocketDisconnect:
            pass
        finally:
            pump.detach(session.id)
            if conn.closing is None:
                conn.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(conn.task, timeout=1.0)

"""The hub's own listener (``WEBSOCKET_PORT``) on the ``websockets`` server.

This is the fast path: frames go straight from the hub's outbox to the
connection's transport, the way ``websockets.broadcast`` writes, with the
payload encoded once per group (PERF-FLOOR.md).
"""

from __future__ import annotations

import json
import socket
import ssl as ssl_module
from http import HTTPStatus
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from daemon.adapters.http_security import HEADERS, HSTS
from daemon.adapters.ws_common import WS_PATH, Handshake, handshake
from daemon.adapters.ws_pump import HubPump
from daemon.auth import KeyRing
from daemon.errors import RatehubError
from daemon.hub.session import Frame

HIGH_WATER = 64 * 1024  # bytes waiting in the kernel-side buffer before we hold frames back


class WsConn:
    def __init__(self, connection: ServerConnection) -> None:
        self.c = connection

    def writable(self) -> bool:
        return self.c.transport.get_write_buffer_size() < HIGH_WATER

    def write(self, frames: list[Frame]) -> None:
        if self.c.protocol.state is not State.OPEN:
            return
        for f in frames:
            self.c.protocol.send_text(f.data)
        self.c.send_data()

    def write_now(self, frame: Frame) -> bool:
        c = self.c
        if c.transport.get_write_buffer_size() >= HIGH_WATER:
            return False
        if c.protocol.state is State.OPEN:
            c.protocol.send_text(frame.data)
            c.send_data()
        return True

    def close(self, code: int, reason: str) -> None:
        if self.c.protocol.state is State.OPEN:
            self.c.protocol.send_close(code, reason)
            self.c.send_data()


def _deny(exc: RatehubError) -> Response:
    body = json.dumps({"success": False, "error": exc.message, "code": exc.code}).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    status = HTTPStatus(exc.status)
    return Response(status.value, status.phrase, headers, body)


async def serve_hub(
    pump: HubPump,
    keys: KeyRing,
    allowed_origins: tuple[str, ...],
    host: str,
    port: int,
    *,
    max_size: int,
    ping_interval: float,
    ping_timeout: float,
    send_buffer: int = 0,
    close_timeout: float = 2.0,
    ssl: ssl_module.SSLContext | None = None,
) -> Server:
    accepted: dict[int, Handshake] = {}

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path not in (WS_PATH, "/"):
            return connection.respond(HTTPStatus.NOT_FOUND, f"the hub is at {WS_PATH}\n")
        try:
            hs = handshake(dict(parse_qsl(url.query)), request.headers, keys, allowed_origins)
            pump.admit(hs.key.id, hs.store_id)
        except RatehubError as exc:
            return _deny(exc)
        accepted[id(connection)] = hs
        return None

    def process_response(
        connection: ServerConnection, request: Request, response: Response
    ) -> Response:
        if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            for name, value in HEADERS:
                response.headers[name.decode()] = value.decode()
            if ssl is not None:
                response.headers[HSTS[0].decode()] = HSTS[1].decode()
        return response

    async def handler(connection: ServerConnection) -> None:
        hs = accepted.pop(id(connection))
        if send_buffer:
            sock = connection.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        session = pump.attach(
            WsConn(connection), hs.client_type, hs.store_id, hs.key.id, hs.last_seq, hs.epoch
        )
        try:
            async for message in connection:
                if isinstance(message, bytes):
                    await connection.close(1003, "binary frames are not accepted; send JSON text")
                    break
                pump.receive(session.id, message)
        except ConnectionClosed:
            pass
        finally:
            pump.detach(session.id)

    return await serve(
        handler,
        host,
        port,
        process_request=process_request,
        process_response=process_response,
        ssl=ssl,
        max_size=max_size,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        close_timeout=close_timeout,
        compression=None,
        server_header="ratehub",
    )

"""The hub's WebSocket endpoint, on the ``websockets`` asyncio connection.

One endpoint serves both listeners. On ``WEBSOCKET_PORT`` it is the server itself;
on the API port uvicorn parses the HTTP request and, for an upgrade, hands the
socket to ``HubEndpoint.upgrade`` (uvicorn's ``ws`` protocol class), so a browser
on the API host gets the same connection, the same checks and the same cost per
message as a terminal on the hub port: no ASGI in between.

Frames go straight from the hub to the connection's transport, the way
``websockets.broadcast`` writes, with the payload encoded once per group
(PERF-FLOOR.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import ssl as ssl_module
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import Server, ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import DATA_OPCODES, Opcode
from websockets.frames import Frame as WsFrame
from websockets.http11 import Request, Response
from websockets.protocol import Event, State
from websockets.server import ServerProtocol

from ratehubd.adapters.http_security import HEADERS, HSTS
from ratehubd.adapters.ws_common import WS_PATH, Handshake, handshake
from ratehubd.adapters.ws_pump import HubPump
from ratehubd.auth import KeyRing
from ratehubd.errors import RatehubError
from ratehubd.hub.session import Frame

log = logging.getLogger("ratehub.hub")

# Bytes waiting in the transport's buffer (the kernel's is full) before we hold frames
# back. asyncio's flow control tracks it for us: the transport pauses the connection
# above this mark and resumes it below a quarter of it (``connection.paused``).
HIGH_WATER = 64 * 1024
OPEN = State.OPEN  # a module global: cheaper than the enum lookup per client
OPEN_TIMEOUT = 10.0  # seconds for a client to finish the opening handshake


class WsConn:
    __slots__ = ("c", "protocol")

    def __init__(self, connection: ServerConnection) -> None:
        self.c = connection
        self.protocol = connection.protocol

    def writable(self) -> bool:
        return not self.c.paused

    def write(self, frames: list[Frame]) -> None:
        if self.protocol.state is not OPEN:
            return
        for f in frames:
            self.protocol.send_text(f.data)
        self.c.send_data()

    def write_now(self, frame: Frame) -> bool:
        """The hub's hot path, once per client per window: what
        ``websockets.broadcast`` does for each connection, plus the flow-control check."""
        c = self.c
        if c.paused:
            return False
        if self.protocol.state is OPEN:
            self.protocol.send_text(frame.data)
            c.send_data()
        return True

    def close(self, code: int, reason: str) -> None:
        """Send the close frame now (after whatever was written before it), then let
        websockets' ``close`` wait for the answer: a client that never answers is cut
        off after ``close_timeout`` (not at the next ping), and its session and its
        connection-limit slot go with it."""
        if self.protocol.state is OPEN:
            self.protocol.send_close(code, reason)
            self.c.send_data()
            task = asyncio.get_running_loop().create_task(self.c.close())
            _closing.add(task)
            task.add_done_callback(_closing.discard)


_closing: set[asyncio.Task[None]] = set()  # closes in flight (the loop keeps weak refs)


class HubConnection(ServerConnection):
    """A hub connection, and which request paths its listener answers.

    Once the client's session is attached (``on_text``), a whole text message is handed
    to the hub right in the protocol callback that parsed it: no queue, no wakeup of the
    connection's task. That is most of what a message from a client costs, and a
    confirming terminal sends one (``ack``) for every frame it gets. Anything else
    (a fragmented or binary message, invalid UTF-8) takes websockets' own path, the
    handler's ``async for``, and so does every later message of that connection, so
    messages are always handled in the order they came.
    """

    paths: tuple[str, ...] = (WS_PATH,)
    on_text: Callable[[str], None] | None = None
    _queued = False  # a message went to websockets' queue: keep the order, use it from now

    def process_event(self, event: Event) -> None:
        on_text = self.on_text
        if on_text is not None and not self._queued and isinstance(event, WsFrame):
            if event.opcode is Opcode.TEXT and event.fin:
                try:
                    text = str(event.data, "utf-8")
                except UnicodeDecodeError:
                    pass  # websockets' path closes with 1007
                else:
                    try:
                        on_text(text)
                    except Exception:
                        log.error("hub message handling failed", exc_info=True)
                        self.transport.abort()
                    return
            if event.opcode in DATA_OPCODES:
                self._queued = True
        super().process_event(event)


class _Server(Server):
    """websockets' server bookkeeping (handler tasks, open connections), serving
    whether or not the hub has a port of its own."""

    serving = True

    def is_serving(self) -> bool:
        return self.serving


def _deny(exc: RatehubError) -> Response:
    body = json.dumps({"success": False, "error": exc.message, "code": exc.code}).encode()
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    status = HTTPStatus(exc.status)
    return Response(status.value, status.phrase, headers, body)


class HubEndpoint:
    def __init__(
        self,
        pump: HubPump,
        keys: KeyRing,
        allowed_origins: tuple[str, ...],
        *,
        max_size: int,
        ping_interval: float,
        ping_timeout: float,
        close_timeout: float = 2.0,
        send_buffer: int = 0,
        tls: bool = False,
    ) -> None:
        self.pump = pump
        self.keys = keys
        self.allowed_origins = allowed_origins
        self.max_size = max_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.send_buffer = send_buffer
        self.tls = tls
        self.server = _Server(self._no_listener, self._run)
        self._accepted: dict[int, Handshake] = {}

    # -- the two ways in --------------------------------------------------------------------

    def connection(self, paths: tuple[str, ...] = (WS_PATH, "/")) -> HubConnection:
        """A new connection: an asyncio protocol that runs the handshake and the client."""
        protocol = ServerProtocol(max_size=self.max_size, logger=log)
        conn = HubConnection(
            protocol,
            self.server,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            close_timeout=self.close_timeout,
            write_limit=HIGH_WATER,
        )
        conn.paths = paths
        return conn

    def upgrade(self, **_uvicorn: Any) -> HubConnection:
        """uvicorn's ``ws`` protocol class: it calls this for an upgrade request on the
        API port, then replays the request to the connection and hands it the socket."""
        return self.connection(paths=(WS_PATH,))

    async def listen(
        self, host: str, port: int, ssl: ssl_module.SSLContext | None = None
    ) -> asyncio.Server:
        """The hub's own port (``WEBSOCKET_PORT``)."""
        loop = asyncio.get_running_loop()
        kwargs: dict[str, Any] = {}
        if ssl is not None:
            kwargs = {"ssl_handshake_timeout": OPEN_TIMEOUT, "ssl_shutdown_timeout": 2.0}
        listener = await loop.create_server(self.connection, host, port, ssl=ssl, **kwargs)
        self.server.server = listener
        return listener

    async def _no_listener(self) -> asyncio.Server:
        raise RuntimeError("HubEndpoint.listen opens the hub's own port")

    def close(self) -> None:
        """Stop: refuse upgrades (503), close the own port and every connection (1001;
        the drain has told each client to come back with 1012 before)."""
        self.server.serving = False
        if hasattr(self.server, "server"):
            self.server.close()

    async def wait_closed(self) -> None:
        if hasattr(self.server, "server"):
            await self.server.wait_closed()
        elif self.server.handler_tasks:
            await asyncio.wait(self.server.handler_tasks)

    # -- one connection ---------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        paths = connection.paths if isinstance(connection, HubConnection) else (WS_PATH,)
        if url.path not in paths:
            return connection.respond(HTTPStatus.NOT_FOUND, f"the hub is at {WS_PATH}\n")
        try:
            hs = handshake(
                dict(parse_qsl(url.query)), request.headers, self.keys, self.allowed_origins
            )
            self.pump.admit(hs.key.id, hs.store_id)
        except RatehubError as exc:
            return _deny(exc)
        self._accepted[id(connection)] = hs
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response:
        if response.status_code != HTTPStatus.SWITCHING_PROTOCOLS:
            for name, value in HEADERS:
                response.headers[name.decode()] = value.decode()
            if self.tls:
                response.headers[HSTS[0].decode()] = HSTS[1].decode()
        return response

    async def _run(self, connection: ServerConnection) -> None:
        """What ``websockets.asyncio.server.serve`` runs per connection: the opening
        handshake within a timeout, keepalive pings, the client, and the TCP connection
        closed whatever happens."""
        try:
            try:
                async with asyncio.timeout(OPEN_TIMEOUT):
                    await connection.handshake(
                        self._process_request, self._process_response, "ratehub"
                    )
            finally:
                hs = self._accepted.pop(id(connection), None)
            if connection.protocol.state is not OPEN or hs is None:
                connection.transport.abort()
                return
            self.server.all_connections.add(connection)
            connection.start_keepalive()
            try:
                async with connection:
                    await self._client(connection, hs)
            except Exception:
                log.error("hub connection failed", exc_info=True)
            finally:
                self.server.all_connections.discard(connection)
        except Exception:
            connection.transport.abort()
        finally:
            self.server.handler_tasks.discard(asyncio.current_task())

    async def _client(self, connection: ServerConnection, hs: Handshake) -> None:
        if self.send_buffer:
            sock = connection.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.send_buffer)
        pump = self.pump
        session = pump.attach(
            WsConn(connection), hs.client_type, hs.store_id, hs.key.id, hs.last_seq, hs.epoch
        )
        peer = connection.remote_address
        if isinstance(peer, tuple) and len(peer) >= 2:
            session.remote = f"{peer[0]}:{peer[1]}"
        if isinstance(connection, HubConnection):
            sid = session.id
            connection.on_text = lambda text: pump.receive(sid, text)
        try:
            async for message in connection:
                if isinstance(message, bytes):
                    await connection.close(1003, "binary frames are not accepted; send JSON text")
                    break
                pump.receive(session.id, message)
        except ConnectionClosed:
            pass
        finally:
            if isinstance(connection, HubConnection):
                connection.on_text = None
            pump.detach(session.id)

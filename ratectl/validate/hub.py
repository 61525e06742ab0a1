"""A WebSocket client for checks: every frame recorded with its arrival time.

:class:`Inbox` is the pure part: frames in arrival order, each unwrapped from either
dialect (``{type: "data", data: {type, ...}}`` or ``{type, data}``), searched from a
mark. A check takes ``mark()`` *before* it makes a change, then waits for the frame
the change should cause: the event may arrive before the HTTP reply does.

:class:`HubClient` is the adapter: it connects (the key in the Authorization header),
reads in a background task into the inbox, and ``wait`` returns the first matching
frame since a mark or raises :class:`NotArrived`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ratectl.errors import CtlError, Unreachable
from ratectl.stream import WS_PATH
from ratectl.validate.probe import KeyRefused, NotAllowed, Refused, loads


@dataclass(frozen=True)
class Frame:
    at: float  # loop time of arrival
    type: str  # the event type, unwrapped
    data: dict[str, Any]
    raw: dict[str, Any]


def unwrap(msg: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    type_, data = msg.get("type"), msg.get("data")
    if type_ == "data" and isinstance(data, dict) and isinstance(data.get("type"), str):
        inner = dict(data)
        return str(inner.pop("type")), inner
    return str(type_), data if isinstance(data, dict) else {}


@dataclass
class Inbox:
    frames: list[Frame] = field(default_factory=list)
    ignored: int = 0  # frames that were not JSON objects

    def add(self, text: str | bytes, at: float) -> None:
        msg = loads(text.encode() if isinstance(text, str) else text)
        if not isinstance(msg, dict):
            self.ignored += 1
            return
        type_, data = unwrap(msg)
        self.frames.append(Frame(at, type_, data, msg))

    def mark(self) -> int:
        return len(self.frames)

    def find(self, match: Callable[[Frame], bool], since: int = 0) -> Frame | None:
        return next((f for f in self.frames[since:] if match(f)), None)

    def types(self, since: int = 0) -> list[str]:
        return [f.type for f in self.frames[since:]]


class NotArrived(Exception):
    def __init__(self, what: str, seconds: float, seen: list[str]) -> None:
        counts: dict[str, int] = {}
        for t in seen:
            counts[t] = counts.get(t, 0) + 1
        got = ", ".join(f"{n} {t}" for t, n in counts.items()) or "nothing"
        super().__init__(f"{what} did not arrive within {seconds:g} s (received: {got})")
        self.message = str(self)


def hub_url(http_url: str, client_type: str, store: str | None) -> str:
    base = "ws" + http_url[4:] if http_url.startswith("http") else http_url
    query = {"clientType": client_type}
    if store:
        query["storeId"] = store
    return f"{base}{WS_PATH}?{urlencode(query)}"


class HubClient:
    def __init__(self, ws: Any) -> None:
        self._ws = ws
        self.inbox = Inbox()
        self.closed: str | None = None
        self._changed = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(
        cls,
        http_url: str,
        token: str | None,
        timeout: float,
        *,
        store: str | None = None,
        client_type: str = "store_os",
    ) -> HubClient:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus

        url = hub_url(http_url, client_type, store)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            ws = await connect(
                url, additional_headers=headers, open_timeout=timeout, max_size=2**24
            )
        except InvalidStatus as exc:
            raise _refused(exc.response.status_code, exc.response.body) from None
        except TimeoutError:
            raise CtlError(
                f"the hub at {url} did not complete the handshake in {timeout:g} s"
            ) from None
        except (OSError, InvalidHandshake) as exc:
            reason = str(exc) or type(exc).__name__
            raise Unreachable(f"cannot reach the hub at {url} ({reason})") from None
        return cls(ws)

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        loop = asyncio.get_running_loop()
        try:
            async for text in self._ws:
                self.inbox.add(text, loop.time())
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            code, reason = self._ws.close_code, self._ws.close_reason
            self.closed = f"closed {code} {reason or ''}".strip() if code else "closed"
            self._changed.set()

    async def send(self, type_: str, data: dict[str, Any]) -> None:
        await self._ws.send(json.dumps({"type": type_, "data": data}))

    async def wait(
        self, match: Callable[[Frame], bool], what: str, limit: float, since: int = 0
    ) -> Frame:
        """The first frame since ``since`` that matches, within ``limit`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        idx = since
        while True:
            found = self.inbox.find(match, idx)
            if found is not None:
                return found
            idx = self.inbox.mark()
            remaining = deadline - loop.time()
            if self.closed is not None or remaining <= 0:
                seen = self.inbox.types(since)
                if self.closed is not None:
                    seen.append(f"(connection {self.closed})")
                raise NotArrived(what, limit, seen)
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def close(self) -> None:
        await self._ws.close()
        try:
            await asyncio.wait_for(self._reader, 2)
        except (TimeoutError, asyncio.CancelledError):
            self._reader.cancel()


def _refused(status: int, body: bytes | bytearray | None) -> CtlError:
    parsed = loads(bytes(body or b""))
    detail = str(parsed.get("error") or "") if isinstance(parsed, dict) else ""
    detail = detail or f"HTTP {status}"
    if status == 401:
        return KeyRefused(f"the hub refused the key: {detail}")
    if status == 403:
        return NotAllowed(f"the hub refused the connection: {detail}")
    return Refused(f"the hub refused the connection: {detail}", status)

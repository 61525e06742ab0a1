"""What every HTTP request passes through: the key, its origin, its rate limit; and what
every HTTP response carries: the security headers.

``authenticate`` is the API's one FastAPI dependency for a key: it verifies the Bearer
key (401), refuses a browser Origin outside ``CORS_ORIGINS`` or outside the key's own
allowed origins (403), and spends one token of the key's bucket (429 with Retry-After).
``SecurityHeaders`` wraps the whole ASGI app (outside FastAPI's error handling, so even
a 500 carries them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ratehubd.adapters.ws_common import check_origin
from ratehubd.auth import ApiKey, require_origin

if TYPE_CHECKING:
    from ratehubd.runtime import Runtime

HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000")


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None


def authenticate(request: Request) -> ApiKey:
    rt: Runtime = request.app.state.runtime
    origin = request.headers.get("origin")
    check_origin(origin, rt.config.server.cors_origins)
    key = rt.keys.verify(bearer(request))
    rt.limiter.check(key.id, rt.clock.time())
    require_origin(key, origin)
    return key


def add_cors(app: FastAPI, origins: tuple[str, ...]) -> None:
    """CORS_ORIGINS, or any origin when it is empty (keys are Bearer tokens, never
    cookies, so a page elsewhere can do nothing without a key of its own)."""
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(origins) or ["*"],
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        expose_headers=["Retry-After"],
        max_age=600,
    )


class SecurityHeaders:
    """Adds the security headers to every HTTP response (and HSTS when serving TLS)."""

    def __init__(self, app: ASGIApp, *, tls: bool) -> None:
        self.app = app
        self.headers = [*HEADERS, HSTS] if tls else list(HEADERS)
        self._names = {name for name, _ in self.headers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" and scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                kept = [h for h in message.get("headers", []) if h[0].lower() not in self._names]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

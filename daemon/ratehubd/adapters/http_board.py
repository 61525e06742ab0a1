"""The store rate board: ``GET /board?storeId=S`` (and ``/board/S``), one self-contained page.

The page (``ratehubd/board/``: HTML, CSS and a small script, no build step, nothing from
elsewhere) is a confirming terminal on the public protocol: it follows the store's channel,
acknowledges each table it shows and says so when it is not live. Serving it checks what the
hub will check when its script connects (the key may read the store, the page's origin is
one the key and ``CORS_ORIGINS`` allow), so a wrong URL fails here, in words, not as a
board that never connects. Admin keys are refused: a kiosk URL is readable by anyone in the
store, so a board gets a store key of its own (``ratectl board-url --store S --create-key``).
"""

from __future__ import annotations

import html
import json
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response

from ratehubd import auth
from ratehubd.adapters.http_contract import AUTHED, errors
from ratehubd.adapters.http_security import bearer
from ratehubd.adapters.ws_common import WS_PATH, check_origin
from ratehubd.errors import Forbidden, InvalidRequest, RatehubError, Unauthorized

if TYPE_CHECKING:
    from ratehubd.runtime import Runtime

# The page may load only its own script and style, and talk only to its own origin.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
THEMES = ("dark", "light")

Token = Annotated[str | None, Query(description="a store key (browsers cannot send headers)")]
Pairs = Annotated[str | None, Query(description="pairs to show, comma-separated")]
Theme = Annotated[
    str, Query(description="dark or light", json_schema_extra={"enum": ["dark", "light"]})
]


@cache
def _asset(name: str) -> str:
    return resources.files("ratehubd").joinpath("board", name).read_text(encoding="utf-8")


def page_origin(request: Request) -> str:
    """The origin the page is served from, which its script's WebSocket will send."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}".lower()


def _error_page(exc: RatehubError) -> HTMLResponse:
    text = html.escape(exc.message)
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>ratehub board</title>"
        f"<body><h1>This rate board cannot start</h1><p>{text}</p>"
        "<p>Make a board URL with <code>ratectl board-url --store STORE --create-key</code>."
        "</p></body></html>"
    )
    return HTMLResponse(body, status_code=exc.status, headers={"Content-Security-Policy": CSP})


def add_routes(app: FastAPI, rt: Runtime) -> None:
    board = rt.config.board
    if not board.enabled:
        return

    def render(
        request: Request, store_id: str | None, token: str | None, pairs: str | None, theme: str
    ) -> HTMLResponse:
        try:
            if theme not in THEMES:
                raise InvalidRequest(f"theme must be one of {', '.join(THEMES)}, got {theme!r}")
            presented = token or bearer(request)
            if not presented:
                raise Unauthorized(
                    "this board URL has no key: add ?token=<a store key for this store>"
                )
            origin = page_origin(request)
            check_origin(origin, rt.config.server.cors_origins)
            key = rt.keys.verify(presented)
            auth.require_origin(key, origin)
            if key.role == auth.ADMIN:
                raise Forbidden(
                    "an admin key may not sit in a board URL (anyone at the screen can read it)"
                    ": use a store key bound to this store",
                    permission="board",
                )
            store = auth.read_scope(key, store_id)
            auth.require(key, auth.RATES_READ, store)
            wanted = [str(rt.engine.pair(p)) for p in (pairs or "").split(",") if p.strip()]
        except RatehubError as exc:
            return _error_page(exc)
        config = {
            "storeId": store,
            # Shown in this order: the pairs asked for, else every pair as configured.
            "pairs": wanted or list(rt.config.pairs),
            "wsPath": WS_PATH,
            "offlineAfterMs": board.offline_after_ms,
            "heartbeatMs": rt.config.hub.heartbeat_interval_ms,
        }
        # Inside <script type="application/json">: only "</" could end it early.
        blob = json.dumps(config).replace("</", "<\\/")
        page = _asset("board.html").format(
            title=html.escape(board.title),
            store_label=html.escape(f"Store {store}" if store else "All stores"),
            we_buy=html.escape(board.we_buy_label),
            we_sell=html.escape(board.we_sell_label),
            unit=html.escape("Rates in CAD per unit"),
            theme=theme,
            config=blob,
        )
        return HTMLResponse(page, headers={"Content-Security-Policy": CSP})

    @app.get(
        "/board",
        tags=["board"],
        response_class=HTMLResponse,
        responses=errors(400, *AUTHED, media="text/html"),
    )
    async def board_page(
        request: Request,
        storeId: str | None = None,
        token: Token = None,
        pairs: Pairs = None,
        theme: Theme = "dark",
    ) -> HTMLResponse:
        """The store rate board for ``storeId`` (a store key's own store when omitted)."""
        return render(request, storeId or None, token, pairs, theme)

    @app.get(
        "/board/{store_id}",
        tags=["board"],
        response_class=HTMLResponse,
        responses=errors(400, 404, *AUTHED, media="text/html"),
    )
    async def board_store_page(
        request: Request,
        store_id: str,
        token: Token = None,
        pairs: Pairs = None,
        theme: Theme = "dark",
    ) -> HTMLResponse:
        """The store rate board for one store."""
        return render(request, store_id, token, pairs, theme)

    @app.get("/board.js", include_in_schema=False)
    async def board_js() -> Response:
        return Response(_asset("board.js"), media_type="text/javascript; charset=utf-8")

    @app.get("/board.css", include_in_schema=False)
    async def board_css() -> Response:
        return Response(_asset("board.css"), media_type="text/css; charset=utf-8")

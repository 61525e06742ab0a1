"""``/docs``: the interactive API documentation, served whole by the daemon.

FastAPI's default page loads Swagger UI from a CDN, so on a store network or an operations
LAN without internet access it stays blank. The page here loads Swagger UI from the daemon
itself: ``ratehubd/docs/`` holds the files of the ``swagger-ui-dist`` package (SmartBear's
official distribution; its version and licence are beside them), served by name from an
allow-list. No key needed, like ``/openapi.json``.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, Response

from ratehubd.errors import NotFound

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
PREFIX = "/docs/assets"


@cache
def asset(name: str) -> bytes:
    return resources.files("ratehubd").joinpath("docs", name).read_bytes()


def add_routes(app: FastAPI) -> None:
    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{PREFIX}/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/favicon-32x32.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def oauth2_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(PREFIX + "/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        media = ASSETS.get(name)
        if media is None:
            raise NotFound(f"no such documentation asset {name!r}")
        return Response(asset(name), media_type=media)

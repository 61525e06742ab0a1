"""``/docs`` works with no internet access: the page loads Swagger UI from the daemon, not
from a CDN, and the daemon serves those files (no key, like ``/openapi.json``)."""

from __future__ import annotations

import re
from typing import Any

import httpx


async def test_the_docs_page_loads_only_what_the_daemon_serves(runtime: Any) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.api_port}") as c:
        page = await c.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert re.findall(r"https?://", page.text) == []  # nothing from elsewhere
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
        assets = [u for u in urls if u.startswith("/docs/assets/")]
        assert len(assets) >= 3, urls
        for url in assets:
            got = await c.get(url)
            assert got.status_code == 200 and len(got.content) > 100, url
        js = await c.get("/docs/assets/swagger-ui-bundle.js")
        assert js.headers["content-type"].startswith("text/javascript")
        assert b"SwaggerUIBundle" in js.content
        assert (await c.get("/openapi.json")).status_code == 200
        missing = await c.get("/docs/assets/index.html")  # only the listed files
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert (await c.get("/docs/assets/..%2F__init__.py")).status_code == 404
        assert (await c.get("/redoc")).status_code == 404  # it would load from a CDN

"""The store rate board over HTTP (no browser): who may open it, what the page carries.

The browser tests (``test_board_browser.py``) show it working; these show that a wrong
board URL fails when it is opened, in words, instead of as a screen that never connects.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from ratehubd.config import Config
from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{runtime.api_port}") as client:
        yield client


async def make_key(api: httpx.AsyncClient, **body: Any) -> str:
    r = await api.post("/api/keys", json={"name": "board", **body}, headers=AUTH)
    assert r.status_code == 201, r.text
    secret: str = r.json()["data"]["secret"]
    return secret


def page_config(html: str) -> dict[str, Any]:
    m = re.search(r'<script id="board-config" type="application/json">(.*?)</script>', html)
    assert m is not None, html
    config: dict[str, Any] = json.loads(m.group(1))
    return config


async def test_a_store_key_opens_its_board_and_the_page_never_holds_the_key(
    api: httpx.AsyncClient,
) -> None:
    key = await make_key(api, role="store", stores=["s1"])
    for path in ("/board?storeId=s1", "/board/s1", "/board"):  # a one-store key: its store
        r = await api.get(path, params={"token": key})
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/html")
        assert key not in r.text and key.split("_")[-1] not in r.text
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "connect-src 'self'" in csp
        config = page_config(r.text)
        assert config["storeId"] == "s1" and config["wsPath"] == "/api/rates/websocket"
        assert config["pairs"][0] == "USD/CAD"  # as configured
        assert "Store s1" in r.text and "We buy" in r.text and "We sell" in r.text
    js = await api.get("/board.js")
    css = await api.get("/board.css")
    assert js.status_code == css.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert '"ack"' in js.text or 'type: "ack"' in js.text
    assert "http://" not in css.text and "https://" not in css.text  # nothing from elsewhere


async def test_pairs_and_theme_parameters(api: httpx.AsyncClient) -> None:
    key = await make_key(api, role="store", stores=["s1"])
    r = await api.get(
        "/board/s1", params={"token": key, "pairs": "usdcad,EUR-CAD", "theme": "light"}
    )
    assert r.status_code == 200
    assert page_config(r.text)["pairs"] == ["USD/CAD", "EUR/CAD"]
    assert 'class="theme-light' in r.text
    bad = await api.get("/board/s1", params={"token": key, "theme": "blue"})
    assert bad.status_code == 400 and "theme must be one of dark, light" in bad.text
    unknown = await api.get("/board/s1", params={"token": key, "pairs": "XXX/CAD"})
    assert unknown.status_code == 400 and "XXX/CAD" in unknown.text


async def test_wrong_board_urls_fail_in_words(api: httpx.AsyncClient) -> None:
    s1 = await make_key(api, role="store", stores=["s1"])
    none = await api.get("/board/s1")
    assert none.status_code == 401 and "no key" in none.text
    bad = await api.get("/board/s1", params={"token": "rh_nope_nope"})
    assert bad.status_code == 401
    other = await api.get("/board/s2", params={"token": s1})
    assert other.status_code == 403 and "s2" in other.text
    admin = await api.get("/board/s1", params={"token": ADMIN_KEY})
    assert admin.status_code == 403 and "admin key may not sit in a board URL" in admin.text
    for r in (none, bad, other, admin):
        assert "ratectl board-url" in r.text and r.headers["content-type"].startswith("text/html")


async def test_a_key_bound_to_another_origin_is_refused_like_the_hub_refuses_it(
    api: httpx.AsyncClient, runtime: Runtime
) -> None:
    port = runtime.api_port
    key = await make_key(api, role="store", stores=["s1"], origins=[f"http://localhost:{port}"])
    # Served as http://127.0.0.1:PORT, its script would connect from that origin: refused.
    refused = await api.get("/board/s1", params={"token": key})
    assert refused.status_code == 403 and "origin" in refused.text
    ok = await api.get("/board/s1", params={"token": key}, headers={"Host": f"localhost:{port}"})
    assert ok.status_code == 200


async def test_cors_origins_apply_to_the_board_page(make_config: Callable[..., Config]) -> None:
    rt = Runtime(make_config(env={"CORS_ORIGINS": "https://screens.example"}))
    await rt.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}") as api:
            key = await make_key(api, role="store", stores=["s1"])
            r = await api.get("/board/s1", params={"token": key})
            assert r.status_code == 403 and "CORS_ORIGINS" in r.text
    finally:
        await rt.stop()


async def test_labels_come_from_config_and_the_board_can_be_turned_off(
    make_config: Callable[..., Config],
) -> None:
    cfg = make_config(board={"we_buy_label": "Nous achetons", "title": "Taux <du jour>"})
    rt = Runtime(cfg)
    await rt.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}") as api:
            key = await make_key(api, role="store", stores=["s1"])
            r = await api.get("/board/s1", params={"token": key})
            assert "Nous achetons" in r.text and "Taux &lt;du jour&gt;" in r.text
    finally:
        await rt.stop()
    rt = Runtime(make_config(board={"enabled": False}))
    await rt.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}") as api:
            assert (await api.get("/board/s1")).status_code == 404
    finally:
        await rt.stop()


async def test_who_may_open_which_board(api: httpx.AsyncClient) -> None:
    """Every principal of the authorization matrix against its own store, another store
    and the global board: store and read-only keys read what they may read; admin keys
    never (the URL sits on a screen); feed keys never (they only push)."""
    keys = {
        "admin": ADMIN_KEY,
        "read-only": await make_key(api, role="read-only"),
        "store": await make_key(api, role="store", stores=["own"]),
        "multi": await make_key(api, role="store", stores=["own", "third"]),
        "feed": await make_key(api, role="feed"),
    }
    want = {  # /board/own, /board/other, /board (global)
        "none": (401, 401, 401),
        "admin": (403, 403, 403),
        "read-only": (200, 200, 200),
        "store": (200, 403, 200),  # no storeId: a one-store key's own store
        "multi": (200, 403, 403),  # no storeId: which of its stores? it must say
        "feed": (403, 403, 403),
    }
    for who, statuses in want.items():
        token = {"token": keys[who]} if who in keys else {}
        got = tuple(
            [
                (await api.get(path, params=token)).status_code
                for path in ("/board/own", "/board/other", "/board")
            ]
        )
        assert got == statuses, who
    for asset in ("/board.js", "/board.css"):  # the same for every board: no key
        assert (await api.get(asset)).status_code == 200

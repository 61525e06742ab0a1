"""The authorization matrix, walked whole: every HTTP endpoint and every WebSocket message,
for every principal (no key, admin, read-only, a store key, a store key for two stores, a
feed key), against its own store, another store and no store (global).

The tables are the spec. A 403 must name the permission that is missing, in its message
and in ``details.permission``. A new HTTP route fails ``test_every_route_is_in_the_matrix``
until it has its rows here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from ratehubd.config import Config
from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY, timeout

OWN, OTHER, THIRD = "s-own", "s-other", "s-third"
PRINCIPALS = ("none", "admin", "read-only", "store", "multi", "feed")
# No key needed: liveness/readiness probes, Prometheus, and the OpenAPI schema and docs.
PUBLIC = {
    "/healthz",
    "/readyz",
    "/metrics",
    "/docs",
    "/docs/oauth2-redirect",
    "/docs/assets/{name}",
    "/openapi.json",
}
# HTML pages and their assets, with their own principal matrix in test_board.py (their
# denials are pages for a person at a screen, not the JSON envelope).
PAGES = {"/board", "/board/{store_id}", "/board.js", "/board.css"}
PUSHED = "BTC/CAD"  # the pair that takes pushed prices in these tests
SET = {"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33}


def expect(
    admin: int, read_only: int, store: int, multi: int, feed: int, none: int = 401
) -> dict[str, int]:
    return {
        "none": none,
        "admin": admin,
        "read-only": read_only,
        "store": store,
        "multi": multi,
        "feed": feed,
    }


Setup = Callable[["Ctx"], Awaitable[dict[str, Any]]]  # path values, and "body" if any


@dataclass
class Row:
    method: str
    path: str  # may hold {lock} / {key} from setup
    want: dict[str, int]
    body: dict[str, Any] | None = None
    setup: Setup | None = None

    @property
    def name(self) -> str:
        return f"{self.method} {self.path} {json.dumps(self.body) if self.body else ''}".strip()


@dataclass
class Ctx:
    rt: Runtime
    http: httpx.AsyncClient
    keys: dict[str, str] = field(default_factory=dict)

    async def admin(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        r = await self.http.request(method, path, json=body, headers=headers("admin", self))
        assert r.status_code in (200, 201), r.text
        return dict(r.json()["data"])


def headers(who: str, ctx: Ctx) -> dict[str, str]:
    return {} if who == "none" else {"Authorization": f"Bearer {ctx.keys[who]}"}


def fresh_lock(store: str | None) -> Setup:
    async def make(ctx: Ctx) -> dict[str, Any]:
        body = {
            "currencyPair": "USD/CAD",
            "ttlSeconds": 60,
            **({"storeId": store} if store else {}),
        }
        return {"lock": (await ctx.admin("POST", "/api/rates/lock", body))["lockId"]}

    return make


def an_override(store: str | None) -> Setup:
    async def make(ctx: Ctx) -> dict[str, Any]:
        await ctx.admin("POST", "/api/rates/set", {**SET, **({"storeId": store} if store else {})})
        return {}

    return make


async def throwaway_key(ctx: Ctx) -> dict[str, Any]:
    return {"key": (await ctx.admin("POST", "/api/keys", {"name": "x", "role": "read-only"}))["id"]}


READ = expect(200, 200, 200, 200, 403)  # own store
READ_OTHER = expect(200, 200, 403, 403, 403)
READ_GLOBAL = expect(200, 200, 200, 403, 403)  # a one-store key reads its own store
WRITE = expect(200, 403, 200, 200, 403)
WRITE_OTHER = expect(200, 403, 403, 403, 403)
WRITE_GLOBAL = expect(200, 403, 403, 403, 403)
ADMIN_ONLY = expect(200, 403, 403, 403, 403)


def store_q(path: str, store: str | None) -> str:
    return f"{path}?storeId={store}" if store else path


HTTP_ROWS: list[Row] = [
    Row("GET", "/healthz", expect(200, 200, 200, 200, 200, none=200)),
    *(
        Row("GET", store_q(path, s), want)
        for path in ("/api/rates/get", "/api/rates/overrides", "/api/rates/locks")
        for s, want in ((OWN, READ), (OTHER, READ_OTHER), (None, READ_GLOBAL))
    ),
    Row("GET", "/api/stores", expect(200, 200, 200, 200, 200)),
    Row("GET", f"/api/stores/{OWN}/terminals", READ),
    Row("GET", f"/api/stores/{OTHER}/terminals", READ_OTHER),
    Row("GET", "/api/rates/locks/{lock}", READ, setup=fresh_lock(OWN)),
    Row("GET", "/api/rates/locks/{lock}", READ_OTHER, setup=fresh_lock(OTHER)),
    *(
        Row("POST", "/api/rates/set", want, body={**SET, **({"storeId": s} if s else {})})
        for s, want in ((OWN, WRITE), (OTHER, WRITE_OTHER), (None, WRITE_GLOBAL))
    ),
    *(
        Row(
            "POST",
            "/api/rates/clear",
            want,
            body={"currencyPair": "USD/CAD", **({"storeId": s} if s else {})},
            setup=an_override(s),
        )
        for s, want in ((OWN, WRITE), (OTHER, WRITE_OTHER), (None, WRITE_GLOBAL))
    ),
    *(
        Row(
            "POST",
            path,
            {k: 201 if v == 200 else v for k, v in want.items()},
            body={"currencyPair": "USD/CAD", "ttlSeconds": 60, **({"storeId": s} if s else {})},
        )
        for path in ("/api/rates/lock", "/api/rates/locks")
        for s, want in ((OWN, WRITE), (OTHER, WRITE_OTHER), (None, WRITE_GLOBAL))
    ),
    *(
        Row("POST", f"/api/rates/locks/{{lock}}/{end}", want, setup=fresh_lock(s))
        for end in ("consume", "release")
        for s, want in ((OWN, WRITE), (OTHER, WRITE_OTHER), (None, WRITE_GLOBAL))
    ),
    Row("GET", "/api/rates/breaches", READ),
    Row("GET", "/api/rates/market", expect(200, 200, 200, 200, 403)),
    Row("GET", "/api/rates/sources", expect(200, 200, 200, 200, 403)),
    Row("POST", "/api/rates/push", expect(200, 403, 403, 403, 200), setup=lambda c: a_push(c)),
    Row("POST", f"/api/rates/sources/{PUSHED}/reset", ADMIN_ONLY),
    Row("GET", "/api/system/status", expect(200, 200, 403, 403, 403)),
    Row("GET", "/api/audit", ADMIN_ONLY),
    Row("GET", "/api/audit/verify", ADMIN_ONLY),
    Row("GET", "/api/keys", ADMIN_ONLY),
    Row("POST", "/api/keys", expect(201, 403, 403, 403, 403), body={"name": "n", "role": "feed"}),
    Row("POST", "/api/keys/{key}/revoke", ADMIN_ONLY, setup=throwaway_key),
]


@pytest.fixture
async def ctx(make_config: Callable[..., Config]) -> Any:
    cfg = make_config(
        security={"requests_per_second": 10_000, "burst": 10_000},
        sources={"pairs": {PUSHED: {"sources": ["simulated", "push"]}}},
    )
    rt = Runtime(cfg)
    await rt.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}") as http:
            c = Ctx(rt, http, {"admin": ADMIN_KEY})
            for who, body in (
                ("read-only", {"name": "dashboard", "role": "read-only"}),
                ("store", {"name": "own terminal", "role": "store", "stores": [OWN]}),
                ("multi", {"name": "two stores", "role": "store", "stores": [OWN, THIRD]}),
                ("feed", {"name": "pusher", "role": "feed"}),
            ):
                c.keys[who] = (await c.admin("POST", "/api/keys", body))["secret"]
            yield c
    finally:
        await rt.stop()


def check_denial(who: str, status: int, body: dict[str, Any]) -> str | None:
    """A 403 names the missing permission; a 401 says what to send; neither echoes a key."""
    if status == 403:
        perm = (body.get("details") or {}).get("permission")
        if not perm or perm not in body["error"]:
            return f"403 without the missing permission named: {body}"
    if status == 401 and who == "none" and "Authorization" not in body["error"]:
        return f"401 that does not say how to authenticate: {body}"
    return None


async def market_mid(ctx: Ctx) -> float:
    r = await ctx.http.get("/api/rates/market", headers=headers("admin", ctx))
    return float(next(q["rate"] for q in r.json()["data"] if q["currencyPair"] == PUSHED))


async def a_push(ctx: Ctx) -> dict[str, Any]:
    return {"body": {"symbol": PUSHED, "priceCAD": await market_mid(ctx)}}


async def test_http_matrix(ctx: Ctx) -> None:
    wrong: list[str] = []
    for row in HTTP_ROWS:
        values: dict[str, Any] | None = None
        for who in PRINCIPALS:
            if values is None:  # a fresh object once the last one was used up
                values = await row.setup(ctx) if row.setup else {}
            path = row.path.format(**values)
            body = values.get("body", row.body)
            r = await ctx.http.request(row.method, path, json=body, headers=headers(who, ctx))
            if r.is_success and row.method == "POST":
                values = None
            if r.status_code != row.want[who]:
                wrong.append(
                    f"{row.name} as {who}: {r.status_code}, want {row.want[who]}: {r.text}"
                )
                continue
            problem = check_denial(who, r.status_code, r.json())
            if problem:
                wrong.append(f"{row.name} as {who}: {problem}")
    assert not wrong, "\n".join(wrong)


def route_of(path: str) -> str:
    path = path.split("?")[0].replace("{lock}", "{lock_id}").replace("{key}", "{key_id}")
    for store in (OWN, OTHER):
        path = path.replace(f"/stores/{store}/", "/stores/{store_id}/")
    return path.replace(f"/sources/{PUSHED}/", "/sources/{base}/{quote}/")


async def test_every_route_is_in_the_matrix(ctx: Ctx) -> None:
    app = ctx.rt.http.config.app.app  # the app being served (inside SecurityHeaders)
    routes = {
        (method, route.path)  # type: ignore[attr-defined]
        for route in app.routes
        for method in getattr(route, "methods", None) or ()
        if method != "HEAD" and route.path not in PUBLIC | PAGES  # type: ignore[attr-defined]
    }
    covered = {(row.method, route_of(row.path)) for row in HTTP_ROWS}
    missing = sorted(routes - covered)
    assert not missing, (
        f"routes without rows in HTTP_ROWS (add them, for every principal): {missing}"
    )


async def test_store_key_origin_and_wrong_key_over_http(ctx: Ctx) -> None:
    limited = await ctx.admin(
        "POST",
        "/api/keys",
        {"name": "browser", "role": "read-only", "origins": ["https://dash.example.com"]},
    )
    auth = {"Authorization": f"Bearer {limited['secret']}"}
    ok = await ctx.http.get(
        "/api/rates/market", headers={**auth, "Origin": "https://dash.example.com"}
    )
    assert ok.status_code == 200
    no_origin = await ctx.http.get("/api/rates/market", headers=auth)  # not a browser
    assert no_origin.status_code == 200
    bad = await ctx.http.get(
        "/api/rates/market", headers={**auth, "Origin": "https://evil.example"}
    )
    assert bad.status_code == 403
    assert bad.json()["details"]["permission"] == "origin"
    assert "https://evil.example" in bad.json()["error"]
    wrong = "rh_" + limited["id"] + "_not-the-secret-at-all"
    r = await ctx.http.get("/api/rates/market", headers={"Authorization": f"Bearer {wrong}"})
    assert r.status_code == 401 and "not-the-secret-at-all" not in r.text


# -- WebSocket ------------------------------------------------------------------------------------


def ws_url(rt: Runtime, listener: str, token: str | None, store: str | None) -> str:
    port = rt.api_port if listener == "api" else rt.hub_port
    query = [f"token={token}"] if token else []
    query += [f"storeId={store}"] if store else []
    return f"ws://127.0.0.1:{port}/api/rates/websocket?clientType=store_os&{'&'.join(query)}"


def of_type(*types: str) -> Callable[[dict[str, Any]], bool]:
    return lambda msg: msg["type"] in types


def resumed(msg: dict[str, Any]) -> bool:
    return msg["type"] == "error" or "recovered" in (msg.get("data") or {})


async def next_reply(
    ws: ClientConnection, pred: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async with asyncio.timeout(timeout(5)):
        while True:
            msg = json.loads(await ws.recv())
            if pred(msg):
                return dict(msg)


# Connecting: principal -> the storeId asked -> HTTP status of the upgrade, or the store
# the connection gets.
CONNECT: dict[str, dict[str | None, int | str | None]] = {
    "none": {OWN: 401, OTHER: 401, None: 401},
    "admin": {OWN: OWN, OTHER: OTHER, None: None},
    "read-only": {OWN: OWN, OTHER: OTHER, None: None},
    "store": {OWN: OWN, OTHER: 403, None: OWN},  # no storeId: its one store
    "multi": {OWN: OWN, OTHER: 403, None: 403},  # no storeId: which one? an error
    "feed": {OWN: 403, OTHER: 403, None: 403},
}

# Messages on a connection opened for OWN: principal -> message -> "ok" or an error code.
MESSAGES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("ping", {}, {p: "ok" for p in ("admin", "read-only", "store", "multi")}),
    *(
        (kind, {"storeId": store, key: ["USD/CAD"]}, want)
        for kind, key in (("subscribe", "symbols"), ("rate_subscribe", "currencies"))
        for store, want in (
            (OWN, {"admin": "ok", "read-only": "ok", "store": "ok", "multi": "ok"}),
            (THIRD, {"admin": "ok", "read-only": "ok", "store": "forbidden", "multi": "ok"}),
            (OTHER, {"admin": "ok", "read-only": "ok", "store": "forbidden", "multi": "forbidden"}),
        )
    ),
    (
        "unsubscribe",
        {"symbols": ["BTC/CAD"]},
        {p: "ok" for p in ("admin", "read-only", "store", "multi")},
    ),
    ("resume", {"lastSeq": 0}, {p: "ok" for p in ("admin", "read-only", "store", "multi")}),
    (
        "push_rate",
        {"symbol": PUSHED, "priceCAD": "{mid}"},
        {"admin": "ok", "read-only": "forbidden", "store": "forbidden", "multi": "forbidden"},
    ),
]
REPLY = {
    "ping": of_type("pong", "error"),
    "resume": resumed,
    "push_rate": of_type("push_ack", "error"),
}
NEEDS = {"push_rate": "market:push"}  # the permission a refusal must name; else rates:read


@pytest.mark.parametrize("listener", ["api", "hub"])
async def test_websocket_matrix(ctx: Ctx, listener: str) -> None:
    wrong: list[str] = []
    for who, cases in CONNECT.items():
        for store, want in cases.items():
            url = ws_url(ctx.rt, listener, ctx.keys.get(who), store)
            try:
                async with connect(url) as ws:
                    welcome = await next_reply(ws, of_type("welcome"))
                    got: int | str | None = welcome["data"]["storeId"]
            except InvalidStatus as exc:
                got = exc.response.status_code
                body = json.loads(exc.response.body or b"{}")
                if got == 403 and "rates:read" not in body.get("error", ""):
                    wrong.append(f"connect {who} {store}: 403 not naming rates:read: {body}")
            if got != want:
                wrong.append(f"connect as {who} to {store}: got {got!r}, want {want!r}")
    mid = await market_mid(ctx)
    for kind, data, wants in MESSAGES:
        data = {k: mid if v == "{mid}" else v for k, v in data.items()}
        for who, want in wants.items():
            async with connect(ws_url(ctx.rt, listener, ctx.keys[who], OWN)) as ws:
                await next_reply(ws, of_type("welcome"))
                await ws.send(json.dumps({"type": kind, "data": data}))
                reply = await next_reply(ws, REPLY.get(kind, of_type("subscribed", "error")))
                got = "ok" if reply["type"] != "error" else reply["data"]["code"]
                if got != want:
                    wrong.append(f"{kind} {data} as {who}: got {got} ({reply}), want {want}")
                elif got == "forbidden" and NEEDS.get(kind, "rates:read") not in str(reply):
                    wrong.append(f"{kind} as {who}: error not naming the permission: {reply}")
    assert not wrong, "\n".join(wrong)

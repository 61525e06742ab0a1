"""API keys over HTTP: created with the secret shown once, listed without secrets, revoked
durably with an audit record, and a revoked key's live WebSockets closed at once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ratehubd import auth
from ratehubd.adapters.clock import SystemClock
from ratehubd.adapters.writer import Writer
from ratehubd.config import Config
from ratehubd.key_service import KeyService
from ratehubd.runtime import Runtime
from ratehubd.store import keys as key_rows
from ratehubd.store.repository import Store, sqlite_url
from tests.conftest import ADMIN_KEY, timeout

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    base = f"http://127.0.0.1:{runtime.api_port}"
    async with httpx.AsyncClient(base_url=base, headers=AUTH) as client:
        yield client


async def create(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await api.post("/api/keys", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json()["data"])


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_create_list_revoke_and_the_audit_trail(api: httpx.AsyncClient) -> None:
    made = await create(api, name="store123 terminal", role="store", stores=["store123"])
    secret = made.pop("secret")
    assert secret.startswith(f"rh_{made['id']}_") and len(secret) > 30
    assert made == {
        "id": made["id"],
        "name": "store123 terminal",
        "role": "store",
        "stores": ["store123"],
        "origins": [],
        "createdAt": made["createdAt"],
        "revokedAt": None,
    }
    mine = await api.get("/api/rates/get", params={"storeId": "store123"}, headers=bearer(secret))
    assert mine.status_code == 200

    listed = (await api.get("/api/keys")).json()["data"]
    assert [k["id"] for k in listed] == ["env", made["id"]]  # the API_SECRET_KEY key first
    assert secret not in json.dumps(listed) and ADMIN_KEY not in json.dumps(listed)
    assert all(set(k) == set(made) for k in listed)  # no secret, hash or salt

    r = await api.post(f"/api/keys/{made['id']}/revoke", json={"reason": "terminal stolen"})
    assert r.status_code == 200 and r.json()["data"]["revokedAt"] is not None
    gone = await api.get("/api/rates/get", params={"storeId": "store123"}, headers=bearer(secret))
    assert gone.status_code == 401

    again = await api.post(f"/api/keys/{made['id']}/revoke")
    assert again.status_code == 409 and "already revoked" in again.json()["error"]
    assert (await api.post("/api/keys/nosuchid/revoke")).status_code == 404
    env = await api.post("/api/keys/env/revoke")
    assert env.status_code == 400 and "API_SECRET_KEY" in env.json()["error"]

    audit = (await api.get("/api/audit", params={"order": "asc"})).json()["data"]
    created, revoked = [a for a in audit if a["type"] in ("key_created", "key_revoked")]
    assert created["type"] == "key_created" and created["actor"] == "env"
    assert created["after"]["id"] == made["id"] and created["after"]["stores"] == ["store123"]
    assert revoked["type"] == "key_revoked" and revoked["reason"] == "terminal stolen"
    assert revoked["before"]["revokedAt"] is None and revoked["after"]["revokedAt"] is not None
    assert secret not in json.dumps(audit) and secret.split("_", 2)[2] not in json.dumps(audit)
    assert (await api.get("/api/audit/verify")).json()["data"]["ok"] is True


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"name": "t", "role": "store"}, "needs at least one store"),
        ({"name": "d", "role": "read-only", "stores": ["s1"]}, "only store keys"),
        ({"name": "x", "role": "superuser"}, "role must be one of"),
        ({"name": "", "role": "feed"}, "name must be"),
        ({"name": "b", "role": "store", "stores": ["a,b"]}, "store ids are"),
        ({"name": "o", "role": "read-only", "origins": ["dash.example.com"]}, "not a browser"),
        ({"name": "o", "role": "read-only", "origins": ["https://x.io/path"]}, "no path"),
        ({"name": "x", "role": "feed", "secret": "m"}, "'secret' (accepted: name, role, stores"),
        ({"name": "x"}, "role: Field required"),
        ({"name": "x", "role": "feed", "stores": "s1"}, "stores: Input should be a valid list"),
    ],
)
async def test_bad_key_requests_say_what_to_change(
    api: httpx.AsyncClient, body: dict[str, Any], needle: str
) -> None:
    r = await api.post("/api/keys", json=body)
    assert r.status_code == 400 and needle in r.json()["error"], r.text
    assert len((await api.get("/api/keys")).json()["data"]) == 1  # only the env key


async def test_keys_survive_a_restart(make_config: Callable[..., Config]) -> None:
    cfg = make_config()
    rt = Runtime(cfg)
    await rt.start()
    base = f"http://127.0.0.1:{rt.api_port}"
    async with httpx.AsyncClient(base_url=base, headers=AUTH) as api:
        kept = await create(api, name="dash", role="read-only", origins=["http://localhost:3000"])
        lost = await create(api, name="old", role="feed")
        await api.post(f"/api/keys/{lost['id']}/revoke")
    await rt.stop()
    rt = Runtime(cfg)
    await rt.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}") as api:
            ok = await api.get("/api/rates/market", headers=bearer(kept["secret"]))
            assert ok.status_code == 200
            elsewhere = {**bearer(kept["secret"]), "Origin": "https://evil.example"}
            assert (await api.get("/api/rates/market", headers=elsewhere)).status_code == 403
            refused = await api.get("/api/rates/market", headers=bearer(lost["secret"]))
            assert refused.status_code == 401
    finally:
        await rt.stop()


async def test_the_last_admin_key_cannot_be_revoked(make_config: Callable[..., Config]) -> None:
    """Without API_SECRET_KEY the daemon generates an admin key; revoking the only admin
    key would lock every operator out."""
    cfg = make_config(env={"API_SECRET_KEY": ""})
    rt = Runtime(cfg)
    await rt.start()
    try:
        assert rt.admin_key_file is not None
        generated = rt.admin_key_file.read_text().strip()
        base = f"http://127.0.0.1:{rt.api_port}"
        async with httpx.AsyncClient(base_url=base, headers=bearer(generated)) as api:
            first = generated.split("_")[1]
            r = await api.post(f"/api/keys/{first}/revoke")
            assert r.status_code == 409 and "last admin key" in r.json()["error"]
            second = await create(api, name="ops", role="admin")
            assert (await api.post(f"/api/keys/{first}/revoke")).status_code == 200
        async with httpx.AsyncClient(base_url=base, headers=bearer(second["secret"])) as api:
            r = await api.post(f"/api/keys/{second['id']}/revoke")
            assert r.status_code == 409
    finally:
        await rt.stop()
    # the admin key file names a revoked key now: the next start writes a fresh one
    rt = Runtime(cfg)
    await rt.start()
    try:
        assert rt.admin_key_file is not None
        fresh = rt.admin_key_file.read_text().strip()
        assert fresh != generated
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}") as api:
            assert (await api.get("/api/keys", headers=bearer(fresh))).status_code == 200
    finally:
        await rt.stop()


@pytest.mark.parametrize("listener", ["api", "hub"])
async def test_revoking_closes_live_websockets_within_a_second(
    runtime: Runtime, api: httpx.AsyncClient, listener: str
) -> None:
    made = await create(api, name="terminal", role="store", stores=["s1"])
    port = runtime.api_port if listener == "api" else runtime.hub_port
    url = f"ws://127.0.0.1:{port}/api/rates/websocket?clientType=store_os&token={made['secret']}"
    async with connect(url) as ws, connect(url) as other:
        assert json.loads(await ws.recv())["type"] == "welcome"
        assert json.loads(await other.recv())["type"] == "welcome"
        started = time.monotonic()
        assert (await api.post(f"/api/keys/{made['id']}/revoke")).status_code == 200
        for conn in (ws, other):
            with pytest.raises(ConnectionClosed) as closed:
                async with asyncio.timeout(timeout(1)):
                    while True:
                        await conn.recv()
            assert closed.value.rcvd is not None
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "API key revoked")
        assert time.monotonic() - started < timeout(1)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url):
            pass
    assert refused.value.response.status_code == 401
    assert len(runtime.hub.sessions) == 0


async def test_key_origins_are_checked_at_the_websocket_upgrade(
    runtime: Runtime, api: httpx.AsyncClient
) -> None:
    made = await create(api, name="dash", role="read-only", origins=["https://dash.example.com"])
    url = f"ws://127.0.0.1:{runtime.hub_port}/api/rates/websocket?token={made['secret']}"
    async with connect(url, origin="https://dash.example.com") as ws:  # type: ignore[arg-type]
        assert json.loads(await ws.recv())["type"] == "welcome"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin="https://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403
    assert b"https://evil.example" in refused.value.response.body


async def test_key_sync_takes_in_other_nodes_keys_and_never_revives_a_revoked_one(
    tmp_path: Path,
) -> None:
    """``KeyService.sync`` against a real database that another node writes to."""
    store = Store(sqlite_url(tmp_path))
    store.open()
    try:
        ring = auth.KeyRing()
        closed: list[str] = []
        service = KeyService(ring, store, Writer(store), SystemClock(), closed.append)
        created, _ = auth.new_key("till 1", auth.STORE, frozenset({"s1"}))
        early, _ = auth.new_key("till 2", auth.STORE, frozenset({"s1"}))
        with store.session() as s:  # what another node committed
            key_rows.insert(s, created, 1)
            key_rows.insert(s, early, 1)
            s.commit()
        # Revoked here before this node had synced it (the row above is a stale read).
        ring.revoke(early.id)
        assert await service.sync() == (1, 0)
        assert ring.get(created.id) is not None
        assert ring.get(early.id) is None
        with store.session() as s:  # the other node revokes one
            key_rows.revoke(s, created.id, 2)
            s.commit()
        assert await service.sync() == (0, 1)
        assert ring.get(created.id) is None and closed == [created.id]
        assert await service.sync() == (0, 0)  # nothing twice
    finally:
        store.close()

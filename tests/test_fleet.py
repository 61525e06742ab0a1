"""A fleet for real: Runtimes on one PostgreSQL and one Redis, on their own ports.

A change made on one node reaches the clients of another; a client resumes on another
node without missing an event; a node cut off from Redis catches up from the database
when it is back; and a single node on PostgreSQL keeps its state across a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import text as sql_text
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ratehubd.adapters.redis_backplane import RedisBackplane
from ratehubd.auth import key_id_of
from ratehubd.config import Config
from ratehubd.hub.backplane import EventMessage
from ratehubd.runtime import Runtime
from ratehubd.store.repository import Store
from tests.conftest import ADMIN_KEY, Fleet, timeout
from tests.test_ws_hub import recv_until

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def ws_url(rt: Runtime, **query: str) -> str:
    qs = "&".join(f"{k}={v}" for k, v in {"token": ADMIN_KEY, **query}.items())
    return f"ws://127.0.0.1:{rt.api_port}/api/rates/websocket?{qs}"


async def api(rt: Runtime, method: str, path: str, body: Any = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}") as c:
        return await c.request(method, path, json=body, headers=AUTH, timeout=timeout(10))


async def set_rate(rt: Runtime, buy: float, sell: float, store: str = "s1") -> int:
    body = {"currencyPair": "USD/CAD", "buyRate": buy, "sellRate": sell, "storeId": store}
    r = await api(rt, "POST", "/api/rates/set", body)
    assert r.status_code == 200, r.text
    return r.status_code


def is_override(m: dict[str, Any]) -> bool:
    return m["type"] == "rate_override_set"


def has_rate(buy: float) -> Callable[[dict[str, Any]], bool]:
    def pred(m: dict[str, Any]) -> bool:
        return m["type"] == "rate_update" and any(
            r["currencyPair"] == "USD/CAD" and r["buyRate"] == buy for r in m["data"]["rates"]
        )

    return pred


async def test_an_override_set_on_one_node_reaches_a_client_of_another(fleet: Fleet) -> None:
    a, b = await fleet("a"), await fleet("b")
    assert a.hub.epoch == b.hub.epoch
    async with connect(ws_url(b, clientType="store_os", storeId="s1")) as ws:
        await recv_until(ws, lambda m: m["type"] == "rate_update" and m["data"].get("snapshot"))
        t0 = time.monotonic()
        await set_rate(a, 1.37, 1.33)
        ev = await recv_until(ws, is_override)
        assert ev["data"]["buyRate"] == 1.37 and ev["data"]["storeId"] == "s1"
        # B's own engine took the override in: its rate frames show it too.
        await recv_until(ws, has_rate(1.37))
        elapsed = time.monotonic() - t0
    assert elapsed < timeout(2.0)
    got = await api(b, "GET", "/api/rates/get?storeId=s1")
    usd = next(r for r in got.json()["data"] if r["currencyPair"] == "USD/CAD")
    assert usd["buyRate"] == 1.37
    fleet_status = b.status()["integration"]["backplane"]
    assert fleet_status["kind"] == "redis" and fleet_status["connected"] is True
    assert fleet_status["received"] >= 1 and fleet_status["node"] == "b"
    assert b.status()["integration"]["database"] == "postgresql"


async def test_a_client_resumes_on_another_node_and_misses_nothing(fleet: Fleet) -> None:
    a, b = await fleet("a"), await fleet("b")
    async with connect(ws_url(a, clientType="dashboard")) as ws:
        await set_rate(a, 1.37, 1.33)
        first = await recv_until(ws, lambda m: m["type"] == "data" and is_override(m["data"]))
        last_seq, epoch = first["seq"], first["epoch"]
    # While the client is away, both nodes make changes (seqs from one counter).
    await set_rate(a, 1.38, 1.34)
    await set_rate(b, 1.39, 1.33, store="s2")
    await set_rate(a, 1.36, 1.32)
    async with connect(ws_url(b, clientType="dashboard", lastSeq=str(last_seq), epoch=epoch)) as ws:
        missed = []
        while len(missed) < 3:
            m = await recv_until(ws, lambda m: m["type"] == "data" and is_override(m["data"]))
            missed.append((m["seq"], m["data"]["buyRate"]))
    assert [seq for seq, _ in missed] == [last_seq + 1, last_seq + 2, last_seq + 3]
    assert [buy for _, buy in missed] == [1.38, 1.39, 1.36]


class Proxy:
    """A TCP proxy (to Redis or PostgreSQL) that the test can cut and restore, a real
    outage, or freeze and thaw: a server that holds its connections and answers nothing."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.port = 0
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.flowing = asyncio.Event()
        self.flowing.set()

    def freeze(self) -> None:
        self.flowing.clear()

    def thaw(self) -> None:
        self.flowing.set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for w in self.writers:
            w.close()
        self.writers.clear()
        await self.server.wait_closed()

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target)
        self.writers += [writer, up_w]

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await r.read(65536):
                    await self.flowing.wait()  # frozen: bytes are held, nothing answers
                    w.write(data)
                    await w.drain()
            w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))


async def test_a_node_cut_off_from_redis_catches_up_from_the_database(
    fleet: Fleet, redis_url: str
) -> None:
    proxy = Proxy(int(redis_url.split(":")[2].split("/")[0]))
    await proxy.start()
    a = await fleet("a")
    # B reaches Redis through the proxy, and does not poll the database on its own soon.
    b_url = f"redis://127.0.0.1:{proxy.port}/0"
    b = await fleet("b", backplane={"url": b_url, "poll_interval_s": 600})
    assert b.fleet is not None
    async with connect(ws_url(b, clientType="store_os", storeId="s1")) as ws:
        await recv_until(ws, lambda m: m["type"] == "rate_update" and m["data"].get("snapshot"))
        await proxy.cut()
        deadline = time.monotonic() + timeout(5)
        while b.fleet.backplane.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert not b.fleet.backplane.connected
        fetches = b.feed._fetches
        await set_rate(a, 1.37, 1.33)  # published while B cannot hear it
        await set_rate(a, 1.38, 1.34)
        await asyncio.sleep(0.2)
        assert b.hub.seq < a.hub.seq
        while b.feed._fetches == fetches:  # hearing no quotes, B polls its own market
            assert time.monotonic() < deadline, "node b cut off from Redis polls nothing"
            await asyncio.sleep(0.05)
        await proxy.start()  # Redis is back: B resubscribes, then reads what it missed
        got = [(await recv_until(ws, is_override, within=10))["data"]["buyRate"] for _ in (1, 2)]
        assert got == [1.37, 1.38]
        await recv_until(ws, has_rate(1.38))
    st = b.status()["integration"]["backplane"]
    assert st["reconnects"] >= 1 and st["filledFromDatabase"] >= 2 and st["gapSeqs"] == 0
    await proxy.cut()


async def test_only_one_node_expires_an_override(fleet: Fleet) -> None:
    a, b = await fleet("a"), await fleet("b")
    body = {
        "currencyPair": "USD/CAD",
        "buyRate": 1.37,
        "sellRate": 1.33,
        "storeId": "s1",
        "validUntil": int((time.time() + 1.5) * 1000),
    }
    assert (await api(a, "POST", "/api/rates/set", body)).status_code == 200
    deadline = time.monotonic() + timeout(10)
    while time.monotonic() < deadline:
        events = await asyncio.to_thread(a.store.events_after, 0)
        if any(e.type == "rate_override_expired" for e in events):
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.5)  # both nodes' expiry loops have run by now
    events = await asyncio.to_thread(a.store.events_after, 0)
    assert [e.type for e in events].count("rate_override_expired") == 1
    for rt in (a, b):
        assert not [o for o in rt.engine.overrides.all() if o.store_id == "s1"]


async def test_a_node_on_postgresql_keeps_its_state_across_a_restart(
    make_config: Callable[..., Config], pg_url: str
) -> None:
    cfg = make_config(store={"url": pg_url})
    rt = Runtime(cfg)
    await rt.start()
    try:
        assert rt.store.kind == "postgresql"
        await set_rate(rt, 1.37, 1.33)
        epoch, seq = rt.hub.epoch, rt.hub.seq
    finally:
        await rt.stop()
    rt = Runtime(cfg)
    await rt.start()
    try:
        assert (rt.hub.epoch, rt.hub.seq) == (epoch, seq)
        got = await api(rt, "GET", "/api/rates/get?storeId=s1")
        usd = next(r for r in got.json()["data"] if r["currencyPair"] == "USD/CAD")
        assert usd["buyRate"] == 1.37
        verified = await api(rt, "GET", "/api/audit/verify")
        assert verified.status_code == 200, verified.text
        data = verified.json()["data"]
        assert data["ok"] is True and data["checked"] >= 1
    finally:
        await rt.stop()


def log_breach(store: Store, n: int) -> EventMessage:
    """Commit an event as another node would (seq from the shared counter)."""
    data = {"currencyPair": "USD/CAD", "kind": "test", "n": n}
    with store.session() as s:
        seq = store.next_seq(s)
        store.add_event(
            s,
            seq=seq,
            store_id=None,
            type="rate_threshold_breach",
            payload=json.dumps(data),
            ts_us=0,
        )
    return EventMessage("rate_threshold_breach", data, None, seq, time.time())


def is_breach(m: dict[str, Any]) -> bool:
    return m["type"] == "data" and m["data"]["type"] == "rate_threshold_breach"


async def test_an_event_ahead_of_a_lost_one_waits_then_the_lost_one_is_read_from_the_log(
    fleet: Fleet, pg_url: str, redis_url: str, channel: str
) -> None:
    b = await fleet("b", backplane={"reorder_wait_ms": 300, "poll_interval_s": 600})
    other = Store(pg_url)
    other.open()
    x = RedisBackplane(redis_url, channel, "x")
    assert await x.start(timeout(5))
    try:
        async with connect(ws_url(b, clientType="dashboard")) as ws:
            await recv_until(ws, lambda m: m["type"] == "welcome")
            lost = log_breach(other, 1)  # committed, but its message never went out
            later = log_breach(other, 2)
            t0 = time.monotonic()
            x.publish(later)
            first = await recv_until(ws, is_breach)
            second = await recv_until(ws, is_breach)
            waited = time.monotonic() - t0
        assert [first["seq"], second["seq"]] == [lost.seq, later.seq]
        assert [first["data"]["n"], second["data"]["n"]] == [1, 2]
        assert waited >= 0.3  # held for the reorder wait, not delivered out of order
        st = b.status()["integration"]["backplane"]
        assert st["reordered"] >= 1 and st["filledFromDatabase"] >= 1 and st["gapSeqs"] == 0
    finally:
        await x.stop()
        other.close()


async def test_an_event_no_message_announced_is_found_by_polling(fleet: Fleet, pg_url: str) -> None:
    b = await fleet("b", backplane={"poll_interval_s": 0.2})
    other = Store(pg_url)
    other.open()
    try:
        async with connect(ws_url(b, clientType="dashboard")) as ws:
            await recv_until(ws, lambda m: m["type"] == "welcome")
            lost = log_breach(other, 1)
            got = await recv_until(ws, is_breach)
        assert got["seq"] == lost.seq
    finally:
        other.close()


async def test_a_node_whose_database_goes_away_refuses_writes_and_recovers(
    fleet: Fleet, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = Proxy(5432)
    await proxy.start()
    a = await fleet("a")
    b_url = pg_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}", 1)
    assert b_url != pg_url
    b = await fleet("b", store={"url": b_url}, backplane={"poll_interval_s": 0.2})
    async with connect(ws_url(b, clientType="store_os", storeId="s1")) as ws:
        await recv_until(ws, lambda m: m["type"] == "rate_update" and m["data"].get("snapshot"))
        await proxy.cut()
        body = {"currencyPair": "USD/CAD", "buyRate": 1.38, "sellRate": 1.34, "storeId": "s1"}
        refused = await api(b, "POST", "/api/rates/set", body)
        assert refused.status_code == 503, refused.text
        assert "database is unavailable" in refused.text, refused.text
        await set_rate(a, 1.37, 1.33)  # the rest of the fleet goes on
        ev = await recv_until(ws, is_override)  # B's clients still hear of it (Redis)
        assert ev["data"]["buyRate"] == 1.37
        await asyncio.sleep(0.5)  # B cannot read the override into its engine yet
        await proxy.start()
        await recv_until(ws, has_rate(1.37), within=10)  # and does once the database is back
        await set_rate(b, 1.39, 1.33)
        await recv_until(ws, has_rate(1.39))
    downs = [r for r in caplog.records if "cannot read" in r.getMessage()]
    assert len(downs) <= 2  # logged once per outage, not once per retry
    await proxy.cut()


async def test_a_fleet_node_exports_its_backplane_metrics(fleet: Fleet) -> None:
    a, b = await fleet("a"), await fleet("b")
    await set_rate(a, 1.37, 1.33)
    deadline = time.monotonic() + timeout(5)
    while b.hub.seq < a.hub.seq and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.api_port}") as c:
        text = (await c.get("/metrics")).text
    assert "ratehub_backplane_connected 1.0" in text
    assert "ratehub_backplane_received_total 1.0" in text
    assert f"ratehub_event_seq_delivered {float(a.hub.seq)}" in text


async def test_one_node_leads_the_fleet_wide_jobs_and_another_takes_over(fleet: Fleet) -> None:
    a, b = await fleet("a"), await fleet("b")
    assert a.fleet is not None and b.fleet is not None
    deadline = time.monotonic() + timeout(5)
    while not (await a.fleet.leads() or await b.fleet.leads()):
        assert time.monotonic() < deadline, "no node leads"
        await asyncio.sleep(0.05)
    leader, other = (a, b) if await a.fleet.leads() else (b, a)
    assert other.fleet is not None and not await other.fleet.leads()
    await leader.stop()
    assert await other.fleet.leads()


async def test_fleets_in_two_schemas_of_one_database_each_have_a_leader(
    fleet: Fleet, pg_url: str, channel: str
) -> None:
    """The leader lock is keyed by the schema: a second fleet (another schema of the same
    database, its own channel) elects its own leader instead of waiting on the first's."""
    a = await fleet("a")
    assert a.fleet is not None and await a.fleet.leads()
    other = f"{channel}_other".replace("-", "_")
    admin = Store(pg_url)
    try:
        with admin.engine.begin() as conn:
            conn.execute(sql_text(f'CREATE SCHEMA "{other}"'))
        url = pg_url.rsplit("search_path%3D", 1)[0] + f"search_path%3D{other}"
        b = await fleet("b", store={"url": url}, backplane={"channel": other})
        assert b.fleet is not None and await b.fleet.leads()
        assert await a.fleet.leads()
        await b.stop()
    finally:
        with admin.engine.begin() as conn:
            conn.execute(sql_text(f'DROP SCHEMA "{other}" CASCADE'))
        admin.engine.dispose()


async def test_a_breach_is_announced_once_per_fleet(fleet: Fleet) -> None:
    a, b = await fleet("a"), await fleet("b")
    await set_rate(a, 1.42, 1.38)  # mid 1.40: past warn_deviation (3 %) from ~1.35
    assert b.fleet is not None  # both nodes know the override; one checks thresholds
    deadline = time.monotonic() + timeout(10)

    async def breaches() -> int:
        events = await asyncio.to_thread(a.store.events_after, 0)
        return [e.type for e in events].count("rate_threshold_breach")

    while await breaches() == 0:
        assert time.monotonic() < deadline, "no breach was announced"
        await asyncio.sleep(0.1)
    await asyncio.sleep(2.5)  # every node's threshold loop has run twice more
    assert await breaches() == 1


async def test_a_key_created_or_revoked_on_one_node_takes_effect_on_another(
    fleet: Fleet,
) -> None:
    a = await fleet("a", backplane={"key_sync_interval_s": 0.05})
    b = await fleet("b", backplane={"key_sync_interval_s": 0.05})
    r = await api(a, "POST", "/api/keys", {"name": "till 7", "role": "store", "stores": ["s1"]})
    assert r.status_code in (200, 201), r.text
    key = r.json()["data"]
    secret, key_id = key["secret"], key["id"]
    headers = {"Authorization": f"Bearer {secret}"}

    async def status_on_b() -> int:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{b.api_port}") as c:
            got = await c.get("/api/rates/get", params={"storeId": "s1"}, headers=headers)
            return got.status_code

    async def until(code: int) -> None:
        deadline = time.monotonic() + timeout(5)
        while (last := await status_on_b()) != code:
            assert time.monotonic() < deadline, f"node b still answers {last}, not {code}"
            await asyncio.sleep(0.05)

    await until(200)  # created on a, works on b
    url = f"ws://127.0.0.1:{b.api_port}/api/rates/websocket?clientType=store_os&storeId=s1"
    async with connect(f"{url}&token={secret}") as ws:
        assert json.loads(await ws.recv())["type"] == "welcome"
        r = await api(a, "POST", f"/api/keys/{key_id}/revoke", {"reason": "till stolen"})
        assert r.status_code == 200, r.text
        await until(401)  # revoked on a, refused on b ...
        with pytest.raises(ConnectionClosed) as closed:  # ... and b closed its WebSocket
            async with asyncio.timeout(timeout(5)):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_a_node_generating_its_admin_key_leaves_the_other_nodes_keys_alone(
    fleet: Fleet,
) -> None:
    """Without API_SECRET_KEY each node generates an admin key into its own state
    directory; a node starting up (or replacing a lost file) must not revoke the key
    another node's operators are using."""
    no_key = {"API_SECRET_KEY": ""}
    sync = {"key_sync_interval_s": 0.05}
    a = await fleet("a", env=no_key, backplane=sync)
    b = await fleet("b", env=no_key, backplane=sync)
    keys = {rt: (rt.state_dir / "admin.key").read_text().strip() for rt in (a, b)}
    assert keys[a] != keys[b]
    deadline = time.monotonic() + timeout(5)
    # Until each node's key sync has read the other's key (and so its revocations too).
    while not all(rt.keys.known(str(key_id_of(keys[o]))) for rt, o in ((a, b), (b, a))):
        assert time.monotonic() < deadline, "the nodes did not sync each other's keys"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)  # and a few syncs more
    for rt, key in keys.items():
        for node in (a, b):
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{node.api_port}") as c:
                got = await c.get("/api/keys", headers={"Authorization": f"Bearer {key}"})
            assert got.status_code == 200, (rt.config.backplane.node_id, got.text)


async def test_the_fleet_prices_from_one_market_and_a_new_leader_takes_it_over(
    fleet: Fleet,
) -> None:
    """The leading node polls the market (here the simulated feed) and shares what it
    takes in; the other nodes poll nothing and price from the same quotes. When the
    leader stops, another node takes the market over, going on from the shared prices."""
    fast = {"update_frequency_ms": 50}
    a = await fleet("a", feed=fast)
    b = await fleet("b", feed={**fast, "seed": 99})  # its own walk would differ
    pairs = list(a.engine.pairs)

    def mids(rt: Runtime) -> dict[Any, Any]:
        return {p: q.mid for p in pairs if (q := rt.engine.market.quote(p)) is not None}

    deadline = time.monotonic() + timeout(10)
    while not (a.fleet and b.fleet and b.fleet.quotes_received >= 10 * len(pairs)):
        assert time.monotonic() < deadline, "node b got no quotes from node a"
        await asyncio.sleep(0.05)
    assert a._leading and not b._leading
    assert b.feed._fetches == 1  # its start-up seed only: b polls nothing
    backplane = b.status()["integration"]["backplane"]
    assert backplane["leads"] is False and backplane["quotesReceived"] >= 10 * len(pairs)
    while mids(a) != mids(b):  # a quote can be on its way; they meet between ticks
        assert time.monotonic() < deadline, f"{mids(a)} != {mids(b)}"
        await asyncio.sleep(0.005)

    # b's idle feed follows the shared prices, so that as a leader it goes on from them.
    assert dict(b.feed.mids) == mids(b)
    await a.stop()
    deadline = time.monotonic() + timeout(10)
    while b.feed._fetches < 5:
        assert time.monotonic() < deadline, "node b did not take the market over"
        await asyncio.sleep(0.05)
    assert b._leading


async def test_a_breaker_is_shared_and_announced_once_per_fleet(fleet: Fleet) -> None:
    """Prices pushed to any node reach every engine; wild ones open the circuit breaker on
    every node, and the fleet announces and audits it once (the node taking in the market)."""
    sources = {"breaker_rejections": 3, "pairs": {"USD/CAD": {"sources": ["push"]}}}
    a = await fleet("a", sources=sources)
    b = await fleet("b", sources=sources)
    r = await api(b, "POST", "/api/rates/push", {"symbol": "USD", "priceCAD": 1.35})
    assert r.status_code == 200, r.text
    usd = b.engine.pair("USD/CAD")
    deadline = time.monotonic() + timeout(5)
    while (q := a.engine.market.quote(usd)) is None or q.mid != Decimal("1.35"):
        assert time.monotonic() < deadline, "a price pushed to b did not reach a"
        await asyncio.sleep(0.02)
    for _ in range(3):  # wild prices, pushed to the node that does not lead
        r = await api(b, "POST", "/api/rates/push", {"symbol": "USD", "priceCAD": 9.99})
        assert r.status_code == 400
    for rt in (a, b):
        while not (await api(rt, "GET", "/api/rates/sources")).json()["data"]["USD/CAD"][
            "breakerOpen"
        ]:
            assert time.monotonic() < deadline, "the breaker did not open on every node"
            await asyncio.sleep(0.02)

    def opened(rt: Runtime) -> int:
        with rt.store.session() as s:
            return len(
                s.exec(  # type: ignore[call-overload]
                    sql_text("SELECT 1 FROM audit WHERE type = 'breaker_opened'")
                ).all()
            )

    deadline = time.monotonic() + timeout(5)
    while opened(a) == 0:  # the breaker events are written in the background
        assert time.monotonic() < deadline, "no breaker_opened audit record"
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # room for a second one, were another node to write it
    assert opened(a) == 1


async def test_a_client_offline_for_more_than_10000_fleet_events_resumes_from_the_database(
    fleet: Fleet, pg_url: str
) -> None:
    """The hub keeps the last 10,000 events in memory; a client further behind is served
    from the database's event log (hub.resume_retention_s), not told of a gap."""
    b = await fleet("b", backplane={"poll_interval_s": 0.2})
    async with connect(ws_url(b, clientType="dashboard")) as ws:
        welcome = await recv_until(ws, lambda m: m["type"] == "welcome")
        last_seq, epoch = welcome["seq"], welcome["epoch"]
    other = Store(pg_url)
    other.open()
    n = 10_050
    try:
        with other.session() as s:  # another node's busy day, committed in one go
            for i in range(n):
                other.add_event(
                    s,
                    seq=other.next_seq(s),
                    store_id=None,
                    type="rate_threshold_breach",
                    payload=json.dumps({"currencyPair": "USD/CAD", "kind": "test", "n": i}),
                    ts_us=int(time.time() * 1e6),
                )
    finally:
        other.close()
    deadline = time.monotonic() + timeout(20)
    while b.hub.seq < last_seq + n:  # B reads them from the log (nothing announced them)
        assert time.monotonic() < deadline, b.hub.seq
        await asyncio.sleep(0.1)
    assert b.hub.log_floor > last_seq  # the memory log no longer reaches back
    url = ws_url(b, clientType="dashboard", lastSeq=str(last_seq), epoch=epoch)
    async with connect(url, max_size=None) as ws:
        seqs: list[int] = []
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), timeout(10)))
            if is_breach(m):
                seqs.append(m["seq"])
            if m["type"] == "data" and m["data"]["type"] == "rate_update":
                snap = m["data"]
                if snap.get("snapshot"):
                    break
    assert seqs == list(range(last_seq + 1, last_seq + n + 1))
    assert snap["recovered"] is True and snap["missedEvents"] == n
    window = b.status()["websocketHub"]["resume"]
    assert window["retentionSeconds"] == 86400 and window["inMemoryFromSeq"] > last_seq + 1


async def test_a_stores_connection_cap_counts_every_nodes_connections(fleet: Fleet) -> None:
    cap = {"max_connections_per_store": 3}
    a, b = await fleet("a", hub=cap), await fleet("b", hub=cap)
    url_a, url_b = (ws_url(rt, clientType="store_os", storeId="s1") for rt in (a, b))
    async with connect(url_a), connect(url_a), connect(url_b):
        deadline = time.monotonic() + timeout(5)
        while a.pump.elsewhere.get("s:s1") != 1 or b.pump.elsewhere.get("s:s1") != 2:
            assert time.monotonic() < deadline, (a.pump.elsewhere, b.pump.elsewhere)
            await asyncio.sleep(0.1)  # each node shares its counts once a second
        for url in (url_a, url_b):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(url):
                    pass
            assert refused.value.response.status_code == 429
        async with connect(ws_url(b, clientType="store_os", storeId="s2")):
            pass  # another store's cap is its own


async def test_a_keys_request_rate_is_the_fleets_not_each_nodes(fleet: Fleet) -> None:
    limit = {"requests_per_second": 20, "burst": 5}
    a, b = await fleet("a", security=limit), await fleet("b", security=limit)
    clients = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{rt.api_port}", headers=AUTH) for rt in (a, b)
    ]
    ok = 0
    try:
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < 4.0:
            got = await asyncio.gather(*(c.get("/api/rates/get") for c in clients))
            if elapsed >= 1.5:  # both nodes know the other's demand by now
                ok += sum(r.status_code == 200 for r in got)
            await asyncio.sleep(0.01)
    finally:
        for c in clients:
            await c.aclose()
    # 2.5 s at 20/s for the fleet is ~50 (plus each node's burst); each node alone would
    # have let ~50 through.
    assert 30 <= ok <= 75, ok


async def test_every_node_lists_the_terminals_of_every_node(fleet: Fleet) -> None:
    a, b = await fleet("a"), await fleet("b")
    async with (
        connect(ws_url(a, clientType="store_os", storeId="s1")),
        connect(ws_url(b, clientType="store_os", storeId="s1")),
    ):
        deadline = time.monotonic() + timeout(5)
        while True:
            lists = [
                (await api(rt, "GET", "/api/stores/s1/terminals")).json()["data"] for rt in (a, b)
            ]
            if all(len(ts) == 2 for ts in lists):
                break
            assert time.monotonic() < deadline, lists  # each node shares once a second
            await asyncio.sleep(0.1)
        for ts in lists:
            assert sorted(t["node"] for t in ts) == ["a", "b"]
        stores = (await api(b, "GET", "/api/stores")).json()["data"]
        assert [r for r in stores if r["storeId"] == "s1"][0]["terminals"] == 2
    # A node's entries go with it (here: its connections closed; the share follows).
    deadline = time.monotonic() + timeout(5)
    while (await api(a, "GET", "/api/stores/s1/terminals")).json()["data"]:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)

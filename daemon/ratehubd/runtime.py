"""Composition root and lifecycle: start, serve, drain, stop.

``Runtime(config).start()`` opens the store, restores state, and starts the
listeners and background loops; ``stop()`` drains: it stops accepting, tells
hub clients to reconnect with their resume position, lets the writer finish
every queued write and closes the database. ``run(config)`` is the programmatic
equivalent of the ``ratehubd`` command.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ratehubd import auth, wire
from ratehubd.adapters import systemd
from ratehubd.adapters.clock import SystemClock
from ratehubd.adapters.fanout import make_fanout
from ratehubd.adapters.feeds.base import poll
from ratehubd.adapters.feeds.registry import build_sources
from ratehubd.adapters.feeds.simulated import SimulatedFeed
from ratehubd.adapters.http_api import VERSION, create_app
from ratehubd.adapters.http_market import add_market_routes, require_feed
from ratehubd.adapters.http_security import SecurityHeaders
from ratehubd.adapters.metrics import add_ops_routes
from ratehubd.adapters.tls import server_context
from ratehubd.adapters.writer import Writer
from ratehubd.adapters.ws_pump import HubPump
from ratehubd.adapters.ws_server import HubEndpoint
from ratehubd.config import Config
from ratehubd.engine.audit import SYSTEM_ACTOR, AuditEvent, retention_cutoff
from ratehubd.engine.cross import Quote
from ratehubd.engine.engine import RateEngine
from ratehubd.engine.pairs import Pair
from ratehubd.engine.sources import BookConfig
from ratehubd.errors import ConfigError, Conflict, SourceError, Unauthorized
from ratehubd.hub.hub import Hub, LoggedEvent, store_rows
from ratehubd.hub.session import CLOSE_DRAINING
from ratehubd.key_service import KeyService
from ratehubd.keylimits import KeyLimiter
from ratehubd.service import RateService
from ratehubd.store import audit as audit_store
from ratehubd.store import keys as key_rows
from ratehubd.store.audit import AuditQuery
from ratehubd.store.repository import Store, from_us, sqlite_url, to_us

log = logging.getLogger("ratehub")

ADMIN_KEY_FILE = "admin.key"


def _log_source_error(exc: SourceError) -> None:
    log.warning("market source %s: %s", exc.source, exc.message)


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it a keep-alive response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class Runtime:
    def __init__(self, config: Config, *, clock: SystemClock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.state_dir = config.state_path
        self.keys = auth.KeyRing()
        self.limiter = KeyLimiter(config.security.requests_per_second, config.security.burst)
        self.tls = server_context(config.server)
        self.admin_key_file: Path | None = None
        self.api_port = 0
        self.hub_port: int | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._servers: list[Any] = []
        self._leading = False  # in a fleet: whether this node takes in the market
        self._market_fallback = False  # in a fleet without a leader: polls its own market
        self._counts_at = time.monotonic()  # the last _share_counts
        self._fleet_terminals: list[dict[str, Any]] = []  # other nodes', as last shared
        self._resumes: set[asyncio.Task[None]] = set()  # reads of the event log for resumes
        self._stopped = asyncio.Event()
        self._samples: deque[tuple[float, int, int]] = deque(maxlen=11)
        self.started_at = time.time()
        self._oldest_event: tuple[int, int] | None = None  # (seq, ts_us), at the last prune

    # -- start ----------------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.config
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.store = Store(
            cfg.store.url or sqlite_url(self.state_dir),
            write_timeout_ms=cfg.store.write_timeout_ms,
            connect_timeout_s=cfg.store.connect_timeout_s,
        )
        await asyncio.to_thread(self.store.open)
        await asyncio.to_thread(self._load_keys)
        self.engine = RateEngine(
            cfg.pair_policies(),
            cfg.override_policy(),
            cfg.threshold_policies(),
            self._book_config(),
            cfg.store_spreads(),
        )
        hwm, events, overrides, versions, quotes = await asyncio.to_thread(self._load_state)
        since = self.clock.now() - timedelta(days=1)
        for lock in await asyncio.to_thread(self.store.load_locks, since):
            if lock.pair in self.engine.policies:
                self.engine.locks.commit(lock)
        for q in quotes:
            if q.pair in self.engine.policies:
                self.engine.market.restore(q)
                self.engine.sources.restore(q)  # shown stale until a source confirms it
        for ov in overrides:
            if ov.pair in self.engine.policies:
                self.engine.overrides.load(
                    ov, versions.get((str(ov.pair), ov.store_id), ov.version)
                )
        self.writer = Writer(self.store)
        self.writer.start()
        self.hub = Hub(
            epoch=self.store.epoch,
            pairs=self.engine.pairs,
            rates=lambda store_id: self.service.rate_table(store_id),
            queue_frames=cfg.hub.queue_frames,
            messages_per_second=cfg.hub.messages_per_second,
            message_burst=cfg.hub.message_burst,
            heartbeat_interval_ms=cfg.hub.heartbeat_interval_ms,
            first_seq=hwm + 1,
            authorize=lambda key_id, store_id: self._authorize_store(key_id, store_id),
            push=self._push,
            resume_ahead=10_000 if cfg.backplane.url else 0,
            fetch_history=self._fetch_history,
            confirm_timeout_s=cfg.hub.confirm_timeout_ms / 1000,
        )
        floor = events[0].seq - 1 if events else hwm
        self.hub.restore_log(events, floor)
        self.backplane, self.fleet = make_fanout(cfg, self.hub, self.engine, self.store)
        self.service = RateService(
            self.engine, self.hub, self.store, self.writer, self.clock, self.backplane
        )
        if self.fleet is not None:
            await self.fleet.start()
            self._spawn(self.fleet.run(), "fleet")
        self.feed = self._make_feed()
        self.service.on_quotes(await self.feed.fetch())  # every pair priced at once
        if self.fleet is not None:
            # One market for the fleet: the leading node polls the sources and shares
            # what it takes in (pushed prices too, from any node); every engine applies it.
            self.service.share_quotes_as = self.fleet.node_id
            self.service.announces_sources = self._takes_in_market
            self.fleet.on_quotes = self._quotes_from_fleet
            self._leading = await self.fleet.leads()
            self._spawn(self._every(1.0, self._check_lead), "fleet-lead")
        # Overrides and locks that lapsed while we were down: their events fire once, now.
        await self.service.expire_due()
        await self.service.expire_locks()
        self.pump = HubPump(
            self.hub,
            self.clock,
            cfg.hub.batch_window_ms / 1000,
            cfg.hub.heartbeat_interval_ms / 1000,
            debug=cfg.server.debug_websocket,
            max_per_key=cfg.hub.max_connections_per_key,
            max_per_store=cfg.hub.max_connections_per_store,
        )
        self.key_service = KeyService(
            self.keys, self.store, self.writer, self.clock, self._key_revoked
        )
        await self._start_listeners()
        self._spawn(self.pump.run(), "hub-pump")
        self._start_sources()
        self._spawn(self._every(1.0, self.service.expire_due), "expiry")
        self._spawn(self._every(1.0, self.service.expire_locks), "lock-expiry")
        self._spawn(self._every(1.0, self._check_thresholds), "thresholds")
        self._spawn(self._every(5.0, self.service.save_market), "market-save")
        self._spawn(self._every(cfg.hub.status_interval_s, self._publish_status), "status")
        self._spawn(self._every(1.0, self._sample_rates), "rates-sampler")
        self._spawn(self._every(cfg.audit.prune_interval_s, self.prune_audit), "audit-prune")
        await self.prune_events()
        self._spawn(self._every(60.0, self.prune_events), "events-prune")
        self._spawn(self._every(0.25, self._check_terminals), "terminals")
        if self.fleet is not None:
            # Keys live in the shared database; other nodes create and revoke them too.
            every = cfg.backplane.key_sync_interval_s
            self._spawn(self._every(every, self.key_service.sync), "keys")
            self._spawn(self._every(1.0, self._share_counts), "fleet-counts")

    async def _share_counts(self) -> None:
        """Connection caps per key and per store, and request limits per key, count every
        node's: each node shares its counts through Redis once a second and adds the
        others'."""
        assert self.fleet is not None
        now = time.monotonic()
        seconds = max(1e-3, now - self._counts_at)
        self._counts_at = now
        mine = self.pump.counts()
        asked = self.limiter.take_counts(seconds)
        mine.update({f"r:{k}": max(1, round(r)) for k, r in asked.items()})
        try:
            others = await self.fleet.backplane.share_counts(mine)
        except Exception:
            self.pump.elsewhere = {}  # Redis away: each node counts its own
            self.limiter.share({})
            self._fleet_terminals = []
            raise
        self.pump.elsewhere = others
        self.limiter.share({k[2:]: float(v) for k, v in others.items() if k.startswith("r:")})
        mine_terms = [
            t
            for store_id in {st for st, _ in self.hub.store_states(self.clock.time())}
            for t in self.terminals(store_id, local=True)
        ]
        self._fleet_terminals = await self.fleet.backplane.share_terminals(mine_terms)

    async def _check_lead(self) -> None:
        assert self.fleet is not None
        self._leading = await self.fleet.leads()
        # No node can lead while PostgreSQL is away (the election is an advisory lock in
        # it): a node that then hears no other node's quotes for a while polls its own
        # market until the database answers again, so the market never freezes.
        silent = time.monotonic() - self.fleet.quotes_heard_at > self._market_silence_s
        if self.fleet.database_answers:
            if self._market_fallback:
                log.warning("fleet: the database answers again; the leader polls the market")
            self._market_fallback = False
        elif silent and not self._leading and not self._market_fallback:
            log.warning(
                "fleet: no leader (the database is away) and no quotes for %.0f s: this node "
                "polls its own market until the database is back",
                self._market_silence_s,
            )
            self._market_fallback = True

    @property
    def _market_silence_s(self) -> float:
        return max(2.0, 3 * self.feed.interval_s)

    def _takes_in_market(self) -> bool:
        """Whether this node polls the market sources: always alone; in a fleet, the
        leader, any node cut off from Redis (it would hear no quotes: it keeps a market
        of its own until the backplane is back), and every node while no node can lead
        (the database is away) and no quotes arrive."""
        if self.fleet is None or self._leading or self._market_fallback:
            return True
        return not self.fleet.backplane.connected

    def _quotes_from_fleet(self, quotes: list[Quote]) -> None:
        for q in quotes:
            if q.source == self.feed.name and q.pair in self.feed.mids:
                self.feed.mids[q.pair] = q.mid  # a new leader's feed goes on from here
        self.service.on_quotes(quotes, from_fleet=True)

    async def _check_thresholds(self) -> None:
        """Breaches are announced once per fleet: only the leading node checks (as of
        the last ``_check_lead``, once a second)."""
        if self.fleet is None or self._leading:
            await self.service.check_thresholds()

    def _book_config(self) -> BookConfig:
        """The source book's config; the simulated feed stays fresh for three of its own
        periods even when RATE_UPDATE_FREQUENCY is set slow."""
        book = self.config.sources.book_config()
        slowest = 3 * self.config.feed.update_frequency_ms / 1000
        sim = book.budgets.get("simulated")
        if sim is not None and sim.seconds < slowest:
            budgets = {**book.budgets, "simulated": replace(sim, seconds=slowest)}
            book = replace(book, budgets=budgets)
        return book

    def _start_sources(self) -> None:
        """Poll the simulated feed and every enabled provider into the source book."""
        active = self._takes_in_market
        self._spawn(
            poll(self.feed, self.feed.interval_s, self.service.on_quotes, active=active),
            "feed-simulated",
        )
        self.http_sources = httpx.AsyncClient()
        for p in build_sources(self.config.sources, client=self.http_sources):
            self._spawn(
                poll(
                    p.source,
                    p.interval_s,
                    self.service.on_quotes,
                    on_error=_log_source_error,
                    active=active,
                ),
                f"feed-{p.source.name}",
            )
        self._spawn(self._every(1.0, self.service.check_sources), "sources-check")

    def _make_feed(self) -> SimulatedFeed:
        levels: dict[Pair, tuple[Decimal, Decimal, Decimal, str]] = {}
        for name, pc in self.config.pairs.items():
            pair = self.engine.pair(name)
            levels[pair] = (pc.start, pc.volatility, pc.tick, pc.kind)
        feed = SimulatedFeed(
            levels,
            self.config.feed.update_frequency_ms,
            self.config.feed.crypto_speedup,
            self.config.feed.seed,
            clock=self.clock.now,
        )
        for pair in levels:
            quote = self.engine.market.quote(pair)
            if quote is not None:
                feed.mids[pair] = quote.mid
        return feed

    def _load_state(self) -> tuple[int, list[LoggedEvent], list[Any], dict[Any, int], list[Any]]:
        hwm = self.store.seq_hwm()
        rows = self.store.events_after(max(0, hwm - 10_000))
        events = [_logged(r) for r in rows]
        return (
            hwm,
            events,
            self.store.active_overrides(),
            self.store.override_versions(),
            self.store.load_market(),
        )

    def _load_keys(self) -> None:
        key_rows.ensure_schema(self.store.engine)
        with self.store.session() as s:
            for key in key_rows.load_active(s):
                self.keys.add(key)
            secret = self._configured_secret()
            if secret is not None:
                self.keys.add(auth.env_key(secret))
                return
            if self._admin_key_file_works():
                self.admin_key_file = self.state_dir / ADMIN_KEY_FILE
                return
            key, text = auth.new_key("generated admin", auth.ADMIN)
            for old in self._replaced_admin_keys():
                key_rows.revoke(s, old.id, to_us(self.clock.now()))
                self.keys.revoke(old.id)
            key_rows.insert(s, key, to_us(self.clock.now()))
            self.keys.add(key)
        path = self.state_dir / ADMIN_KEY_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        os.chmod(path, 0o600)
        self.admin_key_file = path

    def _replaced_admin_keys(self) -> list[auth.ApiKey]:
        """The generated admin keys a new one replaces. On a single node: every one (only
        the newest is in its file). In a fleet the other nodes' generated keys are theirs
        and in use: only the one this node's own file named."""
        generated = [k for k in self.keys.all() if k.name == "generated admin"]
        if not self.config.backplane.url:
            return generated
        try:
            mine = auth.key_id_of((self.state_dir / ADMIN_KEY_FILE).read_text())
        except OSError:
            return []
        return [k for k in generated if k.id == mine]

    def _admin_key_file_works(self) -> bool:
        """The admin key file exists and names an admin key that is not revoked."""
        try:
            text = (self.state_dir / ADMIN_KEY_FILE).read_text()
        except OSError:
            return False
        key_id = auth.key_id_of(text)
        key = self.keys.get(key_id) if key_id else None
        return key is not None and key.role == auth.ADMIN

    def _key_revoked(self, key_id: str) -> None:
        """A revoked key's live WebSockets close now (1008), its rate bucket goes."""
        self.pump.close_key(key_id, "API key revoked")
        self.limiter.forget(key_id)

    def _configured_secret(self) -> str | None:
        sec = self.config.security
        if sec.api_secret_key is not None:
            return sec.api_secret_key.get_secret_value()
        if sec.api_secret_key_file:
            try:
                text = Path(sec.api_secret_key_file).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"security.api_secret_key_file: cannot read it: {exc}") from None
            if not text:
                raise ConfigError(
                    f"security.api_secret_key_file {sec.api_secret_key_file} is empty"
                )
            return text
        return None

    def _push(self, key_id: str, data: dict[str, Any]) -> dict[str, Any]:
        """A push_rate message from a WebSocket client with a feed (or admin) key."""
        key = self.keys.get(key_id)
        if key is None:
            raise Unauthorized("key no longer valid")
        require_feed(key)
        return self.service.push(data.get("symbol"), data.get("priceCAD"), key_id)

    def _authorize_store(self, key_id: str, store_id: str | None) -> None:
        key = self.keys.get(key_id)
        if key is None:
            from ratehubd.errors import Unauthorized

            raise Unauthorized("key no longer valid")
        auth.require_read(key, store_id)

    async def _start_listeners(self) -> None:
        cfg = self.config
        app = create_app(self)
        self.hub_endpoint = HubEndpoint(
            self.pump,
            self.keys,
            cfg.server.cors_origins,
            max_size=cfg.hub.max_frame_bytes,
            ping_interval=cfg.hub.ping_interval_s,
            ping_timeout=cfg.hub.ping_timeout_s,
            send_buffer=cfg.hub.send_buffer_bytes,
            close_timeout=cfg.hub.close_timeout_s,
            tls=self.tls is not None,
        )
        add_ops_routes(app, self)
        add_market_routes(app, self)
        sock = bind(cfg.server.host, cfg.server.port)
        self.api_port = sock.getsockname()[1]
        tls = self.tls is not None
        ucfg = uvicorn.Config(
            SecurityHeaders(app, tls=tls),
            log_level="warning",
            access_log=False,
            lifespan="off",
            # Upgrades on the API port go to the hub's own endpoint (a websockets
            # connection), not through ASGI: the same connection, checks and cost per
            # message as the hub port. uvicorn calls it as it would a protocol class.
            ws=self.hub_endpoint.upgrade,  # type: ignore[arg-type]
            server_header=False,
            timeout_graceful_shutdown=1,
            ssl_certfile=cfg.server.tls_cert_file if tls else None,
            ssl_keyfile=cfg.server.tls_key_file if tls and cfg.server.tls_key_file else None,
        )
        self.http = _Uvicorn(ucfg)
        self._spawn(self.http.serve(sockets=[sock]), "http")
        while not self.http.started:
            await asyncio.sleep(0.005)
        if cfg.server.hub_port >= 0:
            listener = await self.hub_endpoint.listen(
                cfg.server.host, cfg.server.hub_port, ssl=self.tls
            )
            self.hub_port = listener.sockets[0].getsockname()[1]
        self._servers.append(self.hub_endpoint)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        self._tasks.append(task)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def _every(self, seconds: float, fn: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``fn`` every ``seconds``. A failure is logged once with its traceback (a
        database outage fails every job every second: thousands of lines otherwise), then
        once a minute while it lasts, and its end once."""
        name = getattr(fn, "__name__", str(fn))
        failures, last_said = 0, 0.0
        while True:
            await asyncio.sleep(seconds)
            try:
                await fn()
            except Exception as exc:
                failures += 1
                if failures == 1:
                    last_said = time.monotonic()
                    log.exception("periodic %s failed; retrying every %g s", name, seconds)
                elif time.monotonic() - last_said >= 60:
                    last_said = time.monotonic()
                    log.warning("periodic %s still failing (%d times): %s", name, failures, exc)
                continue
            if failures:
                log.warning("periodic %s works again after %d failure(s)", name, failures)
                failures = 0

    # -- status ---------------------------------------------------------------------------

    async def _publish_status(self) -> None:
        """The guide's system_status event, to dashboards."""
        st = self.status()
        hub, eng = st["websocketHub"], st["rateEngine"]
        summary = {
            "status": st["integration"]["status"],
            "connections": hub["connections"],
            "activeOverrides": eng["activeOverrides"],
            "activeLocks": eng["activeLocks"],
            "breaches": len(eng["breaches"]),
            "stalePairs": [p for p, m in eng["marketData"].items() if m["stale"]],
        }
        self.hub.publish_status(summary, self.clock.time())

    async def _sample_rates(self) -> None:
        st = self.hub.stats
        self._samples.append((time.monotonic(), st.messages, st.frames))

    def _per_second(self) -> tuple[float, float]:
        if len(self._samples) < 2:
            return 0.0, 0.0
        (t0, m0, f0), (t1, m1, f1) = self._samples[0], self._samples[-1]
        dt = max(t1 - t0, 1e-9)
        return round((m1 - m0) / dt, 1), round((f1 - f0) / dt, 1)

    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        by_type: dict[str, int] = {}
        by_store: dict[str, int] = {}
        for s in self.hub.sessions.values():
            by_type[s.client_type] = by_type.get(s.client_type, 0) + 1
            by_store[s.store_id or "(global)"] = by_store.get(s.store_id or "(global)", 0) + 1
        st = self.hub.stats
        msg_rate, frame_rate = self._per_second()
        breakers = {h.pair: h for h in self.engine.sources.health(now)}
        market = {}
        for q in self.engine.market_quotes():
            health = breakers.get(q.pair)
            market[str(q.pair)] = {
                "rate": float(q.mid),
                "sources": list(q.sources),
                "ageSeconds": round((now - q.timestamp).total_seconds(), 3),
                "stale": self.engine.is_stale(q.pair, now),
                "breakerOpen": bool(health and health.breaker_open),
                "breakerReason": health.breaker_reason if health else None,
            }
        return {
            "websocketHub": {
                "running": True,
                "connections": len(self.hub.sessions),
                "byClientType": by_type,
                "byStore": by_store,
                "messages": st.messages,
                "frames": st.frames,
                "conflated": st.conflated,
                "dropped": st.dropped,
                "slowConsumerCloses": st.slow_closes,
                "rateLimited": st.rate_limited,
                "messagesPerSecond": msg_rate,
                "framesPerSecond": frame_rate,
                "fanoutLatencyMs": self.pump.latency_ms(),
                "seq": self.hub.seq,
                "epoch": self.hub.epoch,
                "batchWindowMs": self.config.hub.batch_window_ms,
                "heartbeatIntervalMs": self.config.hub.heartbeat_interval_ms,
                "terminals": self.hub.confirmations(self.clock.time()),
                "resume": self.resume_window(),
            },
            "rateEngine": {
                "running": True,
                "pairs": [str(p) for p in self.engine.pairs],
                "marketData": market,
                "activeOverrides": len([o for o in self.engine.overrides.all() if o.active(now)]),
                "activeLocks": len(self.engine.locks.all(state="active")),
                "locksCreated": self.service.locks_created,
                "breaches": self.service.breaches(),
                "ticksAccepted": self.service.ticks_accepted,
                "ticksRejected": self.service.ticks_rejected,
                "defaultSpread": float(self.config.engine.default_spread),
                "minSpread": float(self.config.engine.min_spread),
                "maxSpread": float(self.config.engine.max_spread),
                "feed": self.config.feed.kind,
            },
            "integration": {
                "status": "healthy",
                "version": VERSION,
                "uptimeSeconds": round(time.time() - self.started_at, 1),
                "database": self.store.kind,
                "backplane": (
                    {**self.fleet.status(), "pollsMarket": self._takes_in_market()}
                    if self.fleet
                    else {"kind": "memory"}
                ),
                "writes": {"batches": self.writer.batches, "ops": self.writer.ops},
                "listeners": {"api": self.api_port, "hub": self.hub_port},
                "timestamp": wire.now_ms(now),
            },
        }

    async def readiness_problems(self) -> list[str]:
        """Why this node should not get traffic now (empty when ready)."""
        problems = []
        if self._stopped.is_set():
            problems.append("draining")
        try:
            await asyncio.to_thread(self.store.ping)
        except Exception as exc:  # any driver error means the database is not usable
            problems.append(f"database: {type(exc).__name__}: {exc}")
        now = self.clock.now()
        stale = [str(p) for p in self.engine.pairs if self.engine.is_stale(p, now)]
        if stale:
            problems.append(f"market data stale: {', '.join(stale)}")
        return problems

    def extra_metrics(self) -> list[Any]:
        """More Prometheus metric families from optional parts (sources, backplane)."""
        return []

    # -- audit ----------------------------------------------------------------------------

    async def audit_query(self, q: AuditQuery) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            with self.store.session() as s:
                return [r.to_dict() for r in audit_store.query(s, q)]

        return await asyncio.to_thread(run)

    async def audit_verify(self) -> dict[str, Any]:
        """Verify the chain in a separate process, so hashing a million records does not
        hold this process's GIL (and the hub) for seconds."""
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            result = await loop.run_in_executor(pool, audit_store.verify_url, self.store.url)
        return result.to_dict()

    def _fetch_history(self, sid: int, first: int, last: int) -> None:
        """The hub asks for logged events older than its in-memory log (a client resuming
        from further back): read them from the database, then complete the resume."""

        async def fetch() -> None:
            events: list[LoggedEvent] = []
            try:
                rows = await asyncio.to_thread(self.store.events_between, first, last)
                events = [_logged(r) for r in rows]
            except Exception as exc:  # the database is away: the resume reports a gap
                log.warning(
                    "resume: cannot read events %d-%d from the database: %s", first, last, exc
                )
            self.hub.resume_history(sid, events, self.clock.time())
            self.pump.write_ready()

        # Not in _tasks (which lives as long as the daemon): one task per such resume.
        task = asyncio.get_running_loop().create_task(fetch(), name=f"resume-{sid}")
        self._resumes.add(task)
        task.add_done_callback(self._resumes.discard)
        task.add_done_callback(self._task_done)

    def terminals(self, store_id: str, *, local: bool = False) -> list[dict[str, Any]]:
        """A store's terminals as ``GET /api/stores/{id}/terminals`` lists them: this
        node's, and (``local`` False, in a fleet) every other node's as of its last share
        (at most a second old), stale first."""
        node = self.fleet.node_id if self.fleet is not None else None
        out = []
        for t in self.hub.terminals(store_id, self.clock.time()):
            owner = self.keys.get(t.pop("keyId"))
            t.update(keyName=owner.name if owner else None, node=node, storeId=store_id)
            out.append(t)
        if not local:
            out += [t for t in self._fleet_terminals if t.get("storeId") == store_id]
        order = {"stale": 0, "confirming": 1, "current": 2, "unconfirmed": 3}
        return sorted(
            out, key=lambda t: (order.get(t["state"], 9), t["node"] or "", t["sessionId"])
        )

    def stores(self) -> list[dict[str, Any]]:
        """Every store with terminals on any node of the fleet, and their states."""
        remote = [(t["storeId"], t["state"]) for t in self._fleet_terminals]
        return store_rows([*self.hub.store_states(self.clock.time()), *remote])

    async def _check_terminals(self) -> None:
        """Announce terminals that went stale (and came back) on this node."""
        for type_, store_id, data in self.hub.check_terminals(self.clock.time()):
            owner = self.keys.get(data.pop("keyId"))
            data["keyName"] = owner.name if owner else None
            data["node"] = self.fleet.node_id if self.fleet is not None else None
            self.service.terminal_changed(type_, store_id, data)

    async def prune_events(self) -> None:
        """Keep the event log (what clients resume from) for hub.resume_retention_s."""
        keep = self.clock.now() - timedelta(seconds=self.config.hub.resume_retention_s)
        await asyncio.to_thread(self.store.prune_events, to_us(keep))
        self._oldest_event = await asyncio.to_thread(self.store.oldest_event)

    def resume_window(self) -> dict[str, Any]:
        """How far back a client can resume: the oldest logged event at the last prune."""
        oldest = self._oldest_event
        return {
            "retentionSeconds": self.config.hub.resume_retention_s,
            "oldestSeq": oldest[0] if oldest else None,
            "oldestAt": wire.iso(from_us(oldest[1])) if oldest else None,
            "inMemoryFromSeq": self.hub.log_floor + 1,
        }

    async def prune_audit(self) -> None:
        cutoff = retention_cutoff(self.clock.now(), self.config.audit.retention_years)
        try:
            while await self.writer.write(lambda s: audit_store.prune(s, cutoff, max_rows=10_000)):
                await asyncio.sleep(0)
        except Conflict as exc:
            log.error("audit pruning refused, the records to prune do not verify: %s", exc.message)

    # -- reload ---------------------------------------------------------------------------

    def reload(self, new: Config) -> list[str]:
        """Swap in what can change at run time, all at once, between two loop steps:
        pair policies (spreads, ticks, bounds, thresholds), override policy, hub limits
        and the admin key file. Returns the keys that need a restart to take effect."""
        old = self.config
        restart = [
            f"server.{k}"
            for k in ("host", "port", "hub_port", "state_dir", "tls_cert_file", "tls_key_file")
            if getattr(old.server, k) != getattr(new.server, k)
        ]
        if set(new.pairs) != set(old.pairs):
            restart.append("pairs (the set of pairs)")
        policies = new.pair_policies() if set(new.pairs) == set(old.pairs) else None
        self.config = new
        if policies is not None:
            self.engine.policies.update(policies)
            self.engine.thresholds.policies.update(new.threshold_policies())
        self.engine.override_policy = new.override_policy()
        self.engine.store_spreads = new.store_spreads()
        self.pump.max_per_key = new.hub.max_connections_per_key
        self.pump.max_per_store = new.hub.max_connections_per_store
        self.hub.configure_limits(new.hub.messages_per_second, new.hub.message_burst)
        self.limiter.configure(new.security.requests_per_second, new.security.burst)
        secret = self._configured_secret()
        if secret is not None:
            self.keys.add(auth.env_key(secret))
        for key in restart:
            log.warning("reload: %s changed; it takes effect at the next restart", key)
        log.info("configuration reloaded")
        event = AuditEvent(
            type="config_reloaded",
            actor=SYSTEM_ACTOR,
            after={"needsRestart": restart},
            reason="SIGHUP",
            source="config",
        )
        self._spawn(self.service.audit(event), "audit-reload")
        return restart

    def status_line(self) -> str:
        now = self.clock.now()
        active = sum(1 for o in self.engine.overrides.all() if o.active(now))
        return f"serving on :{self.api_port}; {len(self.hub.sessions)} clients; {active} overrides"

    async def notify_status(self, notifier: systemd.Notifier) -> None:
        notifier.status(self.status_line())

    # -- stop -----------------------------------------------------------------------------

    async def stop(self) -> None:
        """Drain: refuse new hub clients, send pending batches, tell clients to come
        back with their resume position, finish every queued write, close."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.pump.accepting = False
        self.pump.tick()
        self.pump.close_all(CLOSE_DRAINING)
        await asyncio.sleep(0.05)
        for server in self._servers:
            server.close()
        self.http.should_exit = True
        for task in self._tasks:
            if task.get_name() != "http":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
        with contextlib.suppress(Exception):
            await self.service.save_market()
        if hasattr(self, "http_sources"):
            await self.http_sources.aclose()
        if self.fleet is not None:
            await self.fleet.stop()
        await asyncio.to_thread(self.writer.stop)
        await asyncio.to_thread(self.store.close)

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


async def serve(
    config: Config,
    on_ready: Callable[[Runtime], None] | None = None,
    reload_config: Callable[[], Config] | None = None,
) -> None:
    """Run until SIGINT/SIGTERM: the first drains gracefully, a second forces exit.
    SIGHUP reloads the configuration (``reload_config``) and keeps the running one if
    the new one is invalid. Speaks the systemd notify protocol when NOTIFY_SOCKET is set."""
    notifier = systemd.Notifier.from_env()
    rt = Runtime(config)
    await rt.start()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_stop() -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            log.warning("second signal: exiting now")
            os._exit(1)
        notifier.stopping("draining")
        stop.set()

    def on_hup() -> None:
        notifier.reloading("reloading configuration")
        status = None
        try:
            if reload_config is not None:
                rt.reload(reload_config())
        except ConfigError as exc:
            log.error("reload refused, keeping the running configuration: %s", exc.message)
            status = f"reload refused: {exc.problems[0]}; {rt.status_line()}"
        notifier.ready(status or rt.status_line())

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_stop)
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    watchdog = systemd.watchdog_interval()
    if watchdog is not None:
        rt._spawn(systemd.watchdog_loop(notifier, watchdog), "watchdog")
    rt._spawn(rt._every(10.0, lambda: rt.notify_status(notifier)), "notify-status")
    try:
        if on_ready:
            on_ready(rt)
        notifier.ready(rt.status_line())
        await stop.wait()
        log.info("draining")
        try:
            await asyncio.wait_for(rt.stop(), timeout=config.server.drain_timeout_s)
        except TimeoutError:
            log.error("drain took longer than %.1f s; exiting", config.server.drain_timeout_s)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        notifier.close()


def run(
    config: Config,
    on_ready: Callable[[Runtime], None] | None = None,
    reload_config: Callable[[], Config] | None = None,
) -> None:
    asyncio.run(serve(config, on_ready, reload_config))


__all__ = ["Runtime", "run", "serve", "from_us"]


def _logged(row: Any) -> LoggedEvent:
    """An event row of the database's log as the hub's log entry."""
    return LoggedEvent(row.seq, row.store_id, row.type, json.loads(row.payload), row.ts_us // 1000)

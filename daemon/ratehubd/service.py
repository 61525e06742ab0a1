"""The rate service: where a request becomes a durable change and a broadcast.

Every mutation follows one path: validate and plan in the engine (pure, changes
nothing) -> write through the writer (durable on return) -> commit to the engine
-> publish to the hub. Nothing is acknowledged or broadcast before it is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlmodel import Session

from ratehubd import wire
from ratehubd.adapters.feeds.push import push_quote
from ratehubd.engine.audit import SYSTEM_ACTOR, AuditEvent, override_snapshot
from ratehubd.engine.cross import Quote
from ratehubd.engine.engine import RateEngine
from ratehubd.engine.events import (
    EngineEvent,
    MarketUpdated,
    OverrideCleared,
    OverrideExpired,
    OverrideSet,
    RatesChanged,
    SourceStateChanged,
)
from ratehubd.engine.locks import CONSUMED, EXPIRED, RELEASED, Lock, LockRequest
from ratehubd.engine.market import TickRejected
from ratehubd.engine.model import MarketQuote, Override
from ratehubd.engine.overrides import OverrideRequest
from ratehubd.engine.pairs import Pair
from ratehubd.engine.sources import BreakerClosed, BreakerOpened, QuoteRejected
from ratehubd.errors import Conflict, Forbidden, InvalidRates, InvalidRequest, NotFound
from ratehubd.hub.backplane import (
    Backplane,
    EventMessage,
    MarketMessage,
    MemoryBackplane,
    QuotesMessage,
    RatesDirty,
    apply,
)
from ratehubd.hub.hub import Hub
from ratehubd.store import audit as audit_store
from ratehubd.store.repository import Store, to_us

log = logging.getLogger("ratehub.service")


def _lock_snapshot(lock: Lock) -> dict[str, Any]:
    return {
        "lockId": lock.id,
        "pair": str(lock.pair),
        "storeId": lock.store_id,
        "buyRate": lock.buy,
        "sellRate": lock.sell,
        "state": lock.state,
        "expiresAt": lock.expires_at,
        "reference": lock.reference,
    }


# The global rate table is priced once per this many seconds (and per engine change) and
# copied for every store without rates of its own: the hub asks for every store per flush.
_TABLE_REUSE_S = 0.01

_LOCK_EVENTS = {
    CONSUMED: wire.RATE_LOCK_CONSUMED,
    RELEASED: wire.RATE_LOCK_RELEASED,
    EXPIRED: wire.RATE_LOCK_EXPIRED,
}

_EVENT_TYPES: dict[type, str] = {
    OverrideSet: wire.RATE_OVERRIDE_SET,
    OverrideCleared: wire.RATE_OVERRIDE_CLEARED,
    OverrideExpired: wire.RATE_OVERRIDE_EXPIRED,
}


class Clock(Protocol):
    def now(self) -> datetime: ...
    def time(self) -> float: ...


class WriterLike(Protocol):
    async def write(self, op: Any) -> Any: ...


class RateService:
    def __init__(
        self,
        engine: RateEngine,
        hub: Hub,
        store: Store,
        writer: WriterLike,
        clock: Clock,
        fanout: Backplane | None = None,
    ) -> None:
        self.engine = engine
        self.hub = hub
        if fanout is None:
            fanout = MemoryBackplane()
            fanout.subscribe(lambda msg: apply(hub, msg))
        self.fanout = fanout
        # In a fleet, this node's id: the quotes it takes in go to the other nodes'
        # engines too (every node prices from one market). None: a single node.
        self.share_quotes_as: str | None = None
        # Whether this node announces what its source book decides (breakers): in a fleet
        # only the node that takes in the market, so each is announced and audited once.
        self.announces_sources: Callable[[], bool] = lambda: True
        self.store = store
        self.writer = writer
        self.clock = clock
        self.started = clock.now()
        self.ticks_accepted = 0
        self.ticks_rejected = 0
        self.overrides_set = 0
        self.locks_created = 0
        self._market_dirty: dict[Pair, MarketQuote] = {}
        self._lock_writes: dict[str, asyncio.Future[Any]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._global_table: dict[Pair, dict[str, Any]] = {}
        self._global_key: tuple[int, int, float] | None = None
        self._changes = 0  # bumped by every engine change this service emits

    # -- reads ----------------------------------------------------------------------------

    def rates(self, store_id: str | None) -> list[dict[str, Any]]:
        return [wire.rate_dict(r) for r in self.engine.rates(store_id, self.clock.now())]

    def rate_table(self, store_id: str | None) -> dict[Pair, dict[str, Any]]:
        """The hub's view: every pair's wire rate for a store.

        A store with no override and no spread of its own publishes the global rates
        under its id; those are priced once per clock reading and copied, not priced again
        per store (the hub asks for every store with clients on every flush)."""
        now = self.clock.now()
        if store_id is not None and not self.engine.store_has_own_rates(store_id, now):
            key = (
                self._changes,
                self.engine.overrides.mutations,
                now.timestamp() // _TABLE_REUSE_S,
            )
            if self._global_key != key:
                self._global_table = self._table(None, now)
                self._global_key = key
            return {p: {**r, "storeId": store_id} for p, r in self._global_table.items()}
        return self._table(store_id, now)

    def _table(self, store_id: str | None, now: datetime) -> dict[Pair, dict[str, Any]]:
        return {r.pair: wire.rate_dict(r) for r in self.engine.rates(store_id, now)}

    def market(self) -> list[dict[str, Any]]:
        return [wire.market_dict(q) for q in self.engine.market_quotes()]

    def overrides(self, store_id: str | None = None) -> list[dict[str, Any]]:
        now = self.clock.now()
        return [
            wire.override_dict(ov)
            for ov in self.engine.overrides.all()
            if ov.active(now) and (store_id is None or ov.store_id in (None, store_id))
        ]

    # -- mutations ------------------------------------------------------------------------
    #
    # Each one: plan in the engine (raises on bad input, changes nothing) -> ``_durable``
    # (the change, its hub event and its audit record in one transaction) -> commit to
    # the engine -> publish.

    async def _durable(
        self,
        change: Callable[[Session], bool | None],
        event: tuple[str, str | None, dict[str, Any]],
        audit: AuditEvent,
        now: datetime,
    ) -> int | None:
        """Write ``change`` with its hub event and audit record atomically. Returns the
        event's seq, or None when ``change`` declined (returned False): nothing written.

        The seq is allocated inside the transaction (``Store.next_seq``): on a shared
        database every node's events are numbered in commit order, without gaps."""

        def op(s: Session) -> int | None:
            if change(s) is False:
                return None
            return self._record(s, event, audit, now)

        seq: int | None = await self.writer.write(op)
        return seq

    def _record(
        self,
        s: Session,
        event: tuple[str, str | None, dict[str, Any]],
        audit: AuditEvent,
        now: datetime,
    ) -> int:
        """In the change's transaction: its hub event (with a seq from the fleet's counter)
        and its audit record. Returns the seq."""
        type_, store_id, data = event
        seq = self.store.next_seq(s)
        self._log_event(s, seq, type_, store_id, data, now)
        audit_store.append(s, audit, now)
        return seq

    async def set_override(self, req: wire.SetRateRequest, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        request = self._override_request(req)
        # expectedVersion is checked in the writing transaction, against the database:
        # this engine's memory may be behind another node's write.
        planned = self.engine.plan_override(
            replace(request, expected_version=None),
            override_id=uuid.uuid4().hex,
            author=actor,
            now=now,
        )
        rate = self.engine.preview(planned, now)
        before = self.engine.overrides.get(planned.pair, planned.store_id, now)
        written: dict[str, Any] = {}

        def op(s: Session) -> int:
            # The version is the database's: the key's current one plus one, read in the
            # transaction that holds the fleet's event counter, so versions (and the
            # compare-and-set) are one sequence across every node.
            current = self.store.override_version(s, str(planned.pair), planned.store_id)
            expected = request.expected_version
            if expected is not None and expected != current:
                raise Conflict(
                    f"override for {planned.pair} at {planned.store_id or 'all stores'} is at "
                    f"version {current}, not {expected}; reload and retry",
                    currentVersion=current,
                )
            ov = replace(planned, version=current + 1)
            data = {**wire.override_dict(ov), "rate": wire.rate_dict(rate)}
            audit = AuditEvent(
                type="override_set",
                actor=actor,
                store_id=ov.store_id,
                pair=ov.pair,
                before=override_snapshot(before) if before else None,
                after=override_snapshot(ov),
                reason=ov.reason,
                source=ov.source,
            )
            self.store.add_override(s, ov)
            written.update(ov=ov, data=data)
            return self._record(s, (wire.RATE_OVERRIDE_SET, ov.store_id, data), audit, now)

        seq: int = await self.writer.write(op)
        ov, data = written["ov"], written["data"]
        self.overrides_set += 1
        # Committed means announced, even when this engine already holds a newer version of
        # the key (another node's later write): clients apply events in seq order, and so
        # end on the database's winner.
        self._announce(self.engine.commit_override(ov), now, wire.RATE_OVERRIDE_SET, data, seq)
        if self.store.shared:
            await self._catch_up_override(ov.pair, ov.store_id)
        return wire.rate_dict(self.engine.rate(ov.pair, ov.store_id, self.clock.now()))

    async def _catch_up_override(self, pair: Pair, store_id: str | None) -> None:
        """Bring in a newer override another node committed at this key meanwhile, so the
        operator's answer is the rate in force now, not one already superseded."""
        read = asyncio.to_thread(self.store.active_override, str(pair), store_id)
        try:  # the write is committed: a database that stops answering now must not hold
            found = await asyncio.wait_for(read, self.store.write_timeout_s)  # the answer
        except Exception as exc:
            log.warning("override %s at %s: could not read it back (%s)", pair, store_id, exc)
            return
        if found is not None:
            self._emit(self.engine.commit_override(found), self.clock.now(), None)

    async def clear_override(
        self, pair_text: str, store_id: str | None, actor: str, reason: str | None = None
    ) -> dict[str, Any]:
        now = self.clock.now()
        pair = self.engine.pair(pair_text)
        ov = self.engine.plan_clear(pair, store_id, now)
        await self._end_override(ov, "cleared", actor, now, reason)
        return wire.rate_dict(self.engine.rate(pair, store_id, self.clock.now()))

    async def expire_due(self) -> int:
        """Expire overrides whose validUntil passed; each fires its event once."""
        now = self.clock.now()
        due = self.engine.due_expiries(now)
        for ov in due:
            await self._end_override(ov, "expired", SYSTEM_ACTOR, now, None)
        return len(due)

    async def _end_override(
        self, ov: Override, how: str, actor: str, now: datetime, reason: str | None
    ) -> None:
        data = {**wire.override_dict(ov), "endedBy": actor}
        type_ = wire.RATE_OVERRIDE_CLEARED if how == "cleared" else wire.RATE_OVERRIDE_EXPIRED
        audit = AuditEvent(
            type=f"override_{how}",
            actor=actor,
            store_id=ov.store_id,
            pair=ov.pair,
            before=override_snapshot(ov),
            reason=reason or ("validUntil passed" if how == "expired" else None),
            source=ov.source,
        )
        seq = await self._durable(
            lambda s: self.store.end_override(s, ov, how, actor, now),
            (type_, ov.store_id, data),
            audit,
            now,
        )
        if seq is None:
            # Another node of the fleet ended it first (its event tells every client):
            # catch this engine up, and tell a clearing operator the truth.
            self._emit(self.engine.commit_expiry(ov), now, None)
            if how == "cleared":
                raise NotFound(
                    f"no active override for {ov.pair} at {ov.store_id or 'all stores'} "
                    "(it had already ended)"
                )
            return
        if how == "cleared":
            self._announce(self.engine.commit_clear(ov, actor), now, type_, data, seq)
        else:
            self._announce(self.engine.commit_expiry(ov), now, type_, data, seq)

    def on_tick(self, pair: Pair, mid: Decimal, source: str) -> bool:
        """A single market tick outside the source book (tests, tools). False: rejected."""
        now = self.clock.now()
        try:
            events = self.engine.on_market_tick(pair, mid, source, now)
        except TickRejected as exc:
            self.ticks_rejected += 1
            log.warning("rejected %s tick from %s: %s", pair, source, exc.reason)
            return False
        self.ticks_accepted += 1
        self._emit(events, now, None)
        return True

    def on_quotes(self, quotes: list[Quote], *, from_fleet: bool = False) -> list[str]:
        """One poll of a market-data source, a pushed price, or (``from_fleet``) what
        another node of the fleet took in. Returns the reasons of rejected quotes."""
        now = self.clock.now()
        events = self.engine.on_quotes(quotes, now)
        self.ticks_accepted += sum(isinstance(ev, MarketUpdated) for ev in events)
        self._emit(events, now, None)
        if self.share_quotes_as is not None and not from_fleet and quotes:
            # All of them, rejected ones too: every node's source book sees one stream.
            shared = [wire.quote_wire(q) for q in quotes]
            self.fanout.publish(QuotesMessage(shared, self.share_quotes_as))
        return [
            ev.event.reason
            for ev in events
            if isinstance(ev, SourceStateChanged) and isinstance(ev.event, QuoteRejected)
        ]

    def push(self, symbol: object, price_cad: object, actor: str) -> dict[str, Any]:
        """The dashboard's pushRateData(symbol, priceCAD): a quote from the `push` source."""
        now = self.clock.now()
        quote = push_quote(symbol, price_cad, now=now, pairs=set(self.engine.pairs))
        if "push" not in self.engine.sources.sources_for(quote.pair):
            raise Forbidden(
                f'{quote.pair} does not take pushed prices; list "push" in '
                f'[sources.pairs."{quote.pair}"] sources to allow it'
            )
        rejected = self.on_quotes([quote])
        if rejected:
            raise InvalidRates(f"pushed price refused: {rejected[0]}")
        log.debug("push %s %s by %s", quote.pair, quote.mid, actor)
        return {"currencyPair": str(quote.pair), "priceCAD": float(quote.mid), "accepted": True}

    async def check_sources(self) -> None:
        """Staleness and failover as time passes."""
        now = self.clock.now()
        self._emit(self.engine.check_sources(now), now, None)

    async def reset_breaker(self, pair_text: str, actor: str, reason: str | None) -> dict[str, Any]:
        now = self.clock.now()
        pair = self.engine.pair(pair_text)
        events = self.engine.reset_breaker(pair, now)
        audit = AuditEvent(
            type="breaker_reset", actor=actor, pair=pair, reason=reason, source="operator"
        )
        await self.writer.write(lambda s: audit_store.append(s, audit, now))
        self._emit(events, now, None)
        return self.source_health(pair)

    def source_health(self, pair: Pair | None = None) -> dict[str, Any]:
        now = self.clock.now()
        out = {}
        for h in self.engine.sources.health(now):
            if pair is not None and h.pair != pair:
                continue
            out[str(h.pair)] = {
                "status": h.status,
                "mode": h.mode,
                "breakerOpen": h.breaker_open,
                "breakerReason": h.breaker_reason,
                "sourcesUsed": list(h.sources_used),
                "reference": None if h.reference is None else float(h.reference),
                "routes": [
                    {
                        "source": r.source,
                        "role": r.role,
                        "status": r.status,
                        "mid": None if r.mid is None else float(r.mid),
                        "ageSeconds": None if r.age_s is None else round(r.age_s, 3),
                        "accepted": r.accepted,
                        "rejected": r.rejected,
                        "lastReason": r.last_reason,
                    }
                    for r in h.routes
                ],
            }
        return out

    def _on_source_state(self, ev: object, now: datetime) -> None:
        """Breakers open and close as durable, audited, broadcast events."""
        if isinstance(ev, QuoteRejected):
            self.ticks_rejected += 1
            log.info("rejected %s quote from %s: %s", ev.pair, ev.source, ev.reason)
        elif isinstance(ev, BreakerOpened | BreakerClosed):
            operator = isinstance(ev, BreakerClosed) and ev.by == "operator"
            if not operator and not self.announces_sources():
                return  # the node that took the quotes in announces it, for the fleet
            opened = isinstance(ev, BreakerOpened)
            detail = ev.reason if isinstance(ev, BreakerOpened) else f"closed by {ev.by}"
            data = {
                "kind": "circuit_breaker",
                "currencyPair": str(ev.pair),
                "storeId": None,
                "state": "begun" if opened else "cleared",
                "value": None,
                "threshold": None,
                "detail": detail,
                "at": wire.iso(ev.at),
            }
            audit = AuditEvent(
                type="breaker_opened" if opened else "breaker_reset",
                actor=SYSTEM_ACTOR,
                pair=ev.pair,
                after=data,
                reason=detail,
                source="sources",
            )
            if opened:
                log.warning("circuit breaker opened for %s: %s", ev.pair, detail)
            self._spawn_durable_event(wire.RATE_THRESHOLD_BREACH, data, audit, now)

    def _spawn_durable_event(
        self,
        type_: str,
        data: dict[str, Any],
        audit: AuditEvent,
        now: datetime,
        store_id: str | None = None,
    ) -> None:
        async def record() -> None:
            seq = await self._durable(lambda s: None, (type_, store_id, data), audit, now)
            assert seq is not None
            self._publish(type_, data, store_id, now, seq)

        task = asyncio.get_running_loop().create_task(record())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def terminal_changed(self, type_: str, store_id: str | None, data: dict[str, Any]) -> None:
        """A terminal went stale or came back: announced to dashboards, logged, audited."""
        now = self.clock.now()
        what = "stopped confirming" if type_ == wire.TERMINAL_STALE else "confirms again"
        audit = AuditEvent(
            type=type_,
            actor=SYSTEM_ACTOR,
            store_id=store_id,
            after={k: v for k, v in data.items() if v is not None},
            reason=f"terminal {data['sessionId']} ({data.get('keyName') or '?'}) {what}",
            source="hub",
        )
        log.warning("store %s: %s", store_id, audit.reason)
        self._spawn_durable_event(type_, data, audit, now, store_id)

    async def save_market(self) -> None:
        """Persist the latest quotes (called periodically, not per tick)."""
        quotes = list(self._market_dirty.values())
        self._market_dirty.clear()
        if quotes:
            await self.writer.write(lambda s: self.store.save_market(s, quotes))

    # -- locks ----------------------------------------------------------------------------

    def locks(self, store_id: str | None = None, state: str | None = None) -> list[dict[str, Any]]:
        return [wire.lock_dict(lk) for lk in self.engine.locks.all(store_id, state)]

    def lock(self, lock_id: str) -> dict[str, Any]:
        return wire.lock_dict(self.engine.locks.get(lock_id))

    async def create_lock(
        self, req: wire.LockCreateRequest, actor: str
    ) -> tuple[dict[str, Any], bool]:
        """Freeze a store's current buy/sell. Returns (lock, created); a retried
        idempotency key returns the original lock with created False."""
        now = self.clock.now()
        lreq = LockRequest(
            pair=self.engine.pair(req.currencyPair),
            ttl_seconds=req.ttlSeconds,
            store_id=req.storeId or None,
            reference=req.reference,
            idempotency_key=req.idempotencyKey,
        )
        lock, created = self.engine.plan_lock(lreq, lock_id=uuid.uuid4().hex, author=actor, now=now)
        if not created:
            pending = self._lock_writes.get(lock.id)
            if pending is not None:
                await asyncio.shield(pending)
            return wire.lock_dict(self.engine.locks.get(lock.id)), False
        data = wire.lock_dict(lock)
        audit = self._lock_audit("lock_created", lock, actor, before=None)
        write = asyncio.ensure_future(
            self._durable(
                lambda s: self.store.add_lock(s, lock),
                (wire.RATE_LOCK_CREATED, lock.store_id, data),
                audit,
                now,
            )
        )
        self._lock_writes[lock.id] = write
        try:
            seq = await write
        except BaseException:
            self.engine.locks.abandon(lock)
            raise
        finally:
            self._lock_writes.pop(lock.id, None)
        self.engine.locks.commit(lock)
        self.locks_created += 1
        assert seq is not None
        self._publish(wire.RATE_LOCK_CREATED, data, lock.store_id, now, seq)
        return data, True

    async def consume_lock(self, lock_id: str, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        return await self._end_lock(self.engine.locks.plan_consume(lock_id, actor, now), now)

    async def release_lock(self, lock_id: str, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        return await self._end_lock(self.engine.locks.plan_release(lock_id, actor, now), now)

    async def expire_locks(self) -> int:
        """End locks past expiresAt; each fires rate_lock_expired exactly once."""
        now = self.clock.now()
        n = 0
        for lock in self.engine.locks.due_expiries(now):
            try:
                await self._end_lock(lock, now)
                n += 1
            except Conflict:
                pass  # consumed or released meanwhile
        return n

    def _lock_audit(self, type_: str, lock: Lock, actor: str, before: Lock | None) -> AuditEvent:
        return AuditEvent(
            type=type_,
            actor=actor,
            store_id=lock.store_id,
            pair=lock.pair,
            before=_lock_snapshot(before) if before else None,
            after=_lock_snapshot(lock),
            reason=lock.reference or None,
            source="lock",
        )

    async def _end_lock(self, ended: Lock, now: datetime) -> dict[str, Any]:
        type_ = _LOCK_EVENTS[ended.state]
        data = wire.lock_dict(ended)
        before = self.engine.locks.get(ended.id)
        audit = self._lock_audit(
            f"lock_{ended.state}", ended, ended.ended_by or SYSTEM_ACTOR, before
        )
        seq = await self._durable(
            lambda s: self.store.end_lock(s, ended),
            (type_, ended.store_id, data),
            audit,
            now,
        )
        if seq is None:
            current = self.engine.locks.get(ended.id)
            raise Conflict(f"lock {ended.id} is already {current.state}", lockId=ended.id)
        self.engine.locks.commit(ended)
        self._publish(type_, data, ended.store_id, now, seq)
        return data

    # -- thresholds -----------------------------------------------------------------------

    async def check_thresholds(self) -> int:
        """Emit rate_threshold_breach once when a breach begins and once when it clears."""
        now = self.clock.now()
        breaches = self.engine.check_thresholds(now)
        for b in breaches:
            data = wire.breach_dict(b)
            audit = AuditEvent(
                type="breach_begun" if b.state == "begun" else "breach_cleared",
                actor=SYSTEM_ACTOR,
                store_id=b.key.store_id,
                pair=b.key.pair,
                after=data,
                reason=b.detail,
                source="thresholds",
            )
            seq = await self._durable(
                lambda s: None, (wire.RATE_THRESHOLD_BREACH, b.key.store_id, data), audit, now
            )
            assert seq is not None
            self._publish(wire.RATE_THRESHOLD_BREACH, data, b.key.store_id, now, seq)
        return len(breaches)

    # -- audit ----------------------------------------------------------------------------

    async def audit(self, event: AuditEvent) -> None:
        """Record something that is not itself a stored change (a key, a reload)."""
        now = self.clock.now()
        await self.writer.write(lambda s: audit_store.append(s, event, now))

    def breaches(self) -> list[dict[str, Any]]:
        return [wire.breach_dict(b) for b in self.engine.thresholds.active.values()]

    # -- internals ------------------------------------------------------------------------

    def _override_request(self, req: wire.SetRateRequest) -> OverrideRequest:
        valid_until = None
        if req.validUntil is not None:
            try:
                valid_until = wire.parse_time(req.validUntil)
            except ValueError:
                raise InvalidRequest(
                    f"validUntil {req.validUntil!r} is not a time; use ISO 8601 "
                    "(2026-01-01T12:00:00Z) or epoch milliseconds"
                ) from None
        return OverrideRequest(
            pair=self.engine.pair(req.currencyPair),
            store_id=req.storeId or None,
            buy=req.buyRate,
            sell=req.sellRate,
            spread=req.spread,
            valid_until=valid_until,
            reason=req.reason,
            source=req.source or "manual",
            expected_version=req.expectedVersion,
        )

    def _log_event(
        self,
        s: Session,
        seq: int,
        type_: str,
        store_id: str | None,
        data: dict[str, Any],
        now: datetime,
    ) -> None:
        """Keep discrete events, in the same transaction, for resume across restarts."""
        self.store.add_event(
            s, seq=seq, store_id=store_id, type=type_, payload=wire.encode(data), ts_us=to_us(now)
        )

    def _publish(
        self, type_: str, data: dict[str, Any], store_id: str | None, now: datetime, seq: int
    ) -> None:
        self.fanout.publish(EventMessage(type_, data, store_id, seq, now.timestamp()))

    def _announce(
        self, events: list[EngineEvent], now: datetime, type_: str, data: dict[str, Any], seq: int
    ) -> None:
        """Emit what a committed override change did to this engine, and announce the
        change itself even when it did nothing here (superseded by a newer one)."""
        self._emit(events, now, data, seq)
        if not any(
            isinstance(ev, OverrideSet | OverrideCleared | OverrideExpired) for ev in events
        ):
            store_id = data.get("storeId")
            self._publish(type_, data, store_id if isinstance(store_id, str) else None, now, seq)

    def _emit(
        self,
        events: list[EngineEvent],
        now: datetime,
        data: dict[str, Any] | None,
        seq: int | None = None,
    ) -> None:
        if events:
            self._changes += 1
        for ev in events:
            if isinstance(ev, RatesChanged):
                self.fanout.publish(RatesDirty(tuple(str(p) for p in ev.pairs), ev.store_id))
            elif isinstance(ev, MarketUpdated):
                self._market_dirty[ev.quote.pair] = ev.quote
                self.fanout.publish(MarketMessage([wire.market_dict(ev.quote)], now.timestamp()))
            elif isinstance(ev, SourceStateChanged):
                self._on_source_state(ev.event, now)
            elif isinstance(ev, OverrideSet | OverrideCleared | OverrideExpired):
                if seq is None:
                    continue  # declined here: the node whose write took effect announces it
                self._publish(_EVENT_TYPES[type(ev)], data or {}, ev.override.store_id, now, seq)

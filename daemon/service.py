"""The rate service: where a request becomes a durable change and a broadcast.

Every mutation follows one path: validate and plan in the engine (pure, changes
nothing) -> write through the writer (durable on return) -> commit to the engine
-> publish to the hub. Nothing is acknowledged or broadcast before it is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlmodel import Session

from daemon import wire
from daemon.engine.engine import RateEngine
from daemon.engine.events import (
    EngineEvent,
    MarketUpdated,
    OverrideCleared,
    OverrideExpired,
    OverrideSet,
    RatesChanged,
)
from daemon.engine.locks import CONSUMED, EXPIRED, RELEASED, Lock, LockRequest
from daemon.engine.market import TickRejected
from daemon.engine.model import MarketQuote, Override
from daemon.engine.overrides import OverrideRequest
from daemon.engine.pairs import Pair
from daemon.errors import Conflict, InvalidRequest
from daemon.hub.backplane import (
    Backplane,
    EventMessage,
    MarketMessage,
    MemoryBackplane,
    RatesDirty,
    apply,
)
from daemon.hub.hub import Hub
from daemon.store.repository import Store, to_us
from daemon.store.tables import EventRow

log = logging.getLogger("ratehub.service")

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

    # -- reads ----------------------------------------------------------------------------

    def rates(self, store_id: str | None) -> list[dict[str, Any]]:
        return [wire.rate_dict(r) for r in self.engine.rates(store_id, self.clock.now())]

    def rate_table(self, store_id: str | None) -> dict[Pair, dict[str, Any]]:
        """The hub's view: every pair's wire rate for a store."""
        return {r.pair: wire.rate_dict(r) for r in self.engine.rates(store_id, self.clock.now())}

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

    async def set_override(self, req: wire.SetRateRequest, actor: str) -> dict[str, Any]:
        now = self.clock.now()
        ov = self.engine.plan_override(
            self._override_request(req), override_id=uuid.uuid4().hex, author=actor, now=now
        )
        rate = self.engine.preview(ov, now)
        self.engine.overrides.reserve(ov)
        data = {**wire.override_dict(ov), "rate": wire.rate_dict(rate)}
        seq = self.hub.allocate_seq()
        await self.writer.write(lambda s: self._persist_set(s, ov, seq, data, now))
        self.overrides_set += 1
        self._emit(self.engine.commit_override(ov), now, data, seq)
        return wire.rate_dict(self.engine.rate(ov.pair, ov.store_id, self.clock.now()))

    def _persist_set(
        self, s: Session, ov: Override, seq: int, data: dict[str, Any], now: datetime
    ) -> None:
        self.store.add_override(s, ov)
        self._log_event(s, seq, wire.RATE_OVERRIDE_SET, ov.store_id, data, now)

    async def clear_override(
        self, pair_text: str, store_id: str | None, actor: str
    ) -> dict[str, Any]:
        now = self.clock.now()
        pair = self.engine.pair(pair_text)
        ov = self.engine.plan_clear(pair, store_id, now)
        data = {**wire.override_dict(ov), "clearedBy": actor}
        seq = self.hub.allocate_seq()

        def op(s: Session) -> None:
            self.store.end_override(s, ov, "cleared", actor, now)
            self._log_event(s, seq, wire.RATE_OVERRIDE_CLEARED, ov.store_id, data, now)

        await self.writer.write(op)
        self._emit(self.engine.commit_clear(ov, actor), now, data, seq)
        return wire.rate_dict(self.engine.rate(pair, store_id, self.clock.now()))

    async def expire_due(self) -> int:
        """Expire overrides whose validUntil passed; each fires its event once."""
        now = self.clock.now()
        due = self.engine.due_expiries(now)
        for ov in due:
            data = wire.override_dict(ov)
            seq = self.hub.allocate_seq()

            def op(
                s: Session, ov: Override = ov, data: dict[str, Any] = data, seq: int = seq
            ) -> None:
                self.store.end_override(s, ov, "expired", "system", now)
                self._log_event(s, seq, wire.RATE_OVERRIDE_EXPIRED, ov.store_id, data, now)

            await self.writer.write(op)
            self._emit(self.engine.commit_expiry(ov), now, data, seq)
        return len(due)

    def on_tick(self, pair: Pair, mid: Decimal, source: str) -> bool:
        """A market tick from a feed. Returns False when it was rejected."""
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
        seq = self.hub.allocate_seq()

        def op(s: Session) -> None:
            self.store.add_lock(s, lock)
            self._log_event(s, seq, wire.RATE_LOCK_CREATED, lock.store_id, data, now)

        write = asyncio.ensure_future(self.writer.write(op))
        self._lock_writes[lock.id] = write
        try:
            await write
        except BaseException:
            self.engine.locks.abandon(lock)
            raise
        finally:
            self._lock_writes.pop(lock.id, None)
        self.engine.locks.commit(lock)
        self.locks_created += 1
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

    async def _end_lock(self, ended: Lock, now: datetime) -> dict[str, Any]:
        type_ = _LOCK_EVENTS[ended.state]
        data = wire.lock_dict(ended)
        seq = self.hub.allocate_seq()

        def op(s: Session) -> bool:
            if not self.store.end_lock(s, ended):
                return False
            self._log_event(s, seq, type_, ended.store_id, data, now)
            return True

        if not await self.writer.write(op):
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
            seq = self.hub.allocate_seq()
            store_id = b.key.store_id

            def op(
                s: Session, data: dict[str, Any] = data, seq: int = seq, st: str | None = store_id
            ) -> None:
                self._log_event(s, seq, wire.RATE_THRESHOLD_BREACH, st, data, now)

            await self.writer.write(op)
            self._publish(wire.RATE_THRESHOLD_BREACH, data, store_id, now, seq)
        return len(breaches)

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
        row = EventRow(
            seq=seq, store_id=store_id, type=type_, payload=wire.encode(data), ts_us=to_us(now)
        )
        self.store.add_event(s, row)

    def _publish(
        self, type_: str, data: dict[str, Any], store_id: str | None, now: datetime, seq: int
    ) -> None:
        self.fanout.publish(EventMessage(type_, data, store_id, seq, now.timestamp()))

    def _emit(
        self,
        events: list[EngineEvent],
        now: datetime,
        data: dict[str, Any] | None,
        seq: int | None = None,
    ) -> None:
        for ev in events:
            if isinstance(ev, RatesChanged):
                self.fanout.publish(RatesDirty(tuple(str(p) for p in ev.pairs), ev.store_id))
            elif isinstance(ev, MarketUpdated):
                self._market_dirty[ev.quote.pair] = ev.quote
                self.fanout.publish(MarketMessage([wire.market_dict(ev.quote)], now.timestamp()))
            elif isinstance(ev, OverrideSet | OverrideCleared | OverrideExpired):
                assert seq is not None
                self._publish(_EVENT_TYPES[type(ev)], data or {}, ev.override.store_id, now, seq)

"""Rate locks: a store's buy/sell frozen for a customer transaction.

A lock is a small state machine. Every lock starts ``active`` and ends exactly
once, in one of three terminal states::

    active --consume--> consumed     (single use, before expiresAt)
    active --release--> released     (ended early by the store)
    active --expire---> expired      (expiresAt passed; fires rate_lock_expired once)

Consume is refused at or after ``expiresAt`` even if no sweeper has run yet.
An idempotency key makes creation safe to retry: the same key with the same
request returns the same lock; the same key with a different request is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal

from ratehubd.engine.model import StoreRate
from ratehubd.engine.pairs import Pair
from ratehubd.errors import Conflict, InvalidRequest, NotFound, Unavailable

ACTIVE, CONSUMED, RELEASED, EXPIRED = "active", "consumed", "released", "expired"
TRANSITIONS: dict[str, frozenset[str]] = {
    ACTIVE: frozenset({CONSUMED, RELEASED, EXPIRED}),
    CONSUMED: frozenset(),
    RELEASED: frozenset(),
    EXPIRED: frozenset(),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Lock:
    id: str
    pair: Pair
    store_id: str | None
    buy: Decimal
    sell: Decimal
    mid: Decimal
    reference: str
    author: str
    created_at: datetime
    expires_at: datetime
    idempotency_key: str | None = None
    state: str = ACTIVE
    ended_at: datetime | None = None
    ended_by: str | None = None

    @property
    def ttl_seconds(self) -> int:
        return round((self.expires_at - self.created_at).total_seconds())

    def same_request(self, pair: Pair, ttl: int, store_id: str | None, reference: str) -> bool:
        return (self.pair, self.ttl_seconds, self.store_id, self.reference) == (
            pair,
            ttl,
            store_id,
            reference,
        )

    def to(self, state: str, now: datetime, by: str) -> Lock:
        if state not in TRANSITIONS[self.state]:
            raise Conflict(
                f"lock {self.id} is {self.state}; it cannot become {state}",
                lockId=self.id,
                state=self.state,
            )
        return replace(self, state=state, ended_at=now, ended_by=by)


@dataclass(frozen=True, slots=True, kw_only=True)
class LockRequest:
    pair: Pair
    ttl_seconds: int
    store_id: str | None
    reference: str = ""
    idempotency_key: str | None = None


class LockBook:
    """Locks by id; active ones are also indexed for the sweeper."""

    def __init__(self) -> None:
        self._locks: dict[str, Lock] = {}
        self._by_key: dict[str, str] = {}
        self._pending: dict[str, Lock] = {}  # idempotency key -> lock being written

    def get(self, lock_id: str) -> Lock:
        lock = self._locks.get(lock_id)
        if lock is None:
            raise NotFound(f"no lock {lock_id!r}")
        return lock

    def all(self, store_id: str | None = None, state: str | None = None) -> list[Lock]:
        out = [
            lk
            for lk in self._locks.values()
            if (store_id is None or lk.store_id == store_id)
            and (state is None or lk.state == state)
        ]
        return sorted(out, key=lambda lk: lk.created_at)

    def plan_create(
        self,
        req: LockRequest,
        *,
        rate: StoreRate | None,
        max_ttl: int,
        blocked: str | None,
        lock_id: str,
        author: str,
        now: datetime,
    ) -> tuple[Lock, bool]:
        """The lock to create, or the existing one for a retried idempotency key.
        Returns (lock, created). ``blocked`` is why the pair may not be locked now."""
        key = req.idempotency_key
        if key is not None and (key in self._by_key or key in self._pending):
            existing = self._pending.get(key) or self._locks[self._by_key[key]]
            if existing.same_request(req.pair, req.ttl_seconds, req.store_id, req.reference):
                return existing, False
            raise Conflict(
                f"idempotency key {req.idempotency_key!r} was used for a different lock "
                f"({existing.id}); use a new key for a new request",
                lockId=existing.id,
            )
        if req.ttl_seconds < 1:
            raise InvalidRequest(f"ttlSeconds must be at least 1, got {req.ttl_seconds}")
        if req.ttl_seconds > max_ttl:
            raise InvalidRequest(
                f"ttlSeconds {req.ttl_seconds} is over the {max_ttl} s maximum for {req.pair}"
            )
        if blocked is not None or rate is None:
            raise Unavailable(f"cannot lock {req.pair} now: {blocked or 'no rate'}")
        lock = Lock(
            id=lock_id,
            pair=req.pair,
            store_id=req.store_id,
            buy=rate.buy,
            sell=rate.sell,
            mid=rate.mid,
            reference=req.reference,
            author=author,
            created_at=now,
            expires_at=now + timedelta(seconds=req.ttl_seconds),
            idempotency_key=req.idempotency_key,
        )
        if key is not None:
            self._pending[key] = lock
        return lock, True

    def abandon(self, lock: Lock) -> None:
        """The write of a planned lock failed: free its idempotency key."""
        if lock.idempotency_key is not None:
            self._pending.pop(lock.idempotency_key, None)

    def plan_consume(self, lock_id: str, by: str, now: datetime) -> Lock:
        lock = self.get(lock_id)
        if lock.state == ACTIVE and now >= lock.expires_at:
            raise Conflict(
                f"lock {lock_id} expired at {lock.expires_at.isoformat()}; create a new one",
                lockId=lock_id,
                state=EXPIRED,
            )
        return lock.to(CONSUMED, now, by)

    def plan_release(self, lock_id: str, by: str, now: datetime) -> Lock:
        return self.get(lock_id).to(RELEASED, now, by)

    def due_expiries(self, now: datetime) -> list[Lock]:
        return [
            lk.to(EXPIRED, lk.expires_at, "system")
            for lk in self._locks.values()
            if lk.state == ACTIVE and now >= lk.expires_at
        ]

    def commit(self, lock: Lock) -> bool:
        """Store a created or ended lock; an ended lock never goes back to active."""
        current = self._locks.get(lock.id)
        if current is not None and current.state != ACTIVE:
            return False
        self._locks[lock.id] = lock
        if lock.idempotency_key is not None:
            self._by_key[lock.idempotency_key] = lock.id
            self._pending.pop(lock.idempotency_key, None)
        return True

    def forget_ended(self, before: datetime) -> None:
        """Drop ended locks from memory (they stay in the database)."""
        for lock_id in [
            lk.id for lk in self._locks.values() if lk.ended_at is not None and lk.ended_at < before
        ]:
            lock = self._locks.pop(lock_id)
            if lock.idempotency_key is not None:
                self._by_key.pop(lock.idempotency_key, None)

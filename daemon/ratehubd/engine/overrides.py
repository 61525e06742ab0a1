"""Override validation and the override book.

``plan_override`` checks a request against the policy and returns the Override
it would create, changing nothing; the caller persists it and then commits it
to the book. That order is what makes "acknowledged" mean "durable".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ratehubd.engine.model import NO_REASON, MarketQuote, Override
from ratehubd.engine.money import ZERO, mid_of, round_down, round_up, spread_of
from ratehubd.engine.pairs import Pair
from ratehubd.engine.policy import OverridePolicy, PairPolicy
from ratehubd.engine.pricing import check_rates
from ratehubd.errors import Conflict, InvalidRates, InvalidRequest, NotFound


@dataclass(frozen=True, slots=True, kw_only=True)
class OverrideRequest:
    pair: Pair
    store_id: str | None = None
    buy: Decimal | None = None
    sell: Decimal | None = None
    spread: Decimal | None = None
    valid_until: datetime | None = None
    reason: str | None = None
    source: str = "manual"
    expected_version: int | None = None


def _check_shape(req: OverrideRequest, policy: PairPolicy) -> None:
    if (req.buy is None) != (req.sell is None):
        raise InvalidRates(
            "give both buyRate and sellRate, or spread alone (rates then follow the market)"
        )
    if req.buy is None and req.spread is None:
        raise InvalidRates("an override needs buyRate and sellRate, or a spread")
    if req.buy is not None and req.sell is not None:
        check_rates(req.buy, req.sell)
        _check_tick(req.buy, "buyRate", round_up(req.buy, policy.tick), policy)
        _check_tick(req.sell, "sellRate", round_down(req.sell, policy.tick), policy)
        _check_spread_bounds(spread_of(req.buy, req.sell, mid_of(req.buy, req.sell)), policy)
    if req.spread is not None and not (ZERO < req.spread < Decimal(2)):
        raise InvalidRates(
            f"spread must be between 0 and 2 (a fraction: 0.02 = 2 %), got {req.spread}"
        )
    if req.buy is None and req.spread is not None:
        _check_spread_bounds(req.spread, policy)


def _check_tick(value: Decimal, field: str, rounded: Decimal, policy: PairPolicy) -> None:
    # Published rates are on the tick; a fixed rate is honoured as given, so it must be too.
    if value != rounded:
        direction = "up" if field == "buyRate" else "down"
        raise InvalidRates(
            f"{field} {value} is finer than {policy.pair}'s tick {policy.tick}; "
            f"use {rounded} ({field} rounds {direction}, so the spread never narrows)"
        )


def _check_spread_bounds(spread: Decimal, policy: PairPolicy) -> None:
    if not (policy.min_spread <= spread <= policy.max_spread):
        raise InvalidRates(
            f"spread {spread:.6f} for {policy.pair} is outside its bounds "
            f"[{policy.min_spread}, {policy.max_spread}]",
        )


def _check_deviation(req: OverrideRequest, policy: PairPolicy, market: MarketQuote) -> None:
    if req.buy is None or req.sell is None:
        return
    mid = mid_of(req.buy, req.sell)
    deviation = abs(mid - market.mid) / market.mid
    if deviation > policy.max_override_deviation:
        raise InvalidRates(
            f"override mid {mid} is {deviation:.2%} away from the market mid {market.mid} "
            f"for {policy.pair}; the limit is {policy.max_override_deviation:.2%}",
            marketMid=str(market.mid),
        )


def _valid_until(req: OverrideRequest, policy: OverridePolicy, now: datetime) -> datetime:
    if req.valid_until is None:
        return now + timedelta(seconds=policy.default_lifetime_seconds)
    if req.valid_until <= now:
        raise InvalidRequest(
            f"validUntil {req.valid_until.isoformat()} is in the past; give a future time "
            "or omit it for the default lifetime"
        )
    cap = now + timedelta(seconds=policy.max_lifetime_seconds)
    if req.valid_until > cap:
        raise InvalidRequest(
            f"validUntil is more than {policy.max_lifetime_seconds} s ahead "
            f"(the configured maximum); give a time before {cap.isoformat()}"
        )
    return req.valid_until


class OverrideBook:
    """Active overrides by (pair, store), with a version counter per key."""

    def __init__(self) -> None:
        self._active: dict[tuple[Pair, str | None], Override] = {}
        self.mutations = 0  # bumped whenever the active set changes (for caches)
        self._versions: dict[tuple[Pair, str | None], int] = {}
        # The newest version per key that was committed (or loaded): an older override
        # committed after it (its write finished later) never takes effect, even if the
        # newer one has since been cleared or has expired.
        self._committed: dict[tuple[Pair, str | None], int] = {}

    def get(self, pair: Pair, store_id: str | None, now: datetime) -> Override | None:
        ov = self._active.get((pair, store_id))
        return ov if ov is not None and ov.active(now) else None

    def has_store(self, store_id: str, now: datetime) -> bool:
        """Whether ``store_id`` has an active override of its own."""
        return any(k[1] == store_id and ov.active(now) for k, ov in self._active.items())

    def effective(self, pair: Pair, store_id: str | None, now: datetime) -> Override | None:
        """Store-specific beats global."""
        if store_id is not None:
            ov = self.get(pair, store_id, now)
            if ov is not None:
                return ov
        return self.get(pair, None, now)

    def version(self, pair: Pair, store_id: str | None) -> int:
        return self._versions.get((pair, store_id), 0)

    def all(self) -> list[Override]:
        return sorted(self._active.values(), key=lambda o: (str(o.pair), o.store_id or ""))

    def plan(
        self,
        req: OverrideRequest,
        *,
        pair_policy: PairPolicy,
        policy: OverridePolicy,
        market: MarketQuote | None,
        override_id: str,
        author: str,
        now: datetime,
    ) -> Override:
        _check_shape(req, pair_policy)
        if policy.require_store and req.store_id is None:
            raise InvalidRequest("storeId is required by policy (overrides.require_store)")
        if policy.require_reason and not (req.reason and req.reason.strip()):
            raise InvalidRequest("reason is required by policy (overrides.require_reason)")
        if req.buy is not None and market is not None and policy.deviation_action == "reject":
            _check_deviation(req, pair_policy, market)
        current = self.version(req.pair, req.store_id)
        if req.expected_version is not None and req.expected_version != current:
            raise Conflict(
                f"override for {req.pair} at {req.store_id or 'all stores'} is at version "
                f"{current}, not {req.expected_version}; reload and retry",
                currentVersion=current,
            )
        return Override(
            id=override_id,
            pair=req.pair,
            store_id=req.store_id,
            buy=req.buy,
            sell=req.sell,
            spread=req.spread,
            valid_until=_valid_until(req, policy, now),
            reason=(req.reason or "").strip() or NO_REASON,
            author=author,
            source=req.source,
            version=current + 1,
            created_at=now,
        )

    def reserve(self, ov: Override) -> None:
        """Claim ``ov.version`` for its key before the write is durable, so a second
        request planned meanwhile gets the next version (compare-and-set stays exact)."""
        self._versions[ov.key] = max(ov.version, self._versions.get(ov.key, 0))

    def commit(self, ov: Override) -> bool:
        """Make a durable override active, unless a newer one already is."""
        self.reserve(ov)
        if ov.version <= self._committed.get(ov.key, 0):
            return False
        self._committed[ov.key] = ov.version
        self._active[ov.key] = ov
        self.mutations += 1
        return True

    def load(self, ov: Override, version: int) -> None:
        """Restore from storage: an override (maybe expired) and the key's last version."""
        self._active[ov.key] = ov
        self.mutations += 1
        self._versions[ov.key] = max(version, self._versions.get(ov.key, 0))
        self._committed[ov.key] = max(ov.version, self._committed.get(ov.key, 0))

    def plan_clear(self, pair: Pair, store_id: str | None, now: datetime) -> Override:
        ov = self.get(pair, store_id, now)
        if ov is None:
            raise NotFound(f"no active override for {pair} at {store_id or 'all stores'}")
        return ov

    def remove(self, ov: Override) -> bool:
        """Deactivate ``ov`` if it is still the active override at its key."""
        if self._active.get(ov.key) is not ov:
            return False
        del self._active[ov.key]
        self.mutations += 1
        self._versions[ov.key] = self._versions.get(ov.key, 0) + 1
        return True

    def expired(self, now: datetime) -> list[Override]:
        """Overrides whose validUntil has passed, still in the book (the caller removes them)."""
        return [ov for ov in self._active.values() if not ov.active(now)]

    def next_expiry(self) -> datetime | None:
        return min((ov.valid_until for ov in self._active.values()), default=None)

"""RateEngine: the facade over the market book and the override book.

Pure and synchronous: every method that depends on time takes ``now``; ids are
passed in. Mutating methods return the domain events they caused.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ratehubd.engine.cross import Quote
from ratehubd.engine.events import (
    EngineEvent,
    MarketUpdated,
    OverrideCleared,
    OverrideExpired,
    OverrideSet,
    RatesChanged,
    SourceStateChanged,
)
from ratehubd.engine.locks import Lock, LockBook, LockRequest
from ratehubd.engine.market import MarketBook
from ratehubd.engine.model import MarketQuote, Override, StoreRate
from ratehubd.engine.overrides import OverrideBook, OverrideRequest
from ratehubd.engine.pairs import Pair, resolve_pair
from ratehubd.engine.policy import OverridePolicy, PairPolicy
from ratehubd.engine.pricing import price
from ratehubd.engine.sources import (
    BookConfig,
    BreakerClosed,
    BreakerOpened,
    MarketMoved,
    SourceBook,
    SourceEvent,
    StalenessBegan,
    StalenessEnded,
)
from ratehubd.engine.thresholds import Breach, ThresholdMonitor, ThresholdPolicy
from ratehubd.errors import Unavailable


class RateEngine:
    def __init__(
        self,
        policies: dict[Pair, PairPolicy],
        override_policy: OverridePolicy,
        thresholds: dict[Pair, ThresholdPolicy] | None = None,
        sources: BookConfig | None = None,
        store_spreads: dict[str, dict[Pair | None, Decimal]] | None = None,
    ) -> None:
        self.policies = policies
        self.override_policy = override_policy
        self.market = MarketBook(policies)
        self.overrides = OverrideBook()
        self.locks = LockBook()
        # Per store: a spread for every pair (key None) and per pair; beats the pair's own.
        self.store_spreads = store_spreads or {}
        # Market data from several sources: aggregation, staleness and breakers.
        self.sources = SourceBook(policies, sources or BookConfig())
        self.legs: dict[Pair, tuple[str, ...]] = {}
        self.thresholds = ThresholdMonitor(
            thresholds if thresholds is not None else {p: ThresholdPolicy() for p in policies}
        )

    @property
    def pairs(self) -> list[Pair]:
        return sorted(self.policies)

    def pair(self, text: str) -> Pair:
        return resolve_pair(text, frozenset(self.policies))

    # -- market -------------------------------------------------------------------------

    def on_market_tick(
        self, pair: Pair, mid: Decimal, source: str, now: datetime
    ) -> list[EngineEvent]:
        """Apply a market tick; raises TickRejected when it fails the sanity checks."""
        quote = self.market.apply(pair, mid, source, now)
        self.thresholds.observe(quote)
        return [MarketUpdated(quote), RatesChanged(frozenset({pair}))]

    def on_quotes(self, quotes: list[Quote], now: datetime) -> list[EngineEvent]:
        """One poll of a market-data source, through the source book."""
        return self._source_events(self.sources.offer(quotes, now))

    def check_sources(self, now: datetime) -> list[EngineEvent]:
        """Staleness and failover as time passes (call about once a second)."""
        return self._source_events(self.sources.check(now))

    def reset_breaker(self, pair: Pair, now: datetime) -> list[EngineEvent]:
        """An operator closes a pair's breaker; the next healthy value is taken as is."""
        return self._source_events(self.sources.reset(pair, now))

    def _source_events(self, events: list[SourceEvent]) -> list[EngineEvent]:
        out: list[EngineEvent] = []
        for ev in events:
            if isinstance(ev, MarketMoved):
                quote = ev.quote.market_quote()
                self.market.restore(quote)
                self.legs[quote.pair] = ev.quote.describe_legs()
                self.thresholds.observe(quote)
                out += [MarketUpdated(quote), RatesChanged(frozenset({quote.pair}))]
            elif isinstance(ev, BreakerOpened | BreakerClosed | StalenessBegan | StalenessEnded):
                out.append(SourceStateChanged(ev))
                if not isinstance(ev, StalenessBegan | StalenessEnded) or ev.source is None:
                    out.append(RatesChanged(frozenset({ev.pair})))
            else:
                out.append(SourceStateChanged(ev))
        return out

    def is_stale(self, pair: Pair, now: datetime) -> bool:
        """Older than the pair's own budget (``staleness_s``), no healthy source left in
        the source book, or the pair's breaker is open (rates frozen)."""
        if self.market.is_stale(pair, now):
            return True
        agg = self.sources.mid(pair, now)
        return agg is not None and (agg.stale or agg.frozen)

    # -- rates --------------------------------------------------------------------------

    def rate(self, pair: Pair, store_id: str | None, now: datetime) -> StoreRate:
        market = self.market.quote(pair)
        if market is None:
            raise Unavailable(f"no market data for {pair} yet; the feed has not ticked")
        override = self.overrides.effective(pair, store_id, now)
        return price(
            self.policies[pair],
            market,
            override,
            store_id,
            now,
            spread=self.spread_for(pair, store_id),
            stale=self.is_stale(pair, now),
            legs=self.legs.get(pair, ()),
        )

    def store_has_own_rates(self, store_id: str, now: datetime) -> bool:
        """True when a store's rates differ from the global ones (an active override of
        its own, or spreads of its own)."""
        return store_id in self.store_spreads or self.overrides.has_store(store_id, now)

    def spread_for(self, pair: Pair, store_id: str | None) -> Decimal:
        """DEFAULT_SPREAD, then the pair's, then the store's, then the store's for the pair."""
        store = self.store_spreads.get(store_id or "", {})
        return store.get(pair) or store.get(None) or self.policies[pair].spread

    def rates(
        self, store_id: str | None, now: datetime, pairs: list[Pair] | None = None
    ) -> list[StoreRate]:
        out = []
        for pair in pairs if pairs is not None else self.pairs:
            if self.market.quote(pair) is not None:
                out.append(self.rate(pair, store_id, now))
        return out

    def market_quotes(self) -> list[MarketQuote]:
        return self.market.quotes()

    # -- overrides ----------------------------------------------------------------------

    def plan_override(
        self, req: OverrideRequest, *, override_id: str, author: str, now: datetime
    ) -> Override:
        """Validate a request and return the override it would create; changes nothing."""
        return self.overrides.plan(
            req,
            pair_policy=self.policies[self.pair(str(req.pair))],  # UnknownPair, not KeyError
            policy=self.override_policy,
            market=self.market.quote(req.pair),
            override_id=override_id,
            author=author,
            now=now,
        )

    def commit_override(self, ov: Override) -> list[EngineEvent]:
        if not self.overrides.commit(ov):
            return []
        return [OverrideSet(ov), RatesChanged(frozenset({ov.pair}), ov.store_id)]

    def preview(self, ov: Override, now: datetime) -> StoreRate:
        """The rate ``ov`` would publish, before it is committed."""
        market = self.market.quote(ov.pair)
        if market is None:
            raise Unavailable(f"no market data for {ov.pair} yet; the feed has not ticked")
        return price(self.policies[ov.pair], market, ov, ov.store_id, now)

    def plan_clear(self, pair: Pair, store_id: str | None, now: datetime) -> Override:
        return self.overrides.plan_clear(pair, store_id, now)

    def commit_clear(self, ov: Override, by: str) -> list[EngineEvent]:
        if not self.overrides.remove(ov):
            return []
        return [OverrideCleared(ov, by), RatesChanged(frozenset({ov.pair}), ov.store_id)]

    def due_expiries(self, now: datetime) -> list[Override]:
        return self.overrides.expired(now)

    def commit_expiry(self, ov: Override) -> list[EngineEvent]:
        if not self.overrides.remove(ov):
            return []
        return [OverrideExpired(ov), RatesChanged(frozenset({ov.pair}), ov.store_id)]

    # -- locks ----------------------------------------------------------------------------

    def lock_blocked(self, pair: Pair, now: datetime) -> str | None:
        """Why ``pair`` may not be locked now, or None."""
        if self.market.quote(pair) is None:
            return "no market data yet"
        if self.market.is_stale(pair, now):
            return "market data is stale; rates are frozen until the feed recovers"
        if self.sources.mid(pair, now) is None:
            return None  # priced by direct ticks only (tools, tests): nothing more to ask
        return self.sources.refusal(pair, now)

    def plan_lock(
        self, req: LockRequest, *, lock_id: str, author: str, now: datetime
    ) -> tuple[Lock, bool]:
        """The lock a request creates (or the existing one for a retried key)."""
        blocked = self.lock_blocked(req.pair, now)
        rate = self.rate(req.pair, req.store_id, now) if self.market.quote(req.pair) else None
        return self.locks.plan_create(
            req,
            rate=rate,
            max_ttl=self.policies[req.pair].max_lock_seconds,
            blocked=blocked,
            lock_id=lock_id,
            author=author,
            now=now,
        )

    # -- thresholds -----------------------------------------------------------------------

    def check_thresholds(self, now: datetime) -> list[Breach]:
        quotes = {q.pair: q for q in self.market.quotes()}
        stale = {p: self.is_stale(p, now) for p in self.policies}
        return self.thresholds.evaluate(now, quotes, self.overrides.all(), stale)

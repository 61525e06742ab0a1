"""SourceBook: the facade. Quotes in (``offer``), time passing (``check``), an operator
``reset``; out: each pair's market (``mid``), whether locks may be made (``refusal``) and a
health report. See the package docstring for the rules."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from ratehubd.engine.cross import Kind, Quote, cross
from ratehubd.engine.model import MarketQuote
from ratehubd.engine.pairs import Pair
from ratehubd.engine.policy import PairPolicy
from ratehubd.engine.sources.config import BookConfig, Budget, PairRouting
from ratehubd.engine.sources.events import (
    AggregatedQuote,
    BreakerClosed,
    BreakerOpened,
    MarketMoved,
    PairHealth,
    PairStatus,
    QuoteRejected,
    RouteStatus,
    SourceEvent,
    StalenessBegan,
    StalenessEnded,
)
from ratehubd.engine.sources.state import (
    PairState,
    Plan,
    RouteState,
    Value,
    band_problem,
    is_repeat,
    jump_problem,
    median,
    plan,
    quote_problem,
)

MAX_DEPTH = 3  # how deep a route may lean on the book's own aggregates (BTC/CAD on USD/CAD)


class SourceBook:
    def __init__(self, policies: Mapping[Pair, PairPolicy], config: BookConfig) -> None:
        config.check()
        self.policies = policies
        self.config = config
        self.rejected: Counter[tuple[str, str]] = Counter()  # (source, pair) -> rejections
        self._legs: dict[str, dict[Pair, Quote]] = {}  # source -> latest good quote per pair
        self._pairs: dict[Pair, PairState] = {}
        for pair in sorted(policies):
            routing = config.routing.get(pair, PairRouting())
            st = PairState(routing)
            for s in routing.sources:
                st.routes[s] = RouteState(pair, s, dealing=True)
            for s in routing.references:
                st.routes.setdefault(s, RouteState(pair, s, dealing=False))
            self._pairs[pair] = st

    # -- input -----------------------------------------------------------------------------

    def offer(self, quotes: Quote | Iterable[Quote], now: datetime) -> list[SourceEvent]:
        """Take one poll's quotes (all at once, so a source's crosses use legs of the same
        poll) and return what changed."""
        batch = [quotes] if isinstance(quotes, Quote) else list(quotes)
        events: list[SourceEvent] = []
        touched: dict[tuple[Pair, str], RouteState] = {}
        for q in batch:
            if is_repeat(q, self._legs.get(q.source, {}).get(q.pair)):
                continue
            routes = self._routes_fed_by(q)
            problem = quote_problem(q, now, self.config.max_clock_skew_s)
            if problem is None:
                self._legs.setdefault(q.source, {})[q.pair] = q
                touched.update({(r.pair, r.source): r for r in routes})
                continue
            for route in routes:
                self._reject(route, problem, now, events)
            if not routes:
                self.rejected[(q.source, str(q.pair))] += 1
                events.append(QuoteRejected(q.source, q.pair, problem, now))
        for route in sorted(touched.values(), key=self._leans_on_book):
            self._evaluate(route, now, events)
        events.extend(self.check(now))
        return events

    def check(self, now: datetime) -> list[SourceEvent]:
        """Staleness transitions and failover as time passes; call it every second or so."""
        events: list[SourceEvent] = []
        for pair, st in self._pairs.items():
            self._route_transitions(st, now, events)
            self._pair_transition(pair, st, now, events)
            self._publish(pair, st, events, now)
        return events

    def reset(self, pair: Pair, now: datetime) -> list[SourceEvent]:
        """Operator reset: close the breaker, clear streaks, forget the jump references."""
        st = self._pairs[pair]
        st.forget_anchors()
        if not st.breaker_open:
            return []
        st.breaker_open, st.breaker_reason = False, None
        return [BreakerClosed(pair, "operator", now), *self.check(now)]

    def restore(self, quote: MarketQuote) -> None:
        """Seed a pair with its persisted market (shown as stale until a source ticks)."""
        st = self._pairs.get(quote.pair)
        if st is not None and st.published is None:
            st.published = AggregatedQuote(
                pair=quote.pair, mid=quote.mid, bid=None, ask=None, sources=quote.sources,
                legs=(), timestamp=quote.timestamp, mode=st.routing.mode, stale=True,
            )  # fmt: skip

    # -- output ----------------------------------------------------------------------------

    @property
    def pairs(self) -> list[Pair]:
        return list(self._pairs)

    def sources_for(self, pair: Pair) -> tuple[str, ...]:
        """The sources routed for ``pair`` (dealing, then reference-only): a pushed price
        for a pair that does not list ``push`` would be ignored, so check first."""
        return tuple(self._pairs[pair].routes)

    def mid(self, pair: Pair, now: datetime) -> AggregatedQuote | None:
        """The pair's market now: live, else the last published value marked stale (and
        frozen while the breaker is open); None before any data."""
        st = self._pairs[pair]
        if st.breaker_open:
            return replace(st.published, stale=True, frozen=True) if st.published else None
        live = self._aggregate(pair, now)
        if live is not None:
            return live
        return replace(st.published, stale=True) if st.published else None

    def refusal(self, pair: Pair, now: datetime) -> str | None:
        """Why new locks on ``pair`` must be refused now, or None when they may be made."""
        st = self._pairs[pair]
        if st.breaker_open:
            return (
                f"{pair} is frozen: its circuit breaker is open ({st.breaker_reason}); "
                "wait for healthy market data or reset it (ratectl)"
            )
        if not self._healthy(pair, now):
            names = ", ".join(st.routing.sources)
            return f"{pair} has no fresh market data from {names}; check the sources"
        return None

    def health(self, now: datetime) -> list[PairHealth]:
        return [self._pair_health(pair, st, now) for pair, st in self._pairs.items()]

    def budget(self, source: str, kind: Kind) -> Budget:
        return self.config.source_budgets.get(source) or self.config.budgets[kind]

    # -- routes ----------------------------------------------------------------------------

    def _plan(self, route: RouteState, extra: Pair | None = None) -> Plan | None:
        own = set(self._legs.get(route.source, {}))
        if extra is not None:
            own.add(extra)
        book = set(self._pairs) - {route.pair}
        return plan(route.pair, own, self.config.pivots, book)

    def _routes_fed_by(self, q: Quote) -> list[RouteState]:
        out = []
        for st in self._pairs.values():
            route = st.routes.get(q.source)
            legs = self._plan(route, q.pair) if route is not None else None
            if route is not None and legs is not None and (q.pair, False) in legs:
                out.append(route)
        return out

    def _leans_on_book(self, route: RouteState) -> int:
        return sum(1 for _, from_book in self._plan(route) or () if from_book)

    def _evaluate(self, route: RouteState, now: datetime, events: list[SourceEvent]) -> None:
        legs_plan = self._plan(route)
        if legs_plan is None:
            return
        legs: list[Quote] = []
        for pair, from_book in legs_plan:
            leg = self._book_leg(pair, now) if from_book else self._legs[route.source][pair]
            if leg is None:
                return  # the book's own leg is not live: nothing to judge yet
            legs.append(leg)
        value = Value(cross(route.pair, legs), tuple(p for p, b in legs_plan if b))
        problem = self._value_problem(route, value.cross.mid, now)
        if problem is not None:
            self._reject(route, problem, now, events)
            return
        route.accept(value)
        st = self._pairs[route.pair]
        if route.dealing:
            st.last = value
        if st.should_recover(route, self.config.breaker_recovery):
            st.breaker_open, st.breaker_reason = False, None
            events.append(BreakerClosed(route.pair, "healthy ticks", now))

    def _book_leg(self, pair: Pair, now: datetime) -> Quote | None:
        agg = self._aggregate(pair, now)
        if agg is None:
            return None
        return Quote(
            pair=pair, mid=agg.mid, bid=agg.bid, ask=agg.ask, source="+".join(agg.sources),
            timestamp=agg.timestamp, kind=agg.legs[0].legs[0].kind,
        )  # fmt: skip

    def _value_problem(self, route: RouteState, mid: Decimal, now: datetime) -> str | None:
        policy, st = self.policies[route.pair], self._pairs[route.pair]
        low, high, around = policy.sanity_min, policy.sanity_max, ""
        ref = self._reference(route.pair, now) if route.dealing else None
        if ref is not None:
            band = st.routing.reference_band
            low, high = ref * (1 - band), ref * (1 + band)
            around = f" (reference mid {ref:.10g} +/- {band:%})"
        problem = band_problem(mid, low, high, around)
        if problem is not None or not route.dealing:
            return problem
        # continuity with this source's own last value; a source without a fresh one is
        # held to the last value any source of the pair got accepted with
        anchor = next(
            (v for v in (route.anchor, st.last) if v is not None and self._fresh(v, now)), None
        )
        return jump_problem(mid, anchor.cross.mid, policy.max_jump) if anchor else None

    def _reject(self, route: RouteState, reason: str, now: datetime, ev: list[SourceEvent]) -> None:
        route.reject(reason)
        self.rejected[(route.source, str(route.pair))] += 1
        ev.append(QuoteRejected(route.source, route.pair, reason, now))
        st = self._pairs[route.pair]
        threshold = self.config.breaker_rejections
        if st.should_trip(route, threshold, healthy_elsewhere=bool(self._healthy(route.pair, now))):
            st.breaker_open = True
            st.breaker_reason = f"{route.reject_streak} rejected values from {route.source}"
            ev.append(BreakerOpened(route.pair, reason, route.reject_streak, now))

    # -- freshness and aggregation ---------------------------------------------------------

    def _fresh(self, value: Value, now: datetime, depth: int = 0) -> bool:
        for leg in value.cross.legs:
            if leg.pair not in value.book_pairs:
                if not self.budget(leg.source, leg.kind).fresh(leg.timestamp, now):
                    return False
        if not value.book_pairs:
            return True
        return depth < MAX_DEPTH and all(self._healthy(p, now, depth + 1) for p in value.book_pairs)

    def _route_ok(self, route: RouteState, now: datetime, depth: int = 0) -> bool:
        v = route.value
        return v is not None and route.reject_streak == 0 and self._fresh(v, now, depth)

    def _healthy(self, pair: Pair, now: datetime, depth: int = 0) -> list[RouteState]:
        """The pair's dealing routes usable now, in priority order."""
        st = self._pairs[pair]
        if st.breaker_open:
            return []
        routes = (st.routes[s] for s in st.routing.sources)
        return [r for r in routes if self._route_ok(r, now, depth)]

    def _reference(self, pair: Pair, now: datetime) -> Decimal | None:
        st = self._pairs[pair]
        refs = (st.routes[s] for s in st.routing.references)
        mids = [r.value.cross.mid for r in refs if r.value and self._route_ok(r, now)]
        return median(mids) if mids else None

    def _aggregate(self, pair: Pair, now: datetime) -> AggregatedQuote | None:
        healthy, mode = self._healthy(pair, now), self._pairs[pair].routing.mode
        used = healthy[:1] if mode == "priority" else healthy
        crosses = [r.value.cross for r in used if r.value is not None]
        if not crosses:
            return None
        bids = [c.bid for c in crosses if c.bid is not None]
        asks = [c.ask for c in crosses if c.ask is not None]
        sided = len(bids) == len(asks) == len(crosses)
        return AggregatedQuote(
            pair=pair,
            mid=median([c.mid for c in crosses]),
            bid=median(bids) if sided else None,
            ask=median(asks) if sided else None,
            sources=tuple(r.source for r in used),
            legs=tuple(crosses),
            timestamp=min(c.timestamp for c in crosses),
            mode=mode,
            reference=self._reference(pair, now),
        )

    # -- transitions -----------------------------------------------------------------------

    def _publish(self, pair: Pair, st: PairState, ev: list[SourceEvent], now: datetime) -> None:
        agg = None if st.breaker_open else self._aggregate(pair, now)
        if agg is None:
            return
        old = st.published
        if old is None or old.stale or _key(old) != _key(agg):
            st.published = agg
            ev.append(MarketMoved(agg))

    def _route_transitions(self, st: PairState, now: datetime, ev: list[SourceEvent]) -> None:
        for r in st.routes.values():
            if r.value is None:
                continue
            fresh = self._fresh(r.value, now)
            if r.fresh and not fresh:
                ev.append(StalenessBegan(r.pair, r.source, r.value.cross.timestamp, now))
                r.stale_reported = True
            elif fresh and r.stale_reported:
                ev.append(StalenessEnded(r.pair, r.source, now))
                r.stale_reported = False
            r.fresh = fresh

    def _pair_transition(
        self, pair: Pair, st: PairState, now: datetime, ev: list[SourceEvent]
    ) -> None:
        """no_data -> live <-> stale; frozen while the breaker is open (its own events)."""
        new: PairStatus
        if st.breaker_open:
            new = "frozen"
        elif self._healthy(pair, now):
            new = "live"
        else:
            new = "no_data" if st.state == "no_data" else "stale"
        if new == "stale" and st.state in ("live", "frozen"):
            last = st.published.timestamp if st.published else None
            ev.append(StalenessBegan(pair, None, last, now))
        elif new == "live" and st.state == "stale":
            ev.append(StalenessEnded(pair, None, now))
        st.state = new

    # -- health ----------------------------------------------------------------------------

    def _pair_health(self, pair: Pair, st: PairState, now: datetime) -> PairHealth:
        agg = self._aggregate(pair, now)
        status: PairStatus
        if st.breaker_open:
            status = "frozen"
        elif agg is not None:
            status = "live"
        else:
            status = "stale" if st.published is not None else "no_data"
        return PairHealth(
            pair=pair,
            status=status,
            mode=st.routing.mode,
            breaker_open=st.breaker_open,
            breaker_reason=st.breaker_reason,
            sources_used=agg.sources if agg else (),
            reference=self._reference(pair, now),
            routes=tuple(r.health(self._route_status(r, now), now) for r in st.routes.values()),
        )

    def _route_status(self, route: RouteState, now: datetime) -> RouteStatus:
        if route.reject_streak:
            return "rejecting"
        if route.value is None:
            return "no_data"
        return "live" if self._fresh(route.value, now) else "stale"


def _key(q: AggregatedQuote) -> tuple[object, ...]:
    return (q.mid, q.bid, q.ask, q.sources)

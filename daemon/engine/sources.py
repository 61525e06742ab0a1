"""SourceBook: per-pair aggregation of several market-data sources. Pure; time is passed in.

Theory of operation
-------------------
Sources hand in :class:`~daemon.engine.cross.Quote` s (``offer``). For every configured pair
and every source configured for it there is a *route*: the way that source builds the pair.
A route is, in this order of preference, the source's own quote of the pair or of its
inverse; a cross inside the source through a pivot (ECB: ``USD/CAD = 1/(EUR/USD) x
EUR/CAD``); or the source's ``X/Y`` crossed with this book's own aggregated ``Y/Z``
(Coinbase: ``BTC/CAD = BTC/USD x USD/CAD``). Routes are resolved afresh on every quote.

Each new quote re-evaluates the routes it feeds. A route's value is checked: it must be
positive and finite, inside the pair's sanity band, and (for dealing routes) within the
pair's ``max_jump`` of the last accepted value, when that value is still fresh. The sanity
band is ``[sanity_min, sanity_max]`` from the pair policy, unless a fresh reference mid
(BoC, ECB: the median of the pair's reference routes) exists: then it is that mid
``+/- reference_band``. A rejected value is counted against its source and leaves the route
unhealthy until its source sends a value that passes.

A route is *healthy* when its last value was accepted and every leg is fresh: younger than
the budget of its source (or of its kind: reference sources a business day and more, with
weekends not counted; exchange books seconds). Per pair, mode ``priority`` uses the first
healthy dealing route in the configured order (failover), mode ``median`` the median of all
healthy dealing routes.

Circuit breaker, per pair::

    closed --(a dealing route reaches N consecutive rejections
              and no other dealing route is healthy)--> open
    open   --(a dealing route has M consecutive accepted values)--> closed
    open   --(operator reset)--> closed

While open, ``mid`` returns the last published value marked ``frozen`` and ``refusal``
explains why locks must be refused. An operator reset also forgets the last accepted value,
so a genuine move larger than ``max_jump`` (which would otherwise be rejected forever) is
taken as the new level.

Events: ``BreakerOpened`` / ``BreakerClosed`` and ``StalenessBegan`` / ``StalenessEnded``
(per pair, and per route with ``source`` set) fire once per transition, never per tick;
``MarketMoved`` fires when a pair's aggregated value changes; ``QuoteRejected`` is one per
rejected value, for logs and counters, not for broadcast.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, localcontext
from typing import Literal

from daemon.engine.cross import KINDS, PRECISION, Cross, Kind, Quote, cross, find_route
from daemon.engine.model import MarketQuote
from daemon.engine.pairs import Pair
from daemon.engine.policy import PairPolicy
from daemon.errors import ConfigError

Mode = Literal["priority", "median"]
DAY = 86400.0


# -- configuration ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Budget:
    """How long a quote stays fresh. ``weekdays_only`` counts only Monday-Friday (UTC) time,
    so a daily rate published on Friday is still fresh on Monday."""

    seconds: float
    weekdays_only: bool = False

    def age(self, then: datetime, now: datetime) -> float:
        if self.weekdays_only:
            return weekday_seconds(then, now)
        return (now - then).total_seconds()

    def fresh(self, then: datetime, now: datetime) -> bool:
        return self.age(then, now) <= self.seconds


DEFAULT_BUDGETS: Mapping[str, Budget] = {
    "reference": Budget(2 * DAY, weekdays_only=True),
    "intraday": Budget(2 * 3600.0),
    "exchange": Budget(30.0),
    "push": Budget(300.0),
    "simulated": Budget(60.0),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PairRouting:
    """Where a pair's market comes from. ``sources`` are dealing sources in priority order;
    ``references`` only shape the sanity band (daily rates are not dealing prices)."""

    sources: tuple[str, ...] = ("simulated",)
    mode: Mode = "priority"
    references: tuple[str, ...] = ()
    reference_band: Decimal = Decimal("0.05")


@dataclass(frozen=True, slots=True, kw_only=True)
class BookConfig:
    routing: Mapping[Pair, PairRouting] = field(default_factory=dict)
    budgets: Mapping[str, Budget] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    source_budgets: Mapping[str, Budget] = field(default_factory=dict)
    breaker_rejections: int = 5
    breaker_recovery: int = 3
    pivots: tuple[str, ...] = ("USD", "EUR")
    max_clock_skew_s: float = 300.0

    def check(self) -> None:
        problems = [f"sources.staleness: no budget for kind {k!r}" for k in KINDS]
        problems = [p for p, k in zip(problems, KINDS, strict=True) if k not in self.budgets]
        if self.breaker_rejections < 1:
            problems.append("sources.breaker_rejections must be at least 1")
        if self.breaker_recovery < 1:
            problems.append("sources.breaker_recovery must be at least 1")
        for pair, r in self.routing.items():
            if not r.sources:
                problems.append(f"sources.pairs.{pair}.sources: name at least one source")
            if r.mode not in ("priority", "median"):
                problems.append(f"sources.pairs.{pair}.mode: use 'priority' or 'median'")
            if not Decimal(0) < r.reference_band < Decimal(1):
                problems.append(
                    f"sources.pairs.{pair}.reference_band must be a fraction (0.05 = 5 %)"
                )
        if problems:
            raise ConfigError("invalid source configuration", problems)


# -- events and results -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AggregatedQuote:
    """A pair's market as the book publishes it, with how it was built."""

    pair: Pair
    mid: Decimal
    bid: Decimal | None
    ask: Decimal | None
    sources: tuple[str, ...]
    legs: tuple[Cross, ...]
    timestamp: datetime
    mode: Mode
    reference: Decimal | None = None
    stale: bool = False
    frozen: bool = False

    def describe_legs(self) -> tuple[str, ...]:
        return tuple(leg.describe() for leg in self.legs)

    def market_quote(self) -> MarketQuote:
        return MarketQuote(
            pair=self.pair, mid=self.mid, sources=self.sources, timestamp=self.timestamp
        )


@dataclass(frozen=True, slots=True)
class QuoteRejected:
    source: str
    pair: Pair
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class MarketMoved:
    quote: AggregatedQuote


@dataclass(frozen=True, slots=True)
class BreakerOpened:
    pair: Pair
    reason: str
    rejections: int
    at: datetime


@dataclass(frozen=True, slots=True)
class BreakerClosed:
    pair: Pair
    by: Literal["healthy ticks", "operator"]
    at: datetime


@dataclass(frozen=True, slots=True)
class StalenessBegan:
    """``source`` None: the pair has no healthy dealing source left."""

    pair: Pair
    source: str | None
    last_update: datetime | None
    at: datetime


@dataclass(frozen=True, slots=True)
class StalenessEnded:
    pair: Pair
    source: str | None
    at: datetime


SourceEvent = (
    QuoteRejected | MarketMoved | BreakerOpened | BreakerClosed | StalenessBegan | StalenessEnded
)

RouteStatus = Literal["live", "stale", "rejecting", "no_data"]
PairStatus = Literal["live", "stale", "frozen", "no_data"]


@dataclass(frozen=True, slots=True)
class RouteHealth:
    source: str
    role: Literal["dealing", "reference"]
    status: RouteStatus
    mid: Decimal | None
    last_update: datetime | None
    age_s: float | None
    accepted: int
    rejected: int
    reject_streak: int
    last_reason: str | None


@dataclass(frozen=True, slots=True)
class PairHealth:
    pair: Pair
    status: PairStatus
    mode: Mode
    breaker_open: bool
    breaker_reason: str | None
    sources_used: tuple[str, ...]
    reference: Decimal | None
    routes: tuple[RouteHealth, ...]


# -- state ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Value:
    cross: Cross
    book_pairs: tuple[Pair, ...]  # legs taken from this book's aggregates


@dataclass(slots=True)
class _Route:
    pair: Pair
    source: str
    dealing: bool
    value: _Value | None = None
    accepted: int = 0
    rejected: int = 0
    reject_streak: int = 0
    accept_streak: int = 0
    last_reason: str | None = None
    fresh: bool = False  # as of the last check, for once-per-transition events
    stale_reported: bool = False


@dataclass(slots=True)
class _PairState:
    routing: PairRouting
    routes: dict[str, _Route]
    breaker_open: bool = False
    breaker_reason: str | None = None
    last: _Value | None = None  # last accepted dealing value: the jump reference
    published: AggregatedQuote | None = None
    state: PairStatus = "no_data"  # as of the last check, for once-per-transition events


class SourceBook:
    def __init__(self, policies: Mapping[Pair, PairPolicy], config: BookConfig) -> None:
        config.check()
        self.policies = policies
        self.config = config
        self.rejected: Counter[tuple[str, str]] = Counter()
        self._legs: dict[str, dict[Pair, Quote]] = {}
        self._pairs: dict[Pair, _PairState] = {}
        for pair in sorted(policies):
            routing = config.routing.get(pair, PairRouting())
            routes = {s: _Route(pair, s, True) for s in routing.sources}
            for s in routing.references:
                routes.setdefault(s, _Route(pair, s, False))
            self._pairs[pair] = _PairState(routing, routes)

    # -- input -----------------------------------------------------------------------------

    def offer(self, quotes: Quote | Iterable[Quote], now: datetime) -> list[SourceEvent]:
        """Take one poll's quotes (all of them at once, so a source's crosses use legs of
        the same poll) and return what changed."""
        batch = [quotes] if isinstance(quotes, Quote) else list(quotes)
        events: list[SourceEvent] = []
        touched: dict[tuple[Pair, str], _Route] = {}
        for q in batch:
            if self._seen(q):
                continue
            routes = self._routes_fed_by(q)
            reason = self._basic_problem(q, now)
            if reason is not None:
                self._reject_quote(q, routes, reason, now, events)
                continue
            self._legs.setdefault(q.source, {})[q.pair] = q
            touched.update({(r.pair, r.source): r for r in routes})
        for route in sorted(touched.values(), key=self._book_dependency):
            self._evaluate(route, now, events)
        events.extend(self.check(now))
        return events

    def check(self, now: datetime) -> list[SourceEvent]:
        """Staleness transitions and failover as time passes; call it every second or so."""
        events: list[SourceEvent] = []
        for pair, st in self._pairs.items():
            self._route_transitions(st, now, events)
            self._pair_transition(pair, st, now, events)
            self._publish(pair, st, now, events)
        return events

    def reset(self, pair: Pair, now: datetime) -> list[SourceEvent]:
        """Operator reset: close the breaker, clear streaks, forget the jump reference."""
        st = self._pairs[pair]
        st.last = None
        for route in st.routes.values():
            route.reject_streak = route.accept_streak = 0
        if not st.breaker_open:
            return []
        st.breaker_open, st.breaker_reason = False, None
        events: list[SourceEvent] = [BreakerClosed(pair, "operator", now)]
        events.extend(self.check(now))
        return events

    def restore(self, quote: MarketQuote) -> None:
        """Seed a pair with its persisted market (shown as stale until a source ticks)."""
        st = self._pairs.get(quote.pair)
        if st is not None and st.published is None:
            st.published = AggregatedQuote(
                pair=quote.pair,
                mid=quote.mid,
                bid=None,
                ask=None,
                sources=quote.sources,
                legs=(),
                timestamp=quote.timestamp,
                mode=st.routing.mode,
                stale=True,
            )

    # -- output ----------------------------------------------------------------------------

    def mid(self, pair: Pair, now: datetime) -> AggregatedQuote | None:
        """The pair's market now: live, else the last published value marked stale (or
        frozen while the breaker is open); None before any data."""
        st = self._pairs[pair]
        if st.breaker_open:
            return replace(st.published, stale=True, frozen=True) if st.published else None
        live = self._aggregate(pair, st, now)
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

    # -- routes ----------------------------------------------------------------------------

    def _plan(self, route: _Route, extra: Pair | None = None) -> list[tuple[Pair, bool]] | None:
        """The legs of ``route`` as (pair, from_book), given what its source has sent."""
        own = set(self._legs.get(route.source, {}))
        if extra is not None:
            own.add(extra)
        target, pivots = route.pair, self.config.pivots
        found = find_route(target, own, pivots)
        if found is not None:
            return [(p, False) for p in found]
        for pivot in pivots:
            if pivot in (target.base, target.quote):
                continue
            book = Pair(pivot, target.quote)
            first = find_route(Pair(target.base, pivot), own, ())
            if first is not None and book != target and book in self._pairs:
                return [(first[0], False), (book, True)]
        return None

    def _routes_fed_by(self, q: Quote) -> list[_Route]:
        out = []
        for st in self._pairs.values():
            route = st.routes.get(q.source)
            plan = self._plan(route, q.pair) if route is not None else None
            if route is not None and plan is not None and (q.pair, False) in plan:
                out.append(route)
        return out

    def _book_dependency(self, route: _Route) -> int:
        plan = self._plan(route)
        return sum(1 for _, from_book in plan or () if from_book)

    def _evaluate(self, route: _Route, now: datetime, events: list[SourceEvent]) -> None:
        plan = self._plan(route)
        if plan is None:
            return
        legs: list[Quote] = []
        for pair, from_book in plan:
            leg = self._book_leg(pair, now) if from_book else self._legs[route.source][pair]
            if leg is None:
                return  # the book's own leg is not live: nothing to judge yet
            legs.append(leg)
        value = _Value(cross(route.pair, legs), tuple(p for p, b in plan if b))
        problem = self._value_problem(route, value.cross, now)
        if problem is not None:
            self._reject(route, problem, now, events)
        else:
            self._accept(route, value, now, events)

    def _book_leg(self, pair: Pair, now: datetime) -> Quote | None:
        agg = self._aggregate(pair, self._pairs[pair], now)
        if agg is None:
            return None
        kind = agg.legs[0].legs[0].kind
        source = "+".join(agg.sources)
        return Quote(
            pair=pair, mid=agg.mid, bid=agg.bid, ask=agg.ask, source=source,
            timestamp=agg.timestamp, kind=kind,
        )  # fmt: skip

    # -- validation ------------------------------------------------------------------------

    def _seen(self, q: Quote) -> bool:
        """A repeat of the last quote (a daily source polled again) or an older one."""
        last = self._legs.get(q.source, {}).get(q.pair)
        if last is None:
            return False
        if q.timestamp < last.timestamp:
            return True
        return q.timestamp == last.timestamp and (q.mid, q.bid, q.ask) == (
            last.mid,
            last.bid,
            last.ask,
        )

    def _basic_problem(self, q: Quote, now: datetime) -> str | None:
        for name, v in (("mid", q.mid), ("bid", q.bid), ("ask", q.ask)):
            if v is not None and (not v.is_finite() or v <= 0):
                return f"non-positive or non-finite {name} {v}"
        if q.bid is not None and q.ask is not None and not q.bid <= q.mid <= q.ask:
            return f"crossed book: bid {q.bid}, mid {q.mid}, ask {q.ask}"
        if (q.timestamp - now).total_seconds() > self.config.max_clock_skew_s:
            return f"timestamp {q.timestamp.isoformat()} is in the future; check the clocks"
        if q.kind not in KINDS:
            return f"unknown kind {q.kind!r}"
        return None

    def _value_problem(self, route: _Route, value: Cross, now: datetime) -> str | None:
        policy, mid = self.policies[route.pair], value.mid
        if not mid.is_finite() or mid <= 0:
            return f"non-positive or non-finite mid {mid}"
        low, high, around = policy.sanity_min, policy.sanity_max, ""
        ref = self._reference(route.pair, now) if route.dealing else None
        if ref is not None:
            band = self._pairs[route.pair].routing.reference_band
            low, high = ref * (1 - band), ref * (1 + band)
            around = f" (reference mid {ref} +/- {band:%})"
        if not low <= mid <= high:
            return f"mid {mid} outside sanity band [{low}, {high}]{around}"
        last = self._pairs[route.pair].last
        if route.dealing and last is not None and self._fresh(last, now):
            jump = abs(mid - last.cross.mid) / last.cross.mid
            if jump > policy.max_jump:
                return (
                    f"mid {mid} jumps {jump:.2%} from {last.cross.mid} (limit {policy.max_jump:%})"
                )
        return None

    def _reject_quote(
        self, q: Quote, routes: list[_Route], reason: str, now: datetime, events: list[SourceEvent]
    ) -> None:
        for route in routes:
            self._reject(route, reason, now, events)
        if not routes:
            self.rejected[(q.source, str(q.pair))] += 1
            events.append(QuoteRejected(q.source, q.pair, reason, now))

    def _reject(self, route: _Route, reason: str, now: datetime, ev: list[SourceEvent]) -> None:
        route.rejected += 1
        route.reject_streak += 1
        route.accept_streak = 0
        route.last_reason = reason
        self.rejected[(route.source, str(route.pair))] += 1
        ev.append(QuoteRejected(route.source, route.pair, reason, now))
        st = self._pairs[route.pair]
        if not route.dealing or st.breaker_open:
            return
        if route.reject_streak >= self.config.breaker_rejections and not self._healthy(
            route.pair, now
        ):
            st.breaker_open = True
            st.breaker_reason = f"{route.reject_streak} rejected values from {route.source}"
            ev.append(BreakerOpened(route.pair, reason, route.reject_streak, now))

    def _accept(self, route: _Route, value: _Value, now: datetime, ev: list[SourceEvent]) -> None:
        route.value = value
        route.accepted += 1
        route.accept_streak += 1
        route.reject_streak = 0
        if not route.dealing:
            return
        st = self._pairs[route.pair]
        st.last = value
        if st.breaker_open and route.accept_streak >= self.config.breaker_recovery:
            st.breaker_open, st.breaker_reason = False, None
            ev.append(BreakerClosed(route.pair, "healthy ticks", now))

    # -- freshness and aggregation ---------------------------------------------------------

    def budget(self, source: str, kind: Kind) -> Budget:
        return self.config.source_budgets.get(source) or self.config.budgets[kind]

    def _fresh(self, value: _Value, now: datetime, depth: int = 0) -> bool:
        for leg in value.cross.legs:
            if leg.pair in value.book_pairs:
                continue
            if not self.budget(leg.source, leg.kind).fresh(leg.timestamp, now):
                return False
        return depth < 3 and all(self._healthy(p, now, depth + 1) for p in value.book_pairs)

    def _route_ok(self, route: _Route, now: datetime, depth: int = 0) -> bool:
        return (
            route.value is not None
            and route.reject_streak == 0
            and self._fresh(route.value, now, depth)
        )

    def _healthy(self, pair: Pair, now: datetime, depth: int = 0) -> list[_Route]:
        st = self._pairs[pair]
        if st.breaker_open:
            return []
        return [
            st.routes[s] for s in st.routing.sources if self._route_ok(st.routes[s], now, depth)
        ]

    def _reference(self, pair: Pair, now: datetime) -> Decimal | None:
        st = self._pairs[pair]
        mids = [
            r.value.cross.mid
            for s in st.routing.references
            if (r := st.routes[s]).value is not None and self._route_ok(r, now)
        ]
        return _median(mids) if mids else None

    def _aggregate(self, pair: Pair, st: _PairState, now: datetime) -> AggregatedQuote | None:
        healthy = self._healthy(pair, now)
        if not healthy:
            return None
        used = healthy[:1] if st.routing.mode == "priority" else healthy
        crosses = [r.value.cross for r in used if r.value is not None]
        bids = [c.bid for c in crosses if c.bid is not None]
        asks = [c.ask for c in crosses if c.ask is not None]
        sided = len(bids) == len(crosses)
        return AggregatedQuote(
            pair=pair,
            mid=_median([c.mid for c in crosses]),
            bid=_median(bids) if sided else None,
            ask=_median(asks) if sided else None,
            sources=tuple(r.source for r in used),
            legs=tuple(crosses),
            timestamp=min(c.timestamp for c in crosses),
            mode=st.routing.mode,
            reference=self._reference(pair, now),
        )

    def _publish(
        self, pair: Pair, st: _PairState, now: datetime, events: list[SourceEvent]
    ) -> None:
        if st.breaker_open:
            return
        agg = self._aggregate(pair, st, now)
        if agg is None:
            return
        old = st.published
        if old is None or old.stale or _key(old) != _key(agg):
            st.published = agg
            events.append(MarketMoved(agg))

    def _route_transitions(self, st: _PairState, now: datetime, ev: list[SourceEvent]) -> None:
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
        self, pair: Pair, st: _PairState, now: datetime, ev: list[SourceEvent]
    ) -> None:
        """no_data -> live <-> stale, and frozen (breaker events cover frozen itself)."""
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

    def _pair_health(self, pair: Pair, st: _PairState, now: datetime) -> PairHealth:
        routes = tuple(self._route_health(r, now) for r in st.routes.values())
        agg = self._aggregate(pair, st, now)
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
            routes=routes,
        )

    def _route_health(self, route: _Route, now: datetime) -> RouteHealth:
        value = route.value
        status: RouteStatus
        if route.reject_streak:
            status = "rejecting"
        elif value is None:
            status = "no_data"
        else:
            status = "live" if self._fresh(value, now) else "stale"
        ts = value.cross.timestamp if value else None
        return RouteHealth(
            source=route.source,
            role="dealing" if route.dealing else "reference",
            status=status,
            mid=value.cross.mid if value else None,
            last_update=ts,
            age_s=(now - ts).total_seconds() if ts else None,
            accepted=route.accepted,
            rejected=route.rejected,
            reject_streak=route.reject_streak,
            last_reason=route.last_reason,
        )


def _key(q: AggregatedQuote) -> tuple[object, ...]:
    return (q.mid, q.bid, q.ask, q.sources)


def _median(values: list[Decimal]) -> Decimal:
    ordered, half = sorted(values), len(values) // 2
    if len(ordered) % 2:
        return ordered[half]
    with localcontext(PRECISION):
        return (ordered[half - 1] + ordered[half]) / 2


def weekday_seconds(start: datetime, end: datetime) -> float:
    """Seconds between ``start`` and ``end`` that fall on Monday to Friday (UTC)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return (end - start).total_seconds()
    weeks = (end - start) // timedelta(weeks=1)
    total = weeks * 5 * DAY
    cursor = start + timedelta(weeks=weeks)
    while cursor < end:
        midnight = datetime.combine(cursor.date() + timedelta(days=1), time(), tzinfo=UTC)
        upto = min(end, midnight)
        if cursor.weekday() < 5:
            total += (upto - cursor).total_seconds()
        cursor = upto
    return total

"""The SourceBook's mutable state per route and per pair, and the pure rules it applies:
how a route is planned, what makes a quote unacceptable, how the breaker moves."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, localcontext

from ratehubd.engine.cross import KINDS, PRECISION, Cross, Quote, find_route
from ratehubd.engine.pairs import Pair
from ratehubd.engine.sources.config import PairRouting
from ratehubd.engine.sources.events import AggregatedQuote, PairStatus, RouteHealth, RouteStatus

Plan = list[tuple[Pair, bool]]  # legs as (pair, taken from the book's own aggregate)


@dataclass(slots=True)
class Value:
    """An accepted route value: the cross and which of its legs came from the book."""

    cross: Cross
    book_pairs: tuple[Pair, ...]


@dataclass(slots=True)
class RouteState:
    """One (pair, source) route. ``anchor`` is the jump reference (the last accepted value,
    forgotten by an operator reset)."""

    pair: Pair
    source: str
    dealing: bool
    value: Value | None = None
    anchor: Value | None = None
    accepted: int = 0
    rejected: int = 0
    reject_streak: int = 0
    accept_streak: int = 0
    last_reason: str | None = None
    fresh: bool = False  # as of the last check, for once-per-transition events
    stale_reported: bool = False

    def accept(self, value: Value) -> None:
        self.value = self.anchor = value
        self.accepted += 1
        self.accept_streak += 1
        self.reject_streak = 0

    def reject(self, reason: str) -> None:
        self.rejected += 1
        self.reject_streak += 1
        self.accept_streak = 0
        self.last_reason = reason

    def health(self, status: RouteStatus, now: datetime) -> RouteHealth:
        ts = self.value.cross.timestamp if self.value else None
        return RouteHealth(
            source=self.source,
            role="dealing" if self.dealing else "reference",
            status=status,
            mid=self.value.cross.mid if self.value else None,
            last_update=ts,
            age_s=(now - ts).total_seconds() if ts else None,
            accepted=self.accepted,
            rejected=self.rejected,
            reject_streak=self.reject_streak,
            last_reason=self.last_reason,
        )


@dataclass(slots=True)
class PairState:
    """Breaker::

    closed --(N consecutive rejections on a dealing route, no other route healthy)--> open
    open   --(M consecutive accepted values on a dealing route)--> closed
    open   --(operator reset)--> closed
    """

    routing: PairRouting
    routes: dict[str, RouteState] = field(default_factory=dict)
    breaker_open: bool = False
    breaker_reason: str | None = None
    last: Value | None = None  # last accepted dealing value, any route: the fallback anchor
    published: AggregatedQuote | None = None
    state: PairStatus = "no_data"  # as of the last check, for once-per-transition events

    def should_trip(self, route: RouteState, threshold: int, healthy_elsewhere: bool) -> bool:
        return (
            route.dealing
            and not self.breaker_open
            and route.reject_streak >= threshold
            and not healthy_elsewhere
        )

    def should_recover(self, route: RouteState, threshold: int) -> bool:
        return route.dealing and self.breaker_open and route.accept_streak >= threshold

    def forget_anchors(self) -> None:
        self.last = None
        for route in self.routes.values():
            route.anchor = None
            route.reject_streak = route.accept_streak = 0


def plan(
    target: Pair, own: Collection[Pair], pivots: Sequence[str], book: Collection[Pair]
) -> Plan | None:
    """How a source that has published ``own`` builds ``target``: directly, inverted or
    through a pivot with its own legs; else its ``X/pivot`` times the book's ``pivot/Z``."""
    found = find_route(target, own, pivots)
    if found is not None:
        return [(p, False) for p in found]
    for pivot in pivots:
        if pivot in (target.base, target.quote):
            continue
        first = find_route(Pair(target.base, pivot), own, ())
        second = Pair(pivot, target.quote)
        if first is not None and second in book:
            return [(first[0], False), (second, True)]
    return None


def quote_problem(q: Quote, now: datetime, max_clock_skew_s: float) -> str | None:
    """What makes a quote unusable on its own, or None."""
    for name, v in (("mid", q.mid), ("bid", q.bid), ("ask", q.ask)):
        if v is not None and (not v.is_finite() or v <= 0):
            return f"non-positive or non-finite {name} {v}"
    if q.bid is not None and q.ask is not None and not q.bid <= q.mid <= q.ask:
        return f"crossed book: bid {q.bid}, mid {q.mid}, ask {q.ask}"
    if (q.timestamp - now).total_seconds() > max_clock_skew_s:
        return f"timestamp {q.timestamp.isoformat()} is in the future; check the clocks"
    if q.kind not in KINDS:
        return f"unknown kind {q.kind!r}"
    return None


def band_problem(mid: Decimal, low: Decimal, high: Decimal, around: str) -> str | None:
    if not mid.is_finite() or mid <= 0:
        return f"non-positive or non-finite mid {mid}"
    if not low <= mid <= high:
        return f"mid {mid:.10g} outside sanity band [{low:.10g}, {high:.10g}]{around}"
    return None


def jump_problem(mid: Decimal, anchor: Decimal, limit: Decimal) -> str | None:
    jump = abs(mid - anchor) / anchor
    if jump > limit:
        return f"mid {mid:.10g} jumps {jump:.2%} from {anchor:.10g} (limit {limit:%})"
    return None


def is_repeat(q: Quote, last: Quote | None) -> bool:
    """A repeat of the last quote (a daily source polled again) or an older one."""
    if last is None:
        return False
    if q.timestamp != last.timestamp:
        return q.timestamp < last.timestamp
    return (q.mid, q.bid, q.ask) == (last.mid, last.bid, last.ask)


def median(values: Sequence[Decimal]) -> Decimal:
    ordered, half = sorted(values), len(values) // 2
    if len(ordered) % 2:
        return ordered[half]
    with localcontext(PRECISION):
        return (ordered[half - 1] + ordered[half]) / 2

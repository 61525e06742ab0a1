"""What the SourceBook hands out: the aggregated quote, its events, and health reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from ratehubd.engine.cross import Cross
from ratehubd.engine.model import MarketQuote
from ratehubd.engine.pairs import Pair
from ratehubd.engine.sources.config import Mode


@dataclass(frozen=True, slots=True)
class AggregatedQuote:
    """A pair's market as the book publishes it, and how it was built: one Cross per
    source used (its legs, their sources and orientation), and the reference mid that set
    the sanity band, if any."""

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
        """For ``StoreRate.legs``: e.g. ``BTC/CAD = BTC/USD ... from coinbase x USD/CAD ...``."""
        return tuple(leg.describe() for leg in self.legs)

    def market_quote(self) -> MarketQuote:
        return MarketQuote(
            pair=self.pair, mid=self.mid, sources=self.sources, timestamp=self.timestamp
        )


@dataclass(frozen=True, slots=True)
class QuoteRejected:
    """One rejected value: for logs and counters, not for broadcast."""

    source: str
    pair: Pair
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class MarketMoved:
    """The pair's published value changed (new mid, sides or sources): re-price it."""

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
    """``source`` set: that source's route went stale; None: the pair has no healthy
    dealing source left."""

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

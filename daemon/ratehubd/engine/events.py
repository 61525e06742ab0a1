"""Domain events the engine hands out. The runtime persists them, audits them and
turns them into hub messages (``ratehubd.wire``)."""

from __future__ import annotations

from dataclasses import dataclass

from ratehubd.engine.model import MarketQuote, Override
from ratehubd.engine.pairs import Pair


@dataclass(frozen=True, slots=True)
class MarketUpdated:
    quote: MarketQuote


@dataclass(frozen=True, slots=True)
class RatesChanged:
    """Rates of ``pairs`` changed for one store, or for every store when ``store_id`` is None."""

    pairs: frozenset[Pair]
    store_id: str | None = None


@dataclass(frozen=True, slots=True)
class OverrideSet:
    override: Override


@dataclass(frozen=True, slots=True)
class OverrideCleared:
    override: Override
    by: str


@dataclass(frozen=True, slots=True)
class OverrideExpired:
    override: Override


@dataclass(frozen=True, slots=True)
class SourceStateChanged:
    """A source-book transition (breaker, staleness) or a rejected quote, as is."""

    event: object


EngineEvent = (
    MarketUpdated
    | RatesChanged
    | OverrideSet
    | OverrideCleared
    | OverrideExpired
    | SourceStateChanged
)

"""Value objects of the engine: market quotes, overrides and published store rates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from ratehubd.engine.pairs import Pair

NO_REASON = "no reason given"


@dataclass(frozen=True, slots=True)
class MarketQuote:
    """The accepted market mid for a pair, and where it came from."""

    pair: Pair
    mid: Decimal
    sources: tuple[str, ...]
    timestamp: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Override:
    """A store owner's (or head office's) rate, valid until ``valid_until``.

    ``store_id`` None is a global override. Either ``buy`` and ``sell`` are both
    set (fixed rates) or only ``spread`` is (rates float with the market).
    """

    id: str
    pair: Pair
    store_id: str | None
    buy: Decimal | None
    sell: Decimal | None
    spread: Decimal | None
    valid_until: datetime
    reason: str
    author: str
    source: str
    version: int
    created_at: datetime

    @property
    def key(self) -> tuple[Pair, str | None]:
        return (self.pair, self.store_id)

    def active(self, now: datetime) -> bool:
        return now < self.valid_until


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreRate:
    """A published rate: what a store shows and honours, with its provenance."""

    pair: Pair
    store_id: str | None
    mid: Decimal
    buy: Decimal
    sell: Decimal
    spread: Decimal
    source: str
    tick: Decimal
    market: MarketQuote
    spread_applied: Decimal
    timestamp: datetime
    override: Override | None = None
    valid_until: datetime | None = None
    stale: bool = False
    legs: tuple[str, ...] = field(default=())

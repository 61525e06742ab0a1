"""Per-pair policy: tick, spreads and bounds. Built once from the validated config."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ratehubd.engine.pairs import Pair


@dataclass(frozen=True, slots=True, kw_only=True)
class PairPolicy:
    pair: Pair
    tick: Decimal
    spread: Decimal
    min_spread: Decimal
    max_spread: Decimal
    # How far an override's mid may sit from the market mid, relative (0.05 = 5 %).
    max_override_deviation: Decimal
    # Market ticks outside [sanity_min, sanity_max] are rejected.
    sanity_min: Decimal
    sanity_max: Decimal
    # A market tick that moves more than this (relative) from the last accepted one is rejected.
    max_jump: Decimal
    # Market data older than this many seconds makes the pair stale.
    staleness_seconds: float
    max_lock_seconds: int
    kind: str = "fiat"
    # Share of the spread above the mid (buy side); 0.5 is symmetric.
    buy_share: Decimal = Decimal("0.5")


@dataclass(frozen=True, slots=True, kw_only=True)
class OverridePolicy:
    default_lifetime_seconds: int
    max_lifetime_seconds: int
    require_reason: bool = False
    require_store: bool = False
    # An override beyond max_override_deviation: "reject" it, or "warn" (accept it; the
    # override_deviation threshold reports the breach).
    deviation_action: str = "reject"

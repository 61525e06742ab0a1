"""From a market mid (and maybe an override) to a store's buy and sell.

Convention (DESIGN.md): ``buy`` is what a customer pays for one unit of the base
currency, ``sell`` what a customer receives for one. ``0 < sell < mid < buy``.
Computed rates are rounded outward to the pair's tick (buy up, sell down) so
rounding never narrows the spread.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ratehubd.engine.model import MarketQuote, Override, StoreRate
from ratehubd.engine.money import ZERO, mid_of, round_down, round_up, spread_of
from ratehubd.engine.policy import PairPolicy
from ratehubd.errors import InvalidRates

HALF = Decimal("0.5")
INVARIANT = "sellRate < mid < buyRate (buyRate is what a customer pays, sellRate what they receive)"


def quote_from_mid(
    mid: Decimal, spread: Decimal, tick: Decimal, buy_share: Decimal = HALF
) -> tuple[Decimal, Decimal]:
    """Buy and sell around ``mid`` with the relative total ``spread``, rounded outward.
    ``buy_share`` of the spread goes above the mid (0.5: symmetric; 0.6: the buy side
    carries 60 % of it)."""
    width = mid * spread
    buy = round_up(mid + width * buy_share, tick)
    sell = round_down(mid - width * (1 - buy_share), tick)
    if sell <= ZERO:
        raise InvalidRates(f"spread {spread} is too wide for mid {mid}: sellRate would be <= 0")
    if buy == sell:  # zero spread at an exact tick: widen by one tick each side
        buy, sell = buy + tick, sell - tick
    return buy, sell


def check_rates(buy: Decimal, sell: Decimal) -> None:
    """Reject zero, negative and inverted rates with a message that states the convention."""
    if buy <= ZERO or sell <= ZERO:
        raise InvalidRates(f"rates must be positive (got buyRate {buy}, sellRate {sell})")
    if buy <= sell:
        raise InvalidRates(
            f"buyRate {buy} must be greater than sellRate {sell}: {INVARIANT}",
            buyRate=str(buy),
            sellRate=str(sell),
        )


def price(
    policy: PairPolicy,
    market: MarketQuote,
    override: Override | None,
    store_id: str | None,
    now: datetime,
    spread: Decimal | None = None,
    stale: bool = False,
    legs: tuple[str, ...] = (),
) -> StoreRate:
    """The rate a store publishes for one pair."""
    applied = policy.spread if spread is None else spread
    if override is not None and override.buy is not None and override.sell is not None:
        buy, sell = override.buy, override.sell
        mid = mid_of(buy, sell)
        applied = spread_of(buy, sell, mid)  # provenance: the spread the override imposes
        source = override.source
    else:
        if override is not None and override.spread is not None:
            applied = override.spread
        mid = market.mid
        buy, sell = quote_from_mid(mid, applied, policy.tick, policy.buy_share)
        source = override.source if override is not None else "+".join(market.sources)
    return StoreRate(
        pair=policy.pair,
        store_id=store_id,
        mid=mid,
        buy=buy,
        sell=sell,
        spread=spread_of(buy, sell, mid),
        source=source,
        tick=policy.tick,
        market=market,
        spread_applied=applied,
        timestamp=now,
        override=override,
        valid_until=override.valid_until if override is not None else None,
        stale=stale,
        legs=legs,
    )

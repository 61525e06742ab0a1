"""Threshold monitoring: a breach is reported once when it begins and once when it clears.

Three kinds, per pair (and per store for overrides):

- ``override_deviation``: an active fixed-rate override's mid is further from the
  market mid than ``warn_deviation`` (relative);
- ``market_jump``: the market mid moved more than ``jump`` (relative) within
  ``jump_window_s``;
- ``staleness``: no accepted market data for longer than the pair's budget.

``evaluate`` compares the conditions that hold now with the ones that held at
the previous evaluation and returns only the transitions, so a breach that lasts
an hour produces two events, not one per tick.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ratehubd.engine.model import MarketQuote, Override
from ratehubd.engine.money import mid_of
from ratehubd.engine.pairs import Pair

DEVIATION, JUMP, STALENESS = "override_deviation", "market_jump", "staleness"
BEGUN, CLEARED = "begun", "cleared"


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdPolicy:
    warn_deviation: Decimal = Decimal("0.03")
    jump: Decimal = Decimal("0.02")
    jump_window_s: float = 60.0


@dataclass(frozen=True, slots=True)
class BreachKey:
    kind: str
    pair: Pair
    store_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Breach:
    key: BreachKey
    state: str  # begun | cleared
    value: Decimal | None
    threshold: Decimal | float
    at: datetime
    detail: str


class ThresholdMonitor:
    def __init__(self, policies: dict[Pair, ThresholdPolicy]) -> None:
        self.policies = policies
        self.active: dict[BreachKey, Breach] = {}
        self._history: dict[Pair, deque[tuple[datetime, Decimal]]] = {}

    def observe(self, quote: MarketQuote) -> None:
        """Remember accepted market mids for the jump check."""
        window = timedelta(seconds=self.policies[quote.pair].jump_window_s)
        hist = self._history.setdefault(quote.pair, deque())
        hist.append((quote.timestamp, quote.mid))
        while hist and hist[0][0] < quote.timestamp - window:
            hist.popleft()

    def evaluate(
        self,
        now: datetime,
        quotes: dict[Pair, MarketQuote],
        overrides: list[Override],
        stale: dict[Pair, bool],
    ) -> list[Breach]:
        current: dict[BreachKey, Breach] = {}
        for pair, is_stale in stale.items():
            if is_stale:
                age = (now - quotes[pair].timestamp).total_seconds() if pair in quotes else None
                key = BreachKey(STALENESS, pair)
                current[key] = self._breach(
                    key,
                    now,
                    None if age is None else Decimal(str(round(age, 3))),
                    0,
                    f"{pair} market data is stale",
                )
        for pair, policy in self.policies.items():
            hist = self._history.get(pair)
            if hist and len(hist) > 1:
                lo = min(m for _, m in hist)
                hi = max(m for _, m in hist)
                move = (hi - lo) / lo
                if move > policy.jump:
                    key = BreachKey(JUMP, pair)
                    current[key] = self._breach(
                        key,
                        now,
                        move,
                        policy.jump,
                        f"{pair} moved {move:.2%} within {policy.jump_window_s:g} s",
                    )
        for ov in overrides:
            if not ov.active(now) or ov.buy is None or ov.sell is None or ov.pair not in quotes:
                continue
            market = quotes[ov.pair].mid
            dev = abs(mid_of(ov.buy, ov.sell) - market) / market
            limit = self.policies[ov.pair].warn_deviation
            if dev > limit:
                key = BreachKey(DEVIATION, ov.pair, ov.store_id)
                current[key] = self._breach(
                    key,
                    now,
                    dev,
                    limit,
                    f"override on {ov.pair} at {ov.store_id or 'all stores'} "
                    f"is {dev:.2%} from market",
                )
        return self._transitions(current, now)

    def _breach(
        self,
        key: BreachKey,
        now: datetime,
        value: Decimal | None,
        threshold: Decimal | float,
        detail: str,
    ) -> Breach:
        return Breach(key=key, state=BEGUN, value=value, threshold=threshold, at=now, detail=detail)

    def _transitions(self, current: dict[BreachKey, Breach], now: datetime) -> list[Breach]:
        out = []
        for key, breach in current.items():
            if key not in self.active:
                self.active[key] = breach
                out.append(breach)
        for key in [k for k in self.active if k not in current]:
            begun = self.active.pop(key)
            out.append(
                Breach(
                    key=key,
                    state=CLEARED,
                    value=None,
                    threshold=begun.threshold,
                    at=now,
                    detail=f"cleared: {begun.detail}",
                )
            )
        return out

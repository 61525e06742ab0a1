"""The market book: accepted market mids per pair, with sanity checks.

A tick is rejected (and counted against its source) when it is non-positive,
outside the pair's sanity band, or jumps more than the pair's limit from the
last accepted value.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal

from ratehubd.engine.model import MarketQuote
from ratehubd.engine.pairs import Pair
from ratehubd.engine.policy import PairPolicy


class TickRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MarketBook:
    def __init__(self, policies: dict[Pair, PairPolicy]) -> None:
        self._policies = policies
        self._quotes: dict[Pair, MarketQuote] = {}
        self.rejected: Counter[tuple[str, str]] = Counter()

    def quote(self, pair: Pair) -> MarketQuote | None:
        return self._quotes.get(pair)

    def quotes(self) -> list[MarketQuote]:
        return [self._quotes[p] for p in sorted(self._quotes)]

    def is_stale(self, pair: Pair, now: datetime) -> bool:
        q = self._quotes.get(pair)
        if q is None:
            return True
        age = (now - q.timestamp).total_seconds()
        return age > self._policies[pair].staleness_seconds

    def check(self, pair: Pair, mid: Decimal) -> None:
        policy = self._policies[pair]
        if not mid.is_finite() or mid <= 0:
            raise TickRejected(f"non-positive or non-finite mid {mid}")
        if not (policy.sanity_min <= mid <= policy.sanity_max):
            raise TickRejected(
                f"mid {mid} outside sanity band [{policy.sanity_min}, {policy.sanity_max}]"
            )
        last = self._quotes.get(pair)
        if last is not None and abs(mid - last.mid) / last.mid > policy.max_jump:
            raise TickRejected(f"mid {mid} jumps more than {policy.max_jump:%} from {last.mid}")

    def apply(self, pair: Pair, mid: Decimal, source: str, now: datetime) -> MarketQuote:
        """Accept a tick or raise TickRejected (and count it against ``source``)."""
        try:
            self.check(pair, mid)
        except TickRejected as exc:
            self.rejected[(source, str(pair))] += 1
            raise exc
        quote = MarketQuote(pair=pair, mid=mid, sources=(source,), timestamp=now)
        self._quotes[pair] = quote
        return quote

    def restore(self, quote: MarketQuote) -> None:
        self._quotes[quote.pair] = quote

"""Market quotes and cross rates, in Decimal at full precision.

A :class:`Quote` is one observation from one source: a pair, its mid, and its bid and ask
when the provider gives them (Coinbase, Kraken) or only a mid (BoC, ECB, OXR, Frankfurter).
It lives in the engine (not in ``adapters/feeds``) so the pure aggregation in
``engine/sources.py`` can use it without importing an adapter.

A cross rate goes through a pivot::

    bid(X/Z) = bid(X/Y) x bid(Y/Z)      ask(X/Z) = ask(X/Y) x ask(Y/Z)
    mid(X/Z) = mid(X/Y) x mid(Y/Z)

and an inverted leg swaps sides: ``bid(X/Y) = 1 / ask(Y/X)``, ``ask(X/Y) = 1 / bid(Y/X)``.
All legs positive and ``bid <= mid <= ask`` on each leg imply the same on the cross.
When some legs have a bid and ask and others only a mid, the mid-only legs count as a
point (``bid = ask = mid``): the cross keeps the exchange's spread and adds none. When no leg
has sides, the cross has none either.

Arithmetic runs in a 50-digit context; rounding to a tick is the pricing step's job.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal, localcontext
from typing import Literal, get_args

from ratehubd.engine.pairs import Pair

Kind = Literal["reference", "intraday", "exchange", "push", "simulated"]
KINDS: tuple[Kind, ...] = get_args(Kind)

PRECISION = Context(prec=50)
ONE = Decimal(1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Quote:
    """One observation of ``pair`` by ``source``.

    ``timestamp`` is the source's own time (tz-aware), or the time of receipt when the
    provider gives none (Kraken). ``kind`` says how to judge its freshness: ``reference``
    (daily: BoC, ECB), ``intraday`` (OXR, Frankfurter), ``exchange`` (Coinbase, Kraken),
    ``push`` or ``simulated``.
    """

    pair: Pair
    mid: Decimal
    source: str
    timestamp: datetime
    kind: Kind
    bid: Decimal | None = None
    ask: Decimal | None = None

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None:
            raise ValueError(f"{self.source} {self.pair}: timestamp must be timezone-aware")
        if (self.bid is None) != (self.ask is None):
            raise ValueError(f"{self.source} {self.pair}: give both bid and ask, or neither")

    @classmethod
    def two_sided(
        cls,
        *,
        pair: Pair,
        bid: Decimal,
        ask: Decimal,
        source: str,
        timestamp: datetime,
        kind: Kind,
    ) -> Quote:
        """A quote from a book's best bid and ask; the mid is their average."""
        with localcontext(PRECISION):
            mid = (bid + ask) / 2
        return cls(
            pair=pair, mid=mid, bid=bid, ask=ask, source=source, timestamp=timestamp, kind=kind
        )

    def describe(self) -> str:
        sides = f" (bid {self.bid} ask {self.ask})" if self.bid is not None else ""
        return f"{self.pair} {self.mid}{sides} from {self.source}"


@dataclass(frozen=True, slots=True)
class Cross:
    """A rate built from one or more legs. ``legs`` are the quotes as their sources
    published them; ``inverted[i]`` says whether leg ``i`` was used upside down."""

    pair: Pair
    mid: Decimal
    bid: Decimal | None
    ask: Decimal | None
    legs: tuple[Quote, ...]
    inverted: tuple[bool, ...]

    @property
    def timestamp(self) -> datetime:
        """The oldest leg's time: a cross is only as fresh as its stalest leg."""
        return min(leg.timestamp for leg in self.legs)

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(leg.source for leg in self.legs))

    def describe(self) -> str:
        """E.g. ``USD/CAD = 1/(EUR/USD 1.0321 from ecb) x EUR/CAD 1.4876 from ecb``."""
        parts = [
            f"1/({leg.describe()})" if inv else leg.describe()
            for leg, inv in zip(self.legs, self.inverted, strict=True)
        ]
        return f"{self.pair} = " + " x ".join(parts)


def _oriented(leg: Quote, want: Pair) -> tuple[Decimal, Decimal | None, Decimal | None, bool]:
    """(mid, bid, ask, inverted) of ``leg`` read as ``want``."""
    if leg.pair == want:
        return leg.mid, leg.bid, leg.ask, False
    if leg.pair == want.inverse():
        with localcontext(PRECISION):
            bid = ONE / leg.ask if leg.ask is not None else None
            ask = ONE / leg.bid if leg.bid is not None else None
            return ONE / leg.mid, bid, ask, True
    raise ValueError(f"leg {leg.pair} cannot be read as {want}")


def cross(target: Pair, legs: Sequence[Quote]) -> Cross:
    """Chain ``legs`` from ``target.base`` to ``target.quote``, each leg in either orientation.

    Raises ValueError when the legs do not chain (a bug in the caller, not bad data).
    """
    if not legs:
        raise ValueError(f"no legs to build {target}")
    mids: list[Decimal] = []
    bids: list[Decimal | None] = []
    asks: list[Decimal | None] = []
    inverted: list[bool] = []
    here = target.base
    chain = " x ".join(str(leg.pair) for leg in legs)
    for leg in legs:
        if here not in (leg.pair.base, leg.pair.quote):
            raise ValueError(
                f"legs {chain} do not lead from {target.base} to {target.quote}: "
                f"{leg.pair} does not continue from {here}"
            )
        there = leg.pair.quote if leg.pair.base == here else leg.pair.base
        mid, bid, ask, inv = _oriented(leg, Pair(here, there))
        mids.append(mid)
        bids.append(bid)
        asks.append(ask)
        inverted.append(inv)
        here = there
    if here != target.quote:
        raise ValueError(f"legs {chain} do not lead from {target.base} to {target.quote}")
    two_sided = any(b is not None for b in bids)
    with localcontext(PRECISION):
        mid = _product(mids)
        bid = _product([b if b is not None else m for b, m in zip(bids, mids, strict=True)])
        ask = _product([a if a is not None else m for a, m in zip(asks, mids, strict=True)])
    return Cross(
        pair=target,
        mid=mid,
        bid=bid if two_sided else None,
        ask=ask if two_sided else None,
        legs=tuple(legs),
        inverted=tuple(inverted),
    )


def _product(values: Sequence[Decimal]) -> Decimal:
    out = ONE
    for v in values:
        out *= v
    return out


def find_route(
    target: Pair, available: Collection[Pair], pivots: Sequence[str] = ("USD", "EUR")
) -> tuple[Pair, ...] | None:
    """The pairs (as available, either orientation) that build ``target``: the pair itself
    or its inverse, else two legs through the first pivot in ``pivots`` that has both."""
    direct = _either(target.base, target.quote, available)
    if direct is not None:
        return (direct,)
    for pivot in pivots:
        if pivot in (target.base, target.quote):
            continue
        first = _either(target.base, pivot, available)
        second = _either(pivot, target.quote, available)
        if first is not None and second is not None:
            return (first, second)
    return None


def _either(a: str, b: str, available: Collection[Pair]) -> Pair | None:
    for pair in (Pair(a, b), Pair(b, a)):
        if pair in available:
            return pair
    return None

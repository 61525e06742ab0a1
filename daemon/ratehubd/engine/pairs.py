"""Currency pairs.

A pair is ``BASE/QUOTE``: ``USD/CAD`` is the number of CAD one USD costs. Input
accepts ``USD/CAD``, ``USDCAD``, ``usd-cad`` and ``USD_CAD``; output is always
``USD/CAD``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ratehubd.errors import UnknownPair

_SPLIT = re.compile(r"^([A-Za-z]{3,5})[/\-_ ]([A-Za-z]{3,5})$")
_JOINED = re.compile(r"^([A-Za-z]{3})([A-Za-z]{3})$")


@dataclass(frozen=True, slots=True, order=True)
class Pair:
    base: str
    quote: str

    def __str__(self) -> str:
        return f"{self.base}/{self.quote}"

    @property
    def compact(self) -> str:
        return f"{self.base}{self.quote}"

    def inverse(self) -> Pair:
        return Pair(self.quote, self.base)


def parse_pair(text: str) -> Pair:
    """Parse any accepted spelling of a pair; raise UnknownPair with the accepted forms."""
    cleaned = text.strip()
    m = _SPLIT.match(cleaned) or _JOINED.match(cleaned)
    if not m:
        raise UnknownPair(
            f"{text!r} is not a currency pair; write it as USD/CAD, USDCAD or usd-cad",
            pair=text,
        )
    base, quote = m.group(1).upper(), m.group(2).upper()
    if base == quote:
        raise UnknownPair(f"{text!r} has the same currency on both sides", pair=text)
    return Pair(base, quote)


def resolve_pair(text: str, known: frozenset[Pair] | set[Pair]) -> Pair:
    """Parse ``text`` and insist that it is one of the configured pairs."""
    pair = parse_pair(text)
    if pair not in known:
        names = ", ".join(sorted(str(p) for p in known))
        raise UnknownPair(f"unknown pair {pair}; configured pairs are {names}", pair=str(pair))
    return pair


def match_symbol(text: str, known: frozenset[Pair] | set[Pair]) -> set[Pair]:
    """Resolve a subscription symbol: a pair (``USDCAD``) or a bare currency (``USD``).

    A bare currency matches every configured pair that has it as base. Unknown
    symbols match nothing (subscriptions are filters, not commands).
    """
    cleaned = text.strip().upper()
    if len(cleaned) in (3, 4, 5) and cleaned.isalpha():
        return {p for p in known if p.base == cleaned}
    try:
        pair = parse_pair(cleaned)
    except UnknownPair:
        return set()
    return {pair} if pair in known else set()

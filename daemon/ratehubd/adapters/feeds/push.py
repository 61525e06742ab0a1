"""Push: a price sent by the dashboard's ``pushRateData(symbol, priceCAD)`` or a script.

``push_quote`` validates one pushed price and makes it a ``push`` Quote; the WebSocket
message and the HTTP endpoint that carry it (only for keys allowed to feed) are wired by
the runtime. ``symbol`` is a currency (``BTC``: its price in CAD) or a CAD pair in any
accepted spelling (``BTC/CAD``, ``BTCCAD``, ``btc-cad``); ``priceCAD`` is a positive
number (JSON number or numeric string).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from ratehubd.adapters.feeds.base import Quote
from ratehubd.engine.money import to_decimal
from ratehubd.engine.pairs import Pair, parse_pair
from ratehubd.errors import InvalidRates, InvalidRequest, UnknownPair

NAME = "push"
HOME = "CAD"


def push_quote(
    symbol: object,
    price_cad: object,
    *,
    now: datetime,
    pairs: Collection[Pair] | None = None,
    source: str = NAME,
) -> Quote:
    """A ``push`` Quote of ``symbol``/CAD at ``price_cad``; InvalidRequest (400) otherwise."""
    pair = push_pair(symbol)
    if pairs is not None and pair not in pairs:
        names = ", ".join(sorted(str(p) for p in pairs))
        raise UnknownPair(f"cannot push {pair}: configured pairs are {names}", pair=str(pair))
    price = to_decimal(price_cad, "priceCAD")
    if price <= 0:
        raise InvalidRates(f"priceCAD must be positive, got {price}", field="priceCAD")
    return Quote(pair=pair, mid=price, source=source, timestamp=now, kind="push")


def push_pair(symbol: object) -> Pair:
    if not isinstance(symbol, str) or not symbol.strip():
        raise InvalidRequest(
            f"symbol must be a currency like 'BTC' or a CAD pair like 'BTC/CAD', got {symbol!r}",
            field="symbol",
        )
    text = symbol.strip().upper()
    if text.isalpha() and 3 <= len(text) <= 5:
        if text == HOME:
            raise UnknownPair("CAD is the home currency; push the other currency, like 'USD'")
        return Pair(text, HOME)
    pair = parse_pair(text)
    if pair.quote != HOME:
        raise InvalidRequest(
            f"pushRateData prices are in CAD, but {symbol!r} is quoted in {pair.quote}; "
            f"push '{pair.base}' or '{pair.base}/CAD'",
            field="symbol",
        )
    return pair

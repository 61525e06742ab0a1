"""Coinbase Exchange ticker: ``GET /products/BTC-USD/ticker``.

Prices are decimal strings; ``bid`` and ``ask`` are the book's best; ``time`` is ISO 8601
UTC. Coinbase has no CAD books (``BTC-CAD`` answers 404 ``{"message": "NotFound"}``), so
this source quotes ``BTC/USD`` and ``ETH/USD`` (``exchange``) and the SourceBook crosses
them with its own USD/CAD: ``BTC/CAD = BTC/USD x USD/CAD``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ratehubd.adapters.feeds.base import Quote, load_json, need, to_rate
from ratehubd.adapters.feeds.http import HttpSource
from ratehubd.engine.pairs import Pair
from ratehubd.errors import SourceError

NAME = "coinbase"
DEFAULT_PRODUCTS = ("BTC-USD", "ETH-USD")


def product_pair(product: str) -> Pair:
    base, sep, quote = product.strip().upper().partition("-")
    if not sep or not base.isalnum() or not quote.isalpha():
        raise ValueError(f"coinbase product {product!r} is not like BTC-USD")
    return Pair(base, quote)


def parse(payload: bytes | str | Any, product: str, source: str = NAME) -> list[Quote]:
    data = load_json(payload, source)
    if isinstance(data, dict) and "message" in data and "bid" not in data:
        raise SourceError(f"{source}: {product}: {data['message']}", source=source)
    bid = to_rate(need(data, "bid", source), source, f"{product} bid")
    ask = to_rate(need(data, "ask", source), source, f"{product} ask")
    quote = Quote.two_sided(
        pair=product_pair(product),
        bid=bid,
        ask=ask,
        source=source,
        timestamp=_time(need(data, "time", source), source),
        kind="exchange",
    )
    return [quote]


def _time(value: object, source: str) -> datetime:
    try:
        when = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise SourceError(f"{source}: time {value!r} is not an ISO 8601 UTC time", source=source)
    return when


class Coinbase(HttpSource):
    name = NAME
    kind = "exchange"
    default_base_url = "https://api.exchange.coinbase.com"

    def __init__(self, *, products: Sequence[str] = DEFAULT_PRODUCTS, **http: Any):
        super().__init__(**http)
        for product in products:
            product_pair(product)
        self.products = tuple(p.upper() for p in products)

    async def fetch_once(self) -> list[Quote]:
        quotes = []
        for product in self.products:
            body = await self.get(f"/products/{product}/ticker")
            quotes.extend(parse(body, product, self.name))
        return quotes

    def error_message(self, status: int, body: bytes) -> str:
        words = super().error_message(status, body)
        if status == 404:
            words += (
                "; Coinbase has no CAD books: configure products like BTC-USD and let the "
                "book cross them with USD/CAD"
            )
        return words

"""Frankfurter (open source, self-hostable): v1 ``/v1/latest`` and v2 ``/v2/rates``.

v1: ``{"amount": 1.0, "base": "USD", "date": "2025-01-03", "rates": {"CAD": 1.3613}}``;
v2: ``[{"date": "2025-01-03", "base": "USD", "quote": "CAD", "rate": 1.3613}, ...]``.
An unknown currency answers 422 with ``{"message": ...}``. Numbers are read as exact
Decimals. The data is daily (ECB and other central banks), stamped 16:00 Frankfurt time of
its date; the quotes are labelled ``intraday``, so give this source a staleness budget of
a business day or two (``source_budgets``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from ratehubd.adapters.feeds.base import Quote, load_json, need, published_at, to_rate
from ratehubd.adapters.feeds.http import HttpSource
from ratehubd.engine.pairs import Pair
from ratehubd.errors import SourceError

NAME = "frankfurter"


def parse(payload: bytes | str | Any, source: str = NAME) -> list[Quote]:
    """Either shape: a JSON object is v1 ``latest``, a JSON array is v2 ``rates``."""
    data = load_json(payload, source)
    if isinstance(data, list):
        quotes = [_v2_row(row, source) for row in data]
    elif isinstance(data, dict) and "rates" in data:
        quotes = _v1(data, source)
    elif isinstance(data, dict) and "message" in data:
        raise SourceError(f"{source}: {data['message']}", source=source)
    else:
        raise SourceError(f"{source}: neither a v1 nor a v2 answer", source=source)
    if not quotes:
        raise SourceError(f"{source}: the answer has no rates", source=source)
    return quotes


def _v1(data: dict[str, Any], source: str) -> list[Quote]:
    base, day, rates = (need(data, k, source) for k in ("base", "date", "rates"))
    if not isinstance(rates, dict):
        raise SourceError(f"{source}: 'rates' is not an object", source=source)
    return [_quote(base, code, value, day, source) for code, value in rates.items()]


def _v2_row(row: object, source: str) -> Quote:
    where = "a v2 row"
    base, code, value, day = (
        need(row, k, source, where) for k in ("base", "quote", "rate", "date")
    )
    return _quote(base, code, value, day, source)


def _quote(base: object, code: object, value: object, day: object, source: str) -> Quote:
    if not (isinstance(base, str) and isinstance(code, str) and isinstance(day, str)):
        raise SourceError(f"{source}: base, quote and date must be strings", source=source)
    return Quote(
        pair=Pair(base.upper(), code.upper()),
        mid=to_rate(value, source, f"{base}/{code}"),
        source=source,
        timestamp=published_at(day, 16, 0, "Europe/Berlin", source),
        kind="intraday",
    )


class Frankfurter(HttpSource):
    name = NAME
    kind = "intraday"
    default_base_url = "https://api.frankfurter.dev"

    def __init__(
        self,
        *,
        base: str = "USD",
        currencies: Sequence[str] = ("CAD", "EUR", "GBP"),
        version: Literal["v1", "v2"] = "v1",
        **http: Any,
    ):
        super().__init__(**http)
        if version not in ("v1", "v2"):
            raise ValueError(f"frankfurter version must be 'v1' or 'v2', not {version!r}")
        self.base = base.upper()
        self.currencies = tuple(c.upper() for c in currencies)
        self.version = version

    async def fetch_once(self) -> list[Quote]:
        symbols = ",".join(self.currencies)
        if self.version == "v1":
            body = await self.get("/v1/latest", {"base": self.base, "symbols": symbols})
        else:
            body = await self.get("/v2/rates", {"base": self.base, "quotes": symbols})
        return parse(body, self.name)

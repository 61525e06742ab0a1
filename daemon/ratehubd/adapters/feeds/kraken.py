"""Kraken public Ticker: ``GET /0/public/Ticker?pair=XBTCAD,ETHCAD``.

The result is keyed by Kraken's own names (``XXBTZCAD``, ``XETHZCAD``), mapped back here
to BTC/CAD and ETH/CAD. ``a`` and ``b`` are ``[price, whole-lot volume, lot volume]``.
Errors arrive with HTTP 200 in the ``error`` array (``["EQuery:Unknown asset pair"]``);
entries starting with ``W`` are warnings. There is no timestamp: quotes are stamped with
the time of receipt, which the fetcher passes in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ratehubd.adapters.feeds.base import Quote, load_json, need, to_rate
from ratehubd.adapters.feeds.http import HttpSource
from ratehubd.engine.pairs import Pair
from ratehubd.errors import SourceError

NAME = "kraken"
DEFAULT_PAIRS = ("XBTCAD", "ETHCAD")
ASSETS = {"XBT": "BTC", "XDG": "DOGE"}
# Kraken's errors that go away by themselves: worth a retry.
TRANSIENT = ("EService:Unavailable", "EService:Busy", "EAPI:Rate limit exceeded")


def asset(code: str) -> str:
    """Kraken asset code -> ISO-like code: XXBT -> BTC, ZCAD -> CAD, XBT -> BTC."""
    code = code.upper()
    if len(code) == 4 and code[0] in "XZ":
        code = code[1:]
    return ASSETS.get(code, code)


def result_pair(key: str, source: str = NAME) -> Pair:
    """``XXBTZCAD`` -> BTC/CAD, ``XBTCAD`` -> BTC/CAD."""
    if len(key) == 8 and key[0] in "XZ" and key[4] in "XZ":
        return Pair(asset(key[:4]), asset(key[4:]))
    if len(key) == 6:
        return Pair(asset(key[:3]), asset(key[3:]))
    raise SourceError(f"{source}: cannot read the pair name {key!r}", source=source)


def parse(payload: bytes | str | Any, received: datetime, source: str = NAME) -> list[Quote]:
    data = load_json(payload, source)
    errors = need(data, "error", source)
    if not isinstance(errors, list):
        raise SourceError(f"{source}: 'error' is not a list", source=source)
    problems = [e for e in errors if isinstance(e, str) and not e.startswith("W")]
    if problems:
        transient = any(e.startswith(TRANSIENT) for e in problems)
        raise SourceError(f"{source}: {'; '.join(problems)}", source=source, retryable=transient)
    result = need(data, "result", source)
    if not isinstance(result, dict) or not result:
        raise SourceError(f"{source}: the answer has no tickers", source=source)
    quotes = []
    for key, ticker in result.items():
        where = f"ticker {key}"
        ask, bid = (need(ticker, k, source, where) for k in ("a", "b"))
        if not (isinstance(ask, list) and ask and isinstance(bid, list) and bid):
            raise SourceError(f"{source}: {where}: 'a' and 'b' must be lists", source=source)
        quotes.append(
            Quote.two_sided(
                pair=result_pair(key, source),
                bid=to_rate(bid[0], source, f"{key} bid"),
                ask=to_rate(ask[0], source, f"{key} ask"),
                source=source,
                timestamp=received,
                kind="exchange",
            )
        )
    return quotes


class Kraken(HttpSource):
    name = NAME
    kind = "exchange"
    default_base_url = "https://api.kraken.com"

    def __init__(self, *, pairs: Sequence[str] = DEFAULT_PAIRS, **http: Any):
        super().__init__(**http)
        self.pairs = tuple(p.upper() for p in pairs)

    async def fetch_once(self) -> list[Quote]:
        body = await self.get("/0/public/Ticker", {"pair": ",".join(self.pairs)})
        return parse(body, self.now(), self.name)

    def error_message(self, status: int, body: bytes) -> str:
        try:
            data = load_json(body, self.name)
        except SourceError:
            data = None
        errors = data.get("error") if isinstance(data, dict) else None
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)
        return super().error_message(status, body)

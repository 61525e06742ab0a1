"""Open Exchange Rates: ``GET /api/latest.json?app_id=KEY``.

USD base on the free plan; ``timestamp`` in unix seconds; rates as JSON numbers (read as
exact Decimals). Errors (401 missing or invalid key, 403 not allowed on this plan, 429 over
the quota) answer ``{"error": true, "status", "message", "description"}``. Quotes are
``USD/x`` (``intraday``); the SourceBook crosses them, e.g. ``EUR/CAD = 1/(USD/EUR) x
USD/CAD``. The key is sent as a query parameter and never appears in error messages.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import Any

from ratehubd.adapters.feeds.base import Quote, load_json, need, to_rate
from ratehubd.adapters.feeds.http import HttpSource, json_error
from ratehubd.engine.pairs import Pair
from ratehubd.errors import ConfigError, SourceError

NAME = "oxr"


def parse(
    payload: bytes | str | Any, currencies: Collection[str] | None = None, source: str = NAME
) -> list[Quote]:
    data = load_json(payload, source)
    if isinstance(data, dict) and data.get("error") is True:
        words = json_error_dict(data)
        raise SourceError(f"{source}: {words}", source=source, status=data.get("status"))
    stamp = to_rate(need(data, "timestamp", source), source, "timestamp")
    when = datetime.fromtimestamp(int(stamp), UTC)
    base, rates = need(data, "base", source), need(data, "rates", source)
    if not isinstance(rates, dict) or not isinstance(base, str):
        raise SourceError(f"{source}: 'base' or 'rates' has the wrong type", source=source)
    quotes = [
        Quote(
            pair=Pair(base, code),
            mid=to_rate(value, source, f"{base}/{code}"),
            source=source,
            timestamp=when,
            kind="intraday",
        )
        for code, value in rates.items()
        if code != base and (currencies is None or code in currencies)
    ]
    if not quotes:
        raise SourceError(f"{source}: the answer has none of the wanted rates", source=source)
    return quotes


def json_error_dict(data: dict[str, Any]) -> str:
    parts = [str(data[k]) for k in ("message", "description") if data.get(k)]
    return ": ".join(parts) or "error without a message"


class OpenExchangeRates(HttpSource):
    name = NAME
    kind = "intraday"
    default_base_url = "https://openexchangerates.org/api"

    def __init__(
        self, *, app_id: str, currencies: Sequence[str] = ("CAD", "EUR", "GBP"), **http: Any
    ):
        if not app_id.strip():
            raise ConfigError(
                "oxr needs an app_id: put the key in a file and name it in "
                "sources.providers.oxr.app_id_file, or set OXR_APP_ID"
            )
        super().__init__(**http)
        self.app_id = app_id.strip()
        self.currencies = tuple(c.upper() for c in currencies)

    async def fetch_once(self) -> list[Quote]:
        params = {"app_id": self.app_id, "symbols": ",".join(self.currencies)}
        body = await self.get("/latest.json", params)
        return parse(body, set(self.currencies), self.name)

    def error_message(self, status: int, body: bytes) -> str:
        return json_error(body, ("message", "description"))

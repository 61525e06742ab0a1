"""ECB euro foreign exchange reference rates: ``eurofxref-daily.xml``.

XML with namespaces; ``1 EUR = rate`` of each currency; published around 16:00 Frankfurt
time on TARGET days. The parser emits ``EUR/x`` quotes (``reference``) for the wanted
currencies that are present (a currency may disappear, as RUB did in 2022); the CAD
crosses are built from them: ``EUR/CAD`` directly, ``USD/CAD = 1/(EUR/USD) x EUR/CAD``,
``GBP/CAD = 1/(EUR/GBP) x EUR/CAD`` (see :func:`cad_crosses`; the SourceBook does the same
through its routes).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Collection
from typing import Any

from ratehubd.adapters.feeds.base import Quote, published_at, to_rate
from ratehubd.adapters.feeds.http import HttpSource
from ratehubd.engine.cross import Cross, cross
from ratehubd.engine.pairs import Pair
from ratehubd.errors import SourceError

NAME = "ecb"
NS = {"ecb": "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"}
DEFAULT_CURRENCIES = ("CAD", "USD", "GBP")


def parse(
    payload: bytes | str,
    currencies: Collection[str] | None = DEFAULT_CURRENCIES,
    source: str = NAME,
) -> list[Quote]:
    """``EUR/x`` for each currency of ``currencies`` (None: all) in the day's rates."""
    try:
        root = ET.fromstring(payload)
    except ET.ParseError as exc:
        raise SourceError(f"{source}: the answer is not valid XML ({exc})", source=source) from None
    day = root.find("ecb:Cube/ecb:Cube[@time]", NS)
    if day is None:
        raise SourceError(
            f"{source}: no dated <Cube time=...> in the answer; has the format changed?",
            source=source,
        )
    when = published_at(day.get("time", ""), 16, 0, "Europe/Berlin", source)
    quotes = []
    for cube in day.findall("ecb:Cube[@currency]", NS):
        code = cube.get("currency", "")
        if currencies is not None and code not in currencies:
            continue
        if len(code) != 3 or not code.isalpha():
            raise SourceError(f"{source}: {code!r} is not a currency code", source=source)
        rate = to_rate(cube.get("rate"), source, f"the rate of {code}")
        quotes.append(
            Quote(pair=Pair("EUR", code), mid=rate, source=source, timestamp=when, kind="reference")
        )
    if not quotes:
        wanted = ", ".join(sorted(currencies)) if currencies is not None else "any currency"
        raise SourceError(f"{source}: no rate for {wanted} on {day.get('time')}", source=source)
    return quotes


def cad_crosses(quotes: list[Quote], quote_currency: str = "CAD") -> list[Cross]:
    """``x/CAD`` for every ``EUR/x`` present, through EUR; EUR/CAD itself as a single leg.
    Empty when the quote currency is missing."""
    by_code = {q.pair.quote: q for q in quotes if q.pair.base == "EUR"}
    leg = by_code.get(quote_currency)
    if leg is None:
        return []
    out = [cross(Pair("EUR", quote_currency), [leg])]
    for code, q in sorted(by_code.items()):
        if code != quote_currency:
            out.append(cross(Pair(code, quote_currency), [q, leg]))
    return out


class Ecb(HttpSource):
    name = NAME
    kind = "reference"
    default_base_url = "https://www.ecb.europa.eu/stats/eurofxref"

    def __init__(self, *, currencies: Collection[str] = DEFAULT_CURRENCIES, **http: Any):
        super().__init__(**http)
        self.currencies = frozenset(c.upper() for c in currencies)

    async def fetch_once(self) -> list[Quote]:
        body = await self.get("/eurofxref-daily.xml")
        return parse(body, self.currencies, self.name)

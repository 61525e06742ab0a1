"""Bank of Canada Valet: daily reference rates, e.g. ``FXUSDCAD``.

``GET /valet/observations/FXUSDCAD,FXEURCAD,FXGBPCAD/json?recent=5``. Values are JSON
strings; a ``v`` can be empty; weekends and holidays have no rows. Each series yields its
latest non-empty observation, stamped 16:30 Toronto time of its date (when the Bank
publishes). The Bank calls these rates indicative: they are ``reference`` quotes, for sanity
bands and context, not dealing prices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ratehubd.adapters.feeds.base import Quote, load_json, need, published_at, to_rate
from ratehubd.adapters.feeds.http import HttpSource
from ratehubd.engine.pairs import Pair
from ratehubd.errors import SourceError

NAME = "boc"
DEFAULT_SERIES = ("FXUSDCAD", "FXEURCAD", "FXGBPCAD")


def series_pair(series: str, source: str = NAME) -> Pair:
    """``FXUSDCAD`` -> USD/CAD."""
    code = series.strip().upper()
    if len(code) != 8 or not code.startswith("FX") or not code[2:].isalpha():
        raise SourceError(
            f"{source}: {series!r} is not an FX series; use names like FXUSDCAD", source=source
        )
    return Pair(code[2:5], code[5:8])


def parse(
    payload: bytes | str | dict[str, Any],
    series: Sequence[str] = DEFAULT_SERIES,
    source: str = NAME,
) -> list[Quote]:
    data = load_json(payload, source)
    observations = need(data, "observations", source)
    if not isinstance(observations, list):
        raise SourceError(f"{source}: 'observations' is not a list", source=source)
    quotes = []
    for name in series:
        latest = _latest(observations, name)
        if latest is not None:
            day, value = latest
            quotes.append(
                Quote(
                    pair=series_pair(name, source),
                    mid=to_rate(value, source, f"{name} on {day}"),
                    source=source,
                    timestamp=published_at(day, 16, 30, "America/Toronto", source),
                    kind="reference",
                )
            )
    if not quotes:
        raise SourceError(
            f"{source}: no values for {', '.join(series)} in the answer; "
            "raise 'recent' to look further back",
            source=source,
        )
    return quotes


def _latest(observations: list[Any], series: str) -> tuple[str, object] | None:
    """The (date, value) of the latest observation of ``series`` with a non-empty value."""
    best: tuple[str, object] | None = None
    for row in observations:
        if not isinstance(row, dict):
            continue
        cell, day = row.get(series), row.get("d")
        value = cell.get("v") if isinstance(cell, dict) else None
        if value in (None, "") or not isinstance(day, str):
            continue
        if best is None or day > best[0]:
            best = (day, value)
    return best


class BankOfCanada(HttpSource):
    name = NAME
    kind = "reference"
    default_base_url = "https://www.bankofcanada.ca/valet"

    def __init__(self, *, series: Sequence[str] = DEFAULT_SERIES, recent: int = 5, **http: Any):
        super().__init__(**http)
        for name in series:
            series_pair(name, self.name)
        self.series = tuple(series)
        self.recent = recent

    async def fetch_once(self) -> list[Quote]:
        path = f"/observations/{','.join(self.series)}/json"
        body = await self.get(path, {"recent": str(self.recent)})
        return parse(body, self.series, self.name)

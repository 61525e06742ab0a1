"""What every published rate promises, checked in Decimal. Pure.

Rates arrive parsed with ``json.loads(..., parse_float=Decimal)``, so each number is
the exact decimal the daemon printed. For one rate (README, "Concepts"):

- ``0 < sellRate < rate (mid) < buyRate``: buyRate is what a customer pays for one unit
  of the base currency, sellRate what they receive for one;
- ``spread`` is ``(buyRate - sellRate) / mid`` (published rounded to 8 places);
- buyRate and sellRate sit on the pair's tick (``provenance.tick``);
- a computed rate is rounded outward, so its spread is at least the spread applied and
  at most one tick wider on each side, and its mid is the market mid; a fixed override
  imposes its own spread exactly;
- the spread applied lies within the daemon's bounds (``rateEngine.minSpread`` and
  ``maxSpread`` in the system status when it reports them, else between 0 and 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

EPS = Decimal("1e-8")  # spreads are published rounded to 8 places
ZERO = Decimal(0)
CONVENTION = "buyRate is what a customer pays, sellRate what they receive"


@dataclass(frozen=True)
class SpreadBounds:
    low: Decimal
    high: Decimal

    @classmethod
    def from_status(cls, engine: Mapping[str, Any]) -> SpreadBounds | None:
        low, high = engine.get("minSpread"), engine.get("maxSpread")
        if low is None or high is None:
            return None
        return cls(dec(low), dec(high))


def dec(value: Any) -> Decimal:
    """A wire number as a Decimal (ValueError if it is not one)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(f"not a number: {value!r}")
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


def where(rate: Mapping[str, Any]) -> str:
    store = rate.get("storeId")
    return f"{rate.get('currencyPair')} at {f'store {store}' if store else 'global'}"


def rate_problems(rate: Mapping[str, Any], bounds: SpreadBounds | None = None) -> list[str]:
    """Every promise ``rate`` breaks, each as one sentence naming the pair and store."""
    at = where(rate)
    try:
        buy, sell, mid = dec(rate["buyRate"]), dec(rate["sellRate"]), dec(rate["rate"])
        spread = dec(rate["spread"])
    except (KeyError, ValueError) as exc:
        return [f"{at}: malformed rate ({exc})"]
    problems = []
    if not ZERO < sell < mid < buy:
        problems.append(
            f"{at}: sellRate {sell} < mid {mid} < buyRate {buy} does not hold ({CONVENTION})"
        )
    if mid > ZERO and abs((buy - sell) / mid - spread) > EPS:
        actual = ((buy - sell) / mid).quantize(EPS)
        problems.append(f"{at}: spread {spread} is not (buyRate - sellRate) / mid = {actual}")
    prov = rate.get("provenance")
    if not isinstance(prov, Mapping):
        return [*problems, f"{at}: no provenance (marketMid, spreadApplied, tick)"]
    try:
        return problems + _provenance_problems(at, buy, sell, mid, spread, prov, bounds)
    except (KeyError, ValueError) as exc:
        return [*problems, f"{at}: malformed provenance ({exc})"]


def _provenance_problems(
    at: str,
    buy: Decimal,
    sell: Decimal,
    mid: Decimal,
    spread: Decimal,
    prov: Mapping[str, Any],
    bounds: SpreadBounds | None,
) -> list[str]:
    problems = []
    tick, applied = dec(prov["tick"]), dec(prov["spreadApplied"])
    if tick <= ZERO:
        problems.append(f"{at}: tick {tick} is not positive")
    else:
        for name, value in (("buyRate", buy), ("sellRate", sell)):
            if value % tick != ZERO:
                problems.append(f"{at}: {name} {value} is not on the pair's tick {tick}")
    ov = prov.get("override")
    fixed = isinstance(ov, Mapping) and ov.get("buyRate") is not None
    if fixed:
        if abs(spread - applied) > EPS:
            problems.append(f"{at}: spread {spread} is not the override's spread {applied}")
    elif mid > ZERO and tick > ZERO:
        widest = applied + 2 * tick / mid
        if spread + EPS < applied:
            problems.append(f"{at}: spread {spread} is narrower than the spread applied {applied}")
        elif spread > widest + EPS:
            problems.append(
                f"{at}: spread {spread} is wider than the spread applied {applied} "
                f"plus one tick {tick} on each side"
            )
        market = dec(prov["marketMid"])
        if mid != market:
            problems.append(f"{at}: mid {mid} is not the market mid {market}")
    problems += _bounds_problems(at, applied, bounds)
    return problems


def _bounds_problems(at: str, applied: Decimal, bounds: SpreadBounds | None) -> list[str]:
    if bounds is None:
        if not ZERO < applied < 1:
            return [f"{at}: spread applied {applied} is not between 0 and 1"]
        return []
    if not bounds.low <= applied <= bounds.high:
        return [
            f"{at}: spread applied {applied} is outside the daemon's bounds "
            f"[{bounds.low}, {bounds.high}]"
        ]
    return []


def missing_pairs(pairs: Iterable[str], rates: Iterable[Mapping[str, Any]]) -> list[str]:
    have = {r.get("currencyPair") for r in rates}
    return [p for p in pairs if p not in have]

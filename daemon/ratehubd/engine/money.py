"""Decimal arithmetic: parsing, rounding to a tick, spreads.

No floats here. Values from JSON arrive as floats and are converted through
``str`` (``Decimal(str(1.37)) == Decimal("1.37")``), which keeps what the user
typed for every value with at most 15 significant digits.
"""

from __future__ import annotations

import math
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation

from ratehubd.errors import InvalidRates

ZERO = Decimal(0)
TWO = Decimal(2)


def to_decimal(value: object, field: str) -> Decimal:
    """Convert wire input (str, int, float, Decimal) to a finite Decimal."""
    if isinstance(value, bool):
        raise InvalidRates(f"{field} must be a number, got {value!r}", field=field)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRates(f"{field} must be a finite number, got {value!r}", field=field)
        value = repr(value)
    try:
        d = Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise InvalidRates(f"{field} must be a number, got {value!r}", field=field) from None
    if not d.is_finite():
        raise InvalidRates(f"{field} must be a finite number, got {value!r}", field=field)
    return d


def round_up(value: Decimal, tick: Decimal) -> Decimal:
    return (value / tick).to_integral_value(rounding=ROUND_CEILING) * tick


def round_down(value: Decimal, tick: Decimal) -> Decimal:
    return (value / tick).to_integral_value(rounding=ROUND_FLOOR) * tick


def mid_of(buy: Decimal, sell: Decimal) -> Decimal:
    return (buy + sell) / TWO


def spread_of(buy: Decimal, sell: Decimal, mid: Decimal) -> Decimal:
    """The relative total spread, ``(buy - sell) / mid``."""
    return (buy - sell) / mid

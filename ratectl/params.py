"""Parsing what the user typed: numbers, spreads, durations, times. Pure.

Each parser raises :class:`ratectl.errors.UsageError` (exit 2) with the accepted forms.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ratectl.errors import UsageError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
MAX_DIGITS = 15  # a JSON number keeps this many significant digits exactly


def decimal(text: str, flag: str) -> Decimal:
    """A positive rate as typed, exact (sent as a JSON number with the same digits)."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise UsageError(f"{flag} {text!r} is not a number; write it like 1.37") from None
    if not value.is_finite() or value <= 0:
        raise UsageError(f"{flag} {text!r} must be a number greater than 0")
    if len(value.as_tuple().digits) > MAX_DIGITS:
        raise UsageError(f"{flag} {text!r} has more than {MAX_DIGITS} significant digits")
    return value


def spread(text: str) -> Decimal:
    """``0.03`` or ``3%`` -> Decimal("0.03"): the relative total spread."""
    raw = text.strip()
    if raw.endswith("%"):
        return decimal(raw[:-1], "--spread") / 100
    return decimal(raw, "--spread")


def duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``1h30m``, ``2d`` -> timedelta."""
    raw = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(raw)
    if not raw or "".join(n + u for n, u in parts) != raw:
        raise UsageError(
            f"--valid-for {text!r} is not a duration; write it like 90s, 30m, 1h, 1h30m or 2d"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"--valid-for {text!r} must be longer than zero")
    return timedelta(seconds=seconds)


def timestamp(text: str) -> datetime:
    """An ISO 8601 time (``2026-01-05T18:00:00Z``; no zone: UTC)."""
    raw = text.strip()
    try:
        dt = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise UsageError(
            f"--valid-until {text!r} is not an ISO 8601 time; write it like 2026-01-05T18:00:00Z"
        ) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def iso(dt: datetime) -> str:
    utc = dt.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def csv(values: list[str] | None) -> list[str]:
    """``--pairs USD/CAD,EUR/CAD --pairs GBP/CAD`` -> three items."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def set_rate_body(
    pair: str,
    *,
    buy: str | None,
    sell: str | None,
    spread_text: str | None,
    store: str | None,
    valid_for: str | None,
    valid_until: str | None,
    reason: str | None,
    expected_version: int | None,
    now: datetime,
) -> dict[str, Any]:
    """The ``POST /api/rates/set`` body; limits and the buy > sell rule are the daemon's."""
    if buy is None and sell is None and spread_text is None:
        raise UsageError("give --buy and --sell (fixed rates), or --spread (follow the market)")
    if valid_for is not None and valid_until is not None:
        raise UsageError("give --valid-for or --valid-until, not both")
    body: dict[str, Any] = {"currencyPair": pair}
    if buy is not None:
        body["buyRate"] = float(decimal(buy, "--buy"))
    if sell is not None:
        body["sellRate"] = float(decimal(sell, "--sell"))
    if spread_text is not None:
        body["spread"] = float(spread(spread_text))
    if store:
        body["storeId"] = store
    if valid_for is not None:
        body["validUntil"] = iso(now + duration(valid_for))
    elif valid_until is not None:
        body["validUntil"] = iso(timestamp(valid_until))
    if reason:
        body["reason"] = reason
    if expected_version is not None:
        body["expectedVersion"] = expected_version
    return body

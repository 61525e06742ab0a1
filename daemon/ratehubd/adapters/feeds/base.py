"""What every market-data source shares: the Quote value, the Source protocol, a retry
policy as a generator of delays, the poller, and the helpers the pure parsers use.

Only :func:`poll` (and the HTTP fetchers' retries) sleep; the sleep is injected so tests
never wait. ``Quote`` and ``Kind`` live in ``ratehubd.engine.cross`` (the engine must not
import adapters) and are re-exported here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from time import monotonic
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ratehubd.engine.cross import KINDS, Kind, Quote
from ratehubd.errors import SourceError

__all__ = [
    "KINDS",
    "Kind",
    "Quote",
    "RetryPolicy",
    "Source",
    "backoff",
    "poll",
]

Sleep = Callable[[float], Awaitable[None]]


@runtime_checkable
class Source(Protocol):
    """One market-data source. ``fetch`` is one poll; it raises SourceError."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> Kind: ...

    async def fetch(self) -> list[Quote]: ...


# -- retries -------------------------------------------------------------------------------


def backoff(initial: float = 0.5, factor: float = 2.0, max_delay: float = 30.0) -> Iterator[float]:
    """Delays between attempts: ``initial``, then times ``factor``, capped at ``max_delay``,
    forever. Pure: the caller sleeps."""
    delay = initial
    while True:
        yield min(delay, max_delay)
        delay *= factor


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """``attempts`` tries per fetch (1 = no retry), with :func:`backoff` delays between."""

    attempts: int = 3
    initial_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 30.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def delays(self) -> Iterator[float]:
        return backoff(self.initial_s, self.factor, self.max_delay_s)


async def poll(
    source: Source,
    interval_s: float,
    emit: Callable[[list[Quote]], object],
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = monotonic,
    on_error: Callable[[SourceError], object] | None = None,
    retry: RetryPolicy = RetryPolicy(),
    active: Callable[[], bool] | None = None,
) -> None:
    """Fetch ``source`` every ``interval_s`` and hand each poll's quotes to ``emit``.

    After a retryable failure the next poll comes sooner, after the policy's backoff delay
    (never later than ``interval_s``); after a permanent one (a bad key, an unknown
    currency) at the normal interval. While ``active`` says no (a fleet node that does
    not take in the market), it polls nothing. Runs until cancelled.
    """
    delays = retry.delays()
    while True:
        if active is not None and not active():
            await sleep(interval_s)  # another node of the fleet polls; ask again later
            continue
        started = clock()
        try:
            quotes = await source.fetch()
        except SourceError as exc:
            if on_error is not None:
                on_error(exc)
            await sleep(min(next(delays), interval_s) if exc.retryable else interval_s)
            continue
        delays = retry.delays()
        emit(quotes)
        # Keep the cadence: the fetch's own time comes off the wait.
        await sleep(max(0.0, interval_s - (clock() - started)))


# -- parser helpers ------------------------------------------------------------------------


def load_json(payload: bytes | str | Any, source: str) -> Any:
    """Decode JSON with every number as an exact Decimal; dicts and lists pass through."""
    if not isinstance(payload, bytes | str):
        return payload
    try:
        return json.loads(payload, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"{source}: the answer is not JSON ({exc})", source=source) from None


def to_rate(value: object, source: str, what: str) -> Decimal:
    """A rate from a JSON string or number; SourceError when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise SourceError(f"{source}: {what} is {value!r}, not a number", source=source)
    try:
        d = Decimal(repr(value) if isinstance(value, float) else value)
    except InvalidOperation:
        raise SourceError(f"{source}: {what} is {value!r}, not a number", source=source) from None
    if not d.is_finite():
        raise SourceError(f"{source}: {what} is {value!r}, not a finite number", source=source)
    return d


def need(obj: object, key: str, source: str, where: str = "the answer") -> Any:
    """``obj[key]``, or SourceError naming what is missing."""
    if not isinstance(obj, dict) or key not in obj:
        raise SourceError(f"{source}: {where} has no {key!r}; has the API changed?", source=source)
    return obj[key]


def published_at(day: str, hour: int, minute: int, zone: str, source: str) -> datetime:
    """``day`` (YYYY-MM-DD) at a local publication time, in UTC (BoC 16:30 Toronto, ECB
    16:00 Frankfurt). Without a time-zone database the standard-time offset is used."""
    try:
        d = date.fromisoformat(day)
    except (TypeError, ValueError):
        raise SourceError(f"{source}: date {day!r} is not YYYY-MM-DD", source=source) from None
    try:
        tz: timezone | ZoneInfo = ZoneInfo(zone)
    except ZoneInfoNotFoundError:
        tz = timezone(timedelta(hours=_STANDARD_OFFSETS.get(zone, 0)))
    return datetime.combine(d, time(hour, minute), tzinfo=tz).astimezone(UTC)


_STANDARD_OFFSETS = {"America/Toronto": -5, "Europe/Berlin": 1}

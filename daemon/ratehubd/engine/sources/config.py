"""How the SourceBook is configured: freshness budgets per kind and source, routing per pair,
breaker thresholds. Frozen values, checked once (``BookConfig.check``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Literal

from ratehubd.engine.cross import KINDS
from ratehubd.engine.pairs import Pair
from ratehubd.errors import ConfigError

Mode = Literal["priority", "median"]
DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Budget:
    """How long a quote stays fresh. ``weekdays_only`` counts only Monday-Friday (UTC) time,
    so a daily rate published on Friday is still fresh on Monday."""

    seconds: float
    weekdays_only: bool = False

    def age(self, then: datetime, now: datetime) -> float:
        if self.weekdays_only:
            return weekday_seconds(then, now)
        return (now - then).total_seconds()

    def fresh(self, then: datetime, now: datetime) -> bool:
        return self.age(then, now) <= self.seconds


# Reference rates are published once a business day: two business days of slack cover a
# late publication and a one-day holiday. Intraday feeds poll hourly on the cheap plans.
DEFAULT_BUDGETS: Mapping[str, Budget] = {
    "reference": Budget(2 * DAY, weekdays_only=True),
    "intraday": Budget(2 * 3600.0),
    "exchange": Budget(30.0),
    "push": Budget(300.0),
    "simulated": Budget(60.0),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class PairRouting:
    """Where a pair's market comes from. ``sources`` are dealing sources in priority order;
    ``references`` only shape the sanity band (daily rates are not dealing prices)."""

    sources: tuple[str, ...] = ("simulated",)
    mode: Mode = "priority"
    references: tuple[str, ...] = ()
    reference_band: Decimal = Decimal("0.05")


@dataclass(frozen=True, slots=True, kw_only=True)
class BookConfig:
    """``routing`` per pair (a pair not listed gets ``PairRouting()``: the simulated feed);
    ``budgets`` per kind, overridden per source by ``source_budgets``; the breaker opens
    after ``breaker_rejections`` consecutive rejections and closes after
    ``breaker_recovery`` consecutive accepted values; crosses go through ``pivots``."""

    routing: Mapping[Pair, PairRouting] = field(default_factory=dict)
    budgets: Mapping[str, Budget] = field(default_factory=lambda: dict(DEFAULT_BUDGETS))
    source_budgets: Mapping[str, Budget] = field(default_factory=dict)
    breaker_rejections: int = 5
    breaker_recovery: int = 3
    pivots: tuple[str, ...] = ("USD", "EUR")
    max_clock_skew_s: float = 300.0

    def check(self) -> None:
        """Raise ConfigError listing every problem."""
        problems = [f"sources.staleness: no budget for kind {k!r}" for k in KINDS]
        problems = [p for p, k in zip(problems, KINDS, strict=True) if k not in self.budgets]
        if self.breaker_rejections < 1:
            problems.append("sources.breaker_rejections must be at least 1")
        if self.breaker_recovery < 1:
            problems.append("sources.breaker_recovery must be at least 1")
        for pair, r in self.routing.items():
            where = f"sources.pairs.{pair}"
            if not r.sources:
                problems.append(f"{where}.sources: name at least one source")
            if r.mode not in ("priority", "median"):
                problems.append(f"{where}.mode: use 'priority' or 'median', not {r.mode!r}")
            if not Decimal(0) < r.reference_band < Decimal(1):
                problems.append(f"{where}.reference_band must be a fraction (0.05 = 5 %)")
        if problems:
            raise ConfigError("invalid source configuration", problems)


def weekday_seconds(start: datetime, end: datetime) -> float:
    """Seconds between ``start`` and ``end`` that fall on Monday to Friday (UTC)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return (end - start).total_seconds()
    weeks = (end - start) // timedelta(weeks=1)
    total = weeks * 5 * DAY
    cursor = start + timedelta(weeks=weeks)
    while cursor < end:
        midnight = datetime.combine(cursor.date() + timedelta(days=1), time(), tzinfo=UTC)
        upto = min(end, midnight)
        if cursor.weekday() < 5:
            total += (upto - cursor).total_seconds()
        cursor = upto
    return total

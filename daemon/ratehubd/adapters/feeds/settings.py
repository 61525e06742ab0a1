"""The ``[sources]`` configuration section, ready to hang on ``ratehubd.config.Config``.

Defaults change nothing: no provider is enabled and every pair is priced from the
simulated feed, as before. Each provider has its own table (``[sources.oxr]``), each pair
its routing (``[sources.pairs."BTC/CAD"]``); ``book_config`` turns it into the engine's
:class:`~ratehubd.engine.sources.BookConfig` and ``registry.build_sources`` into pollers.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ratehubd.engine.pairs import parse_pair
from ratehubd.engine.sources import DEFAULT_BUDGETS, BookConfig, Budget, PairRouting
from ratehubd.errors import UnknownPair

BUILT_IN = ("simulated", "push")  # sources that are not HTTP providers


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _f(default: Any, description: str, **kw: Any) -> Any:
    return Field(default=default, description=description, **kw)


class StalenessSettings(_Section):
    reference_s: float = _f(
        DEFAULT_BUDGETS["reference"].seconds,
        "Freshness of a daily reference rate (BoC, ECB), in business-day seconds "
        "(weekends do not count): 172800 = two business days.",
        gt=0,
    )
    intraday_s: float = _f(7200.0, "Freshness of an intraday quote (OXR).", gt=0)
    exchange_s: float = _f(30.0, "Freshness of an exchange book (Coinbase, Kraken).", gt=0)
    push_s: float = _f(300.0, "Freshness of a pushed price (pushRateData).", gt=0)
    simulated_s: float = _f(60.0, "Freshness of a simulated tick.", gt=0)


class HttpSettings(_Section):
    enabled: bool = _f(False, "Poll this provider.")
    base_url: str = _f("", "Provider URL; empty = its public API (set it for a self-hosted copy).")
    interval_s: float = _f(60.0, "Seconds between polls.", gt=0)
    timeout_s: float = _f(10.0, "Seconds one request may take.", gt=0)
    attempts: int = _f(3, "Tries per poll on timeouts, 5xx and 429.", ge=1, le=10)
    backoff_initial_s: float = _f(0.5, "First delay between tries; doubles each time.", gt=0)
    backoff_max_s: float = _f(30.0, "Longest delay between tries.", gt=0)
    staleness_s: float | None = _f(None, "Override the freshness budget of this source's kind.")


class BocSettings(HttpSettings):
    interval_s: float = _f(900.0, "Seconds between polls (one rate a business day).", gt=0)
    series: tuple[str, ...] = _f(("FXUSDCAD", "FXEURCAD", "FXGBPCAD"), "Valet series.")
    recent: int = _f(5, "Observations asked for (covers weekends and holidays).", ge=1)


class EcbSettings(HttpSettings):
    interval_s: float = _f(900.0, "Seconds between polls (one rate a TARGET day).", gt=0)
    currencies: tuple[str, ...] = _f(("CAD", "USD", "GBP"), "EUR/x rates to read.")


class FrankfurterSettings(HttpSettings):
    interval_s: float = _f(900.0, "Seconds between polls.", gt=0)
    staleness_s: float | None = _f(
        259200.0, "Its data is daily: fresh for three days (a weekend and a holiday)."
    )
    version: Literal["v1", "v2"] = _f("v1", "API version: v1 /v1/latest or v2 /v2/rates.")
    base: str = _f("USD", "Base currency asked for.")
    currencies: tuple[str, ...] = _f(("CAD", "EUR", "GBP"), "Quote currencies asked for.")


class OxrSettings(HttpSettings):
    interval_s: float = _f(3600.0, "Seconds between polls (hourly on the free plan).", gt=0)
    app_id_file: str = _f("", "File holding the app_id; else the env var OXR_APP_ID.")
    currencies: tuple[str, ...] = _f(("CAD", "EUR", "GBP"), "USD/x rates asked for.")


class CoinbaseSettings(HttpSettings):
    interval_s: float = _f(2.0, "Seconds between polls.", gt=0)
    products: tuple[str, ...] = _f(("BTC-USD", "ETH-USD"), "Products (no CAD books exist).")


class KrakenSettings(HttpSettings):
    interval_s: float = _f(2.0, "Seconds between polls.", gt=0)
    pairs: tuple[str, ...] = _f(("XBTCAD", "ETHCAD"), "Kraken pair names asked for.")


class PairSourcesSettings(_Section):
    sources: tuple[str, ...] = _f(("simulated",), "Dealing sources, first = highest priority.")
    mode: Literal["priority", "median"] = _f(
        "priority", "priority: first healthy source; median: median of the healthy ones."
    )
    references: tuple[str, ...] = _f((), "Daily reference sources that set the sanity band.")
    reference_band: Decimal = _f(
        Decimal("0.05"), "Band around a fresh reference mid (0.05 = +/- 5 %).", gt=0, lt=1
    )


class SourcesSettings(_Section):
    breaker_rejections: int = _f(5, "Consecutive rejections that open a pair's breaker.", ge=1)
    breaker_recovery: int = _f(3, "Consecutive healthy values that close it again.", ge=1)
    pivots: tuple[str, ...] = _f(("USD", "EUR"), "Currencies cross rates may go through.")
    max_clock_skew_s: float = _f(300.0, "Quotes stamped further ahead are rejected.", gt=0)
    staleness: StalenessSettings = StalenessSettings()
    boc: BocSettings = BocSettings()
    ecb: EcbSettings = EcbSettings()
    frankfurter: FrankfurterSettings = FrankfurterSettings()
    oxr: OxrSettings = OxrSettings()
    coinbase: CoinbaseSettings = CoinbaseSettings()
    kraken: KrakenSettings = KrakenSettings()
    pairs: dict[str, PairSourcesSettings] = Field(
        default_factory=dict, description="Routing per pair; a pair not listed uses simulated."
    )

    @field_validator("pairs")
    @classmethod
    def _pair_names(cls, v: dict[str, PairSourcesSettings]) -> dict[str, PairSourcesSettings]:
        try:
            return {str(parse_pair(name)): ps for name, ps in v.items()}
        except UnknownPair as exc:
            raise ValueError(exc.message) from None

    @model_validator(mode="after")
    def _sources_exist(self) -> SourcesSettings:
        problems = []
        for pair, ps in self.pairs.items():
            for name in (*ps.sources, *ps.references):
                if name in BUILT_IN:
                    continue
                provider = self.providers().get(name)
                if provider is None:
                    known = ", ".join([*BUILT_IN, *self.providers()])
                    problems.append(f"{pair}: unknown source {name!r}; known: {known}")
                elif not provider.enabled:
                    problems.append(f"{pair}: source {name!r} is not enabled ([sources.{name}])")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def providers(self) -> dict[str, HttpSettings]:
        return {
            "boc": self.boc, "ecb": self.ecb, "frankfurter": self.frankfurter,
            "oxr": self.oxr, "coinbase": self.coinbase, "kraken": self.kraken,
        }  # fmt: skip

    def book_config(self) -> BookConfig:
        s = self.staleness
        budgets = {
            "reference": Budget(s.reference_s, weekdays_only=True),
            "intraday": Budget(s.intraday_s),
            "exchange": Budget(s.exchange_s),
            "push": Budget(s.push_s),
            "simulated": Budget(s.simulated_s),
        }
        per_source = {
            name: Budget(p.staleness_s)
            for name, p in self.providers().items()
            if p.staleness_s is not None
        }
        routing = {
            parse_pair(name): PairRouting(
                sources=ps.sources,
                mode=ps.mode,
                references=ps.references,
                reference_band=ps.reference_band,
            )
            for name, ps in self.pairs.items()
        }
        return BookConfig(
            routing=routing,
            budgets=budgets,
            source_budgets=per_source,
            breaker_rejections=self.breaker_rejections,
            breaker_recovery=self.breaker_recovery,
            pivots=self.pivots,
            max_clock_skew_s=self.max_clock_skew_s,
        )

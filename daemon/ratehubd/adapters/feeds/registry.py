"""Build the enabled HTTP sources from ``SourcesSettings``: one place that knows each
provider's constructor, and reads the OXR key from its file or ``OXR_APP_ID``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from ratehubd.adapters.feeds.base import RetryPolicy, Sleep
from ratehubd.adapters.feeds.boc import BankOfCanada
from ratehubd.adapters.feeds.coinbase import Coinbase
from ratehubd.adapters.feeds.ecb import Ecb
from ratehubd.adapters.feeds.frankfurter import Frankfurter
from ratehubd.adapters.feeds.http import HttpSource
from ratehubd.adapters.feeds.kraken import Kraken
from ratehubd.adapters.feeds.oxr import OpenExchangeRates
from ratehubd.adapters.feeds.settings import (
    BocSettings,
    CoinbaseSettings,
    EcbSettings,
    FrankfurterSettings,
    HttpSettings,
    KrakenSettings,
    OxrSettings,
    SourcesSettings,
)
from ratehubd.errors import ConfigError

OXR_ENV = "OXR_APP_ID"


@dataclass(frozen=True, slots=True)
class Polled:
    """A source and how often to poll it (``base.poll(source, interval_s, emit)``)."""

    source: HttpSource
    interval_s: float


def build_sources(
    settings: SourcesSettings,
    *,
    client: httpx.AsyncClient | None = None,
    env: Mapping[str, str] = os.environ,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], datetime] | None = None,
) -> list[Polled]:
    """The enabled providers, sharing ``client`` when given (the caller closes it)."""
    out = []
    for name, p in settings.providers().items():
        if not p.enabled:
            continue
        common: dict[str, Any] = {
            "client": client,
            "base_url": p.base_url or None,
            "timeout_s": p.timeout_s,
            "retry": RetryPolicy(
                attempts=p.attempts, initial_s=p.backoff_initial_s, max_delay_s=p.backoff_max_s
            ),
            "sleep": sleep,
            "clock": clock,
        }
        out.append(Polled(_make(name, p, common, env), p.interval_s))
    return out


def _make(name: str, p: HttpSettings, common: dict[str, Any], env: Mapping[str, str]) -> HttpSource:
    if isinstance(p, BocSettings):
        return BankOfCanada(series=p.series, recent=p.recent, **common)
    if isinstance(p, EcbSettings):
        return Ecb(currencies=p.currencies, **common)
    if isinstance(p, FrankfurterSettings):
        return Frankfurter(base=p.base, currencies=p.currencies, version=p.version, **common)
    if isinstance(p, OxrSettings):
        return OpenExchangeRates(app_id=oxr_app_id(p, env), currencies=p.currencies, **common)
    if isinstance(p, CoinbaseSettings):
        return Coinbase(products=p.products, **common)
    if isinstance(p, KrakenSettings):
        return Kraken(pairs=p.pairs, **common)
    raise ConfigError(f"no adapter for source {name!r}")


def oxr_app_id(p: OxrSettings, env: Mapping[str, str]) -> str:
    """The key from ``app_id_file``, else ``OXR_APP_ID``; never from a flag value."""
    if p.app_id_file:
        path = Path(p.app_id_file).expanduser()
        try:
            return path.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"sources.oxr.app_id_file: cannot read {path} ({exc.strerror}); "
                "put the Open Exchange Rates app_id in that file"
            ) from None
    key = env.get(OXR_ENV, "").strip()
    if not key:
        raise ConfigError(
            f"sources.oxr is enabled but has no key: set sources.oxr.app_id_file or {OXR_ENV}"
        )
    return key

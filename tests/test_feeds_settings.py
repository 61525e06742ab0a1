"""The [sources] section: TOML -> settings -> the engine's BookConfig and the enabled
pollers; and the whole path over real HTTP, fixture payloads -> SourceBook."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from ratehubd.adapters.feeds.base import Quote, poll
from ratehubd.adapters.feeds.registry import build_sources, oxr_app_id
from ratehubd.adapters.feeds.settings import OxrSettings, SourcesSettings
from ratehubd.engine.pairs import Pair
from ratehubd.engine.policy import PairPolicy
from ratehubd.engine.sources import Budget, MarketMoved, PairRouting, SourceBook
from ratehubd.errors import ConfigError
from tests.conftest import FakeClock
from tests.fixtures.sources import Sleeps, fixture
from tests.fixtures.sources.server import FixtureServer, Reply

EXAMPLE = """
breaker_rejections = 4

[staleness]
exchange_s = 15

[boc]
enabled = true
[ecb]
enabled = true
[oxr]
enabled = true
interval_s = 600
[coinbase]
enabled = true
products = ["BTC-USD"]
[kraken]
enabled = true

[pairs."USD/CAD"]
sources = ["oxr", "simulated"]
references = ["boc", "ecb"]

[pairs.eurcad]
sources = ["oxr", "ecb"]

[pairs."BTC/CAD"]
sources = ["kraken", "coinbase"]
mode = "median"
"""


def load(text: str = EXAMPLE) -> SourcesSettings:
    return SourcesSettings.model_validate(tomllib.loads(text))


def test_defaults_change_nothing() -> None:
    s = SourcesSettings()
    cfg = s.book_config()
    assert cfg.routing == {} and not any(p.enabled for p in s.providers().values())
    assert build_sources(s) == []
    assert cfg.budgets["reference"] == Budget(172800.0, weekdays_only=True)
    assert cfg.source_budgets == {"frankfurter": Budget(259200.0)}


def test_toml_becomes_the_engines_book_config() -> None:
    cfg = load().book_config()
    assert cfg.breaker_rejections == 4
    assert cfg.budgets["exchange"] == Budget(15.0)
    assert cfg.routing[Pair("USD", "CAD")] == PairRouting(
        sources=("oxr", "simulated"), references=("boc", "ecb")
    )
    assert cfg.routing[Pair("EUR", "CAD")].sources == ("oxr", "ecb")
    assert cfg.routing[Pair("BTC", "CAD")].mode == "median"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[pairs."USD/CAD"]\nsources = ["bloomberg"]', "unknown source 'bloomberg'"),
        (
            '[pairs."USD/CAD"]\nsources = ["oxr"]',
            r"source 'oxr' is not enabled \(\[sources.oxr\]\)",
        ),
        ('[pairs."USD/USD"]\nsources = ["simulated"]', "same currency on both sides"),
        ('[pairs."USD/CAD"]\nmode = "mean"', "'priority' or 'median'"),
        ("[oxr]\ninterval_s = 0", "greater than 0"),
        ("[kraken]\nenabeld = true", "Extra inputs are not permitted"),
    ],
)
def test_bad_settings_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load(text)


def test_build_sources_makes_the_enabled_pollers() -> None:
    polled = build_sources(load(), env={"OXR_APP_ID": "k"})
    assert [(p.source.name, p.interval_s) for p in polled] == [
        ("boc", 900.0), ("ecb", 900.0), ("oxr", 600.0), ("coinbase", 2.0), ("kraken", 2.0),
    ]  # fmt: skip
    assert polled[0].source.base_url == "https://www.bankofcanada.ca/valet"


def test_the_oxr_key_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    key = tmp_path / "oxr.key"
    key.write_text("from-file\n")
    assert oxr_app_id(OxrSettings(app_id_file=str(key)), {}) == "from-file"
    assert oxr_app_id(OxrSettings(), {"OXR_APP_ID": "from-env"}) == "from-env"
    with pytest.raises(ConfigError, match="app_id_file or OXR_APP_ID"):
        oxr_app_id(OxrSettings(), {})
    with pytest.raises(ConfigError, match="cannot read .*missing.key"):
        oxr_app_id(OxrSettings(app_id_file=str(tmp_path / "missing.key")), {})


# -- the whole path ------------------------------------------------------------------------


def _policy(pair: Pair, start: str, jump: str = "0.05") -> PairPolicy:
    s = Decimal(start)
    return PairPolicy(
        pair=pair, tick=Decimal("0.0001"), spread=Decimal("0.02"), min_spread=Decimal("0.001"),
        max_spread=Decimal("0.1"), max_override_deviation=Decimal("0.05"), sanity_min=s / 3,
        sanity_max=s * 3, max_jump=Decimal(jump), staleness_seconds=300, max_lock_seconds=60,
    )  # fmt: skip


class Stop(Exception):
    pass


PIPELINE = """
[staleness]
intraday_s = 86400  # the fixtures' OXR rates are from 15:00 UTC; the clock reads 22:00

[boc]
enabled = true
[ecb]
enabled = true
[oxr]
enabled = true
[coinbase]
enabled = true
products = ["BTC-USD"]
staleness_s = 86400  # the fixture's ticker time is 15:04 UTC
[kraken]
enabled = true

[pairs."USD/CAD"]
sources = ["oxr"]
references = ["boc"]
[pairs."EUR/CAD"]
sources = ["oxr", "ecb"]
[pairs."BTC/CAD"]
sources = ["kraken", "coinbase"]
mode = "median"
"""


async def test_fixture_payloads_over_http_into_the_source_book() -> None:
    clock = FakeClock(datetime(2025, 1, 3, 22, 0, tzinfo=UTC))  # after BoC's 16:30 ET
    routes = {
        "/valet/observations/FXUSDCAD,FXEURCAD,FXGBPCAD/json": "boc_observations.json",
        "/eurofxref-daily.xml": "ecb_daily.xml",
        "/latest.json": "oxr_latest.json",
        "/products/BTC-USD/ticker": "coinbase_btc_usd.json",
        "/0/public/Ticker": "kraken_ticker.json",
    }
    pairs = {
        Pair("USD", "CAD"): _policy(Pair("USD", "CAD"), "1.35"),
        Pair("EUR", "CAD"): _policy(Pair("EUR", "CAD"), "1.49"),
        Pair("BTC", "CAD"): _policy(Pair("BTC", "CAD"), "135000", "0.10"),
    }
    async with FixtureServer() as srv, httpx.AsyncClient() as client:
        for path, name in routes.items():
            srv.route(path, Reply(fixture(name)))
        toml: dict[str, Any] = tomllib.loads(PIPELINE)
        for name in ("boc", "ecb", "oxr", "coinbase", "kraken"):
            toml[name]["base_url"] = srv.url + ("/valet" if name == "boc" else "")
        settings = SourcesSettings.model_validate(toml)
        book = SourceBook(pairs, settings.book_config())
        polled = build_sources(
            settings, client=client, env={"OXR_APP_ID": "k"}, sleep=Sleeps(), clock=clock.now
        )
        moved: list[MarketMoved] = []

        def offer(quotes: list[Quote]) -> None:
            events = book.offer(quotes, clock.now())
            moved.extend(e for e in events if isinstance(e, MarketMoved))

        async def once(delay: float) -> None:
            raise Stop  # one poll each

        for p in polled:
            with pytest.raises(Stop):
                await poll(p.source, p.interval_s, offer, sleep=once)

    now = clock.now()
    # the fixtures' numbers are made up and disagree: OXR's EUR/CAD (1.4050, crossed through
    # USD) is 5.6 % off the ECB's 1.4876, accepted first, so the newcomer is rejected
    assert book.rejected == {("oxr", "EUR/CAD"): 1}
    eur = book.mid(Pair("EUR", "CAD"), now)
    assert eur is not None and eur.sources == ("ecb",) and eur.mid == Decimal("1.4876")
    (eur_health,) = [h for h in book.health(now) if h.pair == Pair("EUR", "CAD")]
    assert "mid 1.404952153 jumps 5.56% from 1.4876 (limit 5%)" == eur_health.routes[0].last_reason
    usd = book.mid(Pair("USD", "CAD"), now)
    assert usd is not None and usd.mid == Decimal("1.361275") and usd.sources == ("oxr",)
    assert usd.reference == Decimal("1.3612")  # BoC's, setting the sanity band
    btc = book.mid(Pair("BTC", "CAD"), now)
    assert btc is not None and btc.sources == ("kraken", "coinbase") and btc.mode == "median"
    coinbase_cad = Decimal("97011.285") * Decimal("1.361275")
    assert abs(btc.mid - (Decimal("139500.05") + coinbase_cad) / 2) < Decimal("1e-20")
    assert btc.legs[1].sources == ("coinbase", "oxr")
    assert {m.quote.pair for m in moved} == set(pairs)

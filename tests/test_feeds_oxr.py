"""Open Exchange Rates: parser, error shapes and fetcher over a real HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ratehubd.adapters.feeds import oxr
from ratehubd.engine.pairs import Pair
from ratehubd.errors import ConfigError, SourceError
from tests.fixtures.sources import Sleeps, fixture
from tests.fixtures.sources.server import FixtureServer, Reply

KEY = "s3cret-app-id"


def test_parse_usd_base_with_unix_timestamp() -> None:
    quotes = {q.pair: q for q in oxr.parse(fixture("oxr_latest.json"))}
    q = quotes[Pair("USD", "CAD")]
    assert q.mid == Decimal("1.361275")
    assert q.timestamp == datetime(2025, 1, 3, 15, 0, tzinfo=UTC)
    assert (q.kind, q.source) == ("intraday", "oxr")
    assert set(quotes) == {Pair("USD", c) for c in ("CAD", "EUR", "GBP")}


def test_parse_keeps_only_wanted_currencies() -> None:
    assert [str(q.pair) for q in oxr.parse(fixture("oxr_latest.json"), {"CAD"})] == ["USD/CAD"]


def test_error_body_with_status_200_is_still_an_error() -> None:
    with pytest.raises(SourceError, match="invalid_app_id: Invalid App ID"):
        oxr.parse(fixture("oxr_401.json"))


def test_an_empty_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="app_id_file"):
        oxr.OpenExchangeRates(app_id=" ")


async def test_fetch_sends_the_key_and_symbols() -> None:
    async with FixtureServer() as srv:
        srv.route("/api/latest.json", Reply(fixture("oxr_latest.json")))
        async with oxr.OpenExchangeRates(base_url=srv.url + "/api", app_id=KEY) as src:
            quotes = await src.fetch()
        (req,) = srv.requests
    assert len(quotes) == 3
    assert req.query == {"app_id": [KEY], "symbols": ["CAD,EUR,GBP"]}


@pytest.mark.parametrize(
    ("status", "name", "words", "retryable"),
    [
        (401, "oxr_401.json", "invalid_app_id: Invalid App ID provided", False),
        (403, "oxr_403.json", "not_allowed: Changing the API `base`", False),
        (429, "oxr_429.json", "too_many_requests: Access restricted", True),
    ],
)
async def test_error_shapes(status: int, name: str, words: str, retryable: bool) -> None:
    sleeps = Sleeps()
    async with FixtureServer() as srv:
        srv.route("/api/latest.json", Reply(fixture(name), status=status))
        async with oxr.OpenExchangeRates(
            base_url=srv.url + "/api", app_id=KEY, sleep=sleeps
        ) as src:
            with pytest.raises(SourceError, match=f"HTTP {status}.*{words}") as info:
                await src.fetch()
        attempts = len(srv.requests)
    assert info.value.retryable is retryable
    assert attempts == (3 if retryable else 1)
    assert KEY not in info.value.message  # the key never reaches a log


async def test_retry_after_is_honoured_up_to_the_longest_delay() -> None:
    sleeps = Sleeps()
    limited = Reply(fixture("oxr_429.json"), status=429, headers={"Retry-After": "7"})
    async with FixtureServer() as srv:
        srv.route("/api/latest.json", limited, Reply(fixture("oxr_latest.json")))
        async with oxr.OpenExchangeRates(
            base_url=srv.url + "/api", app_id=KEY, sleep=sleeps
        ) as src:
            assert len(await src.fetch()) == 3
    assert sleeps.delays == [7.0]

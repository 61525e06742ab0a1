"""Bank of Canada Valet: parser and fetcher over a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ratehubd.adapters.feeds import boc
from ratehubd.engine.pairs import Pair
from ratehubd.errors import SourceError
from tests.fixtures.sources import fixture
from tests.fixtures.sources.server import FixtureServer, Reply

PATH = "/valet/observations/FXUSDCAD,FXEURCAD,FXGBPCAD/json"


def test_parse_takes_the_latest_non_empty_value_of_each_series() -> None:
    quotes = {q.pair: q for q in boc.parse(fixture("boc_observations.json"))}
    usd, eur, gbp = Pair("USD", "CAD"), Pair("EUR", "CAD"), Pair("GBP", "CAD")
    assert quotes[usd].mid == Decimal("1.3612")
    # 2025-01-03 has an empty EUR value: the 2025-01-02 one is the latest there is
    assert quotes[eur].mid == Decimal("1.4870")
    assert quotes[eur].timestamp == datetime(2025, 1, 2, 21, 30, tzinfo=UTC)  # 16:30 Toronto
    assert quotes[gbp].mid == Decimal("1.7925")
    assert all(q.kind == "reference" and q.source == "boc" for q in quotes.values())
    assert all(q.bid is None and q.ask is None for q in quotes.values())


def test_summer_dates_are_stamped_in_daylight_time() -> None:
    payload = {"observations": [{"d": "2025-07-04", "FXUSDCAD": {"v": "1.3601"}}]}
    (q,) = boc.parse(payload, ["FXUSDCAD"])
    assert q.timestamp == datetime(2025, 7, 4, 20, 30, tzinfo=UTC)


def test_only_empty_values_is_an_error_that_says_what_to_do() -> None:
    with pytest.raises(SourceError, match="no values for FXUSDCAD.*raise 'recent'"):
        boc.parse(fixture("boc_empty.json"), ["FXUSDCAD"])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"<html>", "not JSON"),
        (b'{"terms": {}}', "has no 'observations'"),
        (b'{"observations": [{"d": "2025-01-03", "FXUSDCAD": {"v": "1,36"}}]}', "not a number"),
        (b'{"observations": [{"d": "03/01/2025", "FXUSDCAD": {"v": "1.36"}}]}', "YYYY-MM-DD"),
    ],
)
def test_malformed_answers_are_clear_errors(payload: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message) as info:
        boc.parse(payload, ["FXUSDCAD"])
    assert info.value.source == "boc" and not info.value.retryable


def test_series_names_are_checked_up_front() -> None:
    with pytest.raises(SourceError, match="use names like FXUSDCAD"):
        boc.BankOfCanada(series=["USDCAD"])


async def test_fetch_asks_for_the_series_and_recent_rows() -> None:
    async with FixtureServer() as srv, boc.BankOfCanada(base_url=srv.url + "/valet") as src:
        srv.route(PATH, Reply(fixture("boc_observations.json")))
        quotes = await src.fetch()
    assert {str(q.pair) for q in quotes} == {"USD/CAD", "EUR/CAD", "GBP/CAD"}
    (req,) = srv.hits(PATH)
    assert req.query == {"recent": ["5"]}
    assert req.headers["user-agent"].startswith("ratehub/")


async def test_unknown_series_error_shape_is_reported_without_retry() -> None:
    async with FixtureServer() as srv:
        path = "/valet/observations/FXXYZCAD/json"
        srv.route(path, Reply(fixture("boc_not_found.json"), status=404))
        async with boc.BankOfCanada(base_url=srv.url + "/valet", series=["FXXYZCAD"]) as src:
            with pytest.raises(SourceError, match="HTTP 404.*Series FXXYZCAD not found") as info:
                await src.fetch()
        assert len(srv.hits(path)) == 1
    assert not info.value.retryable and info.value.details["status"] == 404

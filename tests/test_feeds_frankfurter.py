"""Frankfurter v1 and v2: parser and fetcher over a real HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ratehubd.adapters.feeds import frankfurter
from ratehubd.engine.pairs import Pair
from ratehubd.errors import SourceError
from tests.fixtures.sources import fixture
from tests.fixtures.sources.server import FixtureServer, Reply


@pytest.mark.parametrize("name", ["frankfurter_v1_latest.json", "frankfurter_v2_rates.json"])
def test_both_shapes_give_the_same_quotes(name: str) -> None:
    quotes = {q.pair: q for q in frankfurter.parse(fixture(name))}
    assert set(quotes) == {Pair("USD", "CAD"), Pair("USD", "EUR"), Pair("USD", "GBP")}
    q = quotes[Pair("USD", "CAD")]
    assert q.mid == Decimal("1.3613")  # exact: JSON numbers are read as Decimal
    assert quotes[Pair("USD", "GBP")].mid == Decimal("0.80453")
    assert (q.kind, q.source) == ("intraday", "frankfurter")
    assert q.timestamp == datetime(2025, 1, 3, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (fixture("frankfurter_422.json"), "invalid currency: XYZ"),
        (b"{}", "neither a v1 nor a v2"),
        (b"[]", "no rates"),
        (b'[{"date": "2025-01-03", "base": "USD", "rate": 1.36}]', "v2 row has no 'quote'"),
        (b'{"base": "USD", "date": "2025-01-03", "rates": {"CAD": "x"}}', "USD/CAD"),
    ],
)
def test_error_shapes(payload: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        frankfurter.parse(payload)


@pytest.mark.parametrize(
    ("version", "path", "name", "param"),
    [
        ("v1", "/v1/latest", "frankfurter_v1_latest.json", "symbols"),
        ("v2", "/v2/rates", "frankfurter_v2_rates.json", "quotes"),
    ],
)
async def test_fetch_each_version(version: str, path: str, name: str, param: str) -> None:
    async with FixtureServer() as srv:
        srv.route(path, Reply(fixture(name)))
        async with frankfurter.Frankfurter(base_url=srv.url, version=version) as src:  # type: ignore[arg-type]
            quotes = await src.fetch()
        (req,) = srv.hits(path)
    assert len(quotes) == 3
    assert req.query == {"base": ["USD"], param: ["CAD,EUR,GBP"]}


async def test_unknown_currency_422_is_not_retried() -> None:
    async with FixtureServer() as srv:
        srv.route("/v1/latest", Reply(fixture("frankfurter_422.json"), status=422))
        async with frankfurter.Frankfurter(base_url=srv.url, currencies=["XYZ"]) as src:
            with pytest.raises(SourceError, match="HTTP 422.*invalid currency: XYZ") as info:
                await src.fetch()
        assert len(srv.hits("/v1/latest")) == 1
    assert not info.value.retryable

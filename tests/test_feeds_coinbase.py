"""Coinbase Exchange ticker: parser and fetcher over a real HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ratehubd.adapters.feeds import coinbase
from ratehubd.engine.cross import cross
from ratehubd.engine.pairs import Pair
from ratehubd.errors import SourceError
from tests.fixtures.sources import fixture
from tests.fixtures.sources.server import FixtureServer, Reply


def test_parse_reads_string_decimals_and_the_book() -> None:
    (q,) = coinbase.parse(fixture("coinbase_btc_usd.json"), "BTC-USD")
    assert q.pair == Pair("BTC", "USD")
    assert (q.bid, q.ask) == (Decimal("97010.12"), Decimal("97012.45"))
    assert q.mid == Decimal("97011.285")
    assert q.timestamp == datetime(2025, 1, 3, 15, 4, 5, 123456, tzinfo=UTC)
    assert q.kind == "exchange"


def test_btc_cad_is_btc_usd_crossed_with_usd_cad() -> None:
    (btc,) = coinbase.parse(fixture("coinbase_btc_usd.json"), "BTC-USD")
    from ratehubd.engine.cross import Quote

    usd = Quote(pair=Pair("USD", "CAD"), mid=Decimal("1.3612"), source="oxr",
                timestamp=btc.timestamp, kind="intraday")  # fmt: skip
    c = cross(Pair("BTC", "CAD"), [btc, usd])
    assert c.bid == Decimal("97010.12") * Decimal("1.3612")
    assert c.ask == Decimal("97012.45") * Decimal("1.3612")
    assert c.sources == ("coinbase", "oxr")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (fixture("coinbase_404.json"), "BTC-USD: NotFound"),
        (b'{"bid": "1", "time": "2025-01-03T15:04:05Z"}', "has no 'ask'"),
        (b'{"bid": "1", "ask": "2", "time": "yesterday"}', "not an ISO 8601"),
        (b'{"bid": "1", "ask": "2", "time": "2025-01-03T15:04:05"}', "not an ISO 8601 UTC"),
        (b'{"bid": "1", "ask": "NaN", "time": "2025-01-03T15:04:05Z"}', "not a finite"),
    ],
)
def test_error_shapes(payload: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        coinbase.parse(payload, "BTC-USD")


def test_products_are_checked_up_front() -> None:
    with pytest.raises(ValueError, match="not like BTC-USD"):
        coinbase.Coinbase(products=["BTCUSD"])


async def test_fetch_each_product() -> None:
    async with FixtureServer() as srv:
        srv.route("/products/BTC-USD/ticker", Reply(fixture("coinbase_btc_usd.json")))
        srv.route("/products/ETH-USD/ticker", Reply(fixture("coinbase_eth_usd.json")))
        async with coinbase.Coinbase(base_url=srv.url) as src:
            quotes = await src.fetch()
    assert [str(q.pair) for q in quotes] == ["BTC/USD", "ETH/USD"]
    assert quotes[1].bid == Decimal("3604.51")


async def test_a_cad_book_answers_404_with_a_hint() -> None:
    async with FixtureServer() as srv:
        srv.route("/products/BTC-CAD/ticker", Reply(fixture("coinbase_404.json"), status=404))
        async with coinbase.Coinbase(base_url=srv.url, products=["BTC-CAD"]) as src:
            with pytest.raises(SourceError, match="HTTP 404.*NotFound.*no CAD books") as info:
                await src.fetch()
    assert not info.value.retryable

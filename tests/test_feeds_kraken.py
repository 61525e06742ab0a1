"""Kraken public Ticker: parser (key mapping, errors with HTTP 200) and fetcher."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ratehubd.adapters.feeds import kraken
from ratehubd.engine.pairs import Pair
from ratehubd.errors import SourceError
from tests.conftest import FakeClock
from tests.fixtures.sources import Sleeps, fixture
from tests.fixtures.sources.server import FixtureServer, Reply

RECEIVED = datetime(2025, 1, 3, 15, 4, 5, tzinfo=UTC)
PATH = "/0/public/Ticker"


def test_result_keys_map_back_to_our_pairs() -> None:
    quotes = {q.pair: q for q in kraken.parse(fixture("kraken_ticker.json"), RECEIVED)}
    btc = quotes[Pair("BTC", "CAD")]
    assert (btc.bid, btc.ask) == (Decimal("139490.00000"), Decimal("139510.10000"))
    assert btc.mid == Decimal("139500.05")
    assert quotes[Pair("ETH", "CAD")].ask == Decimal("5180.55000")
    assert all(q.timestamp == RECEIVED and q.kind == "exchange" for q in quotes.values())


@pytest.mark.parametrize(
    ("key", "pair"),
    [("XXBTZCAD", "BTC/CAD"), ("XETHZCAD", "ETH/CAD"), ("XBTCAD", "BTC/CAD"),
     ("XXBTZUSD", "BTC/USD"), ("ETHCAD", "ETH/CAD"), ("XXDGZUSD", "DOGE/USD")],
)  # fmt: skip
def test_result_pair(key: str, pair: str) -> None:
    assert str(kraken.result_pair(key)) == pair


@pytest.mark.parametrize(
    ("payload", "message", "retryable"),
    [
        (fixture("kraken_unknown_pair.json"), "EQuery:Unknown asset pair", False),
        (fixture("kraken_busy.json"), "EService:Busy", True),
        (b'{"error": [], "result": {}}', "no tickers", False),
        (b'{"error": [], "result": {"XXBTZCAD": {"a": "1", "b": ["1"]}}}', "must be lists", False),
        (b'{"result": {}}', "has no 'error'", False),
    ],
)
def test_error_shapes(payload: bytes, message: str, retryable: bool) -> None:
    with pytest.raises(SourceError, match=message) as info:
        kraken.parse(payload, RECEIVED)
    assert info.value.retryable is retryable


def test_warnings_are_not_errors() -> None:
    payload = fixture("kraken_ticker.json").replace(b'"error": []', b'"error": ["WGeneral:x"]')
    assert len(kraken.parse(payload, RECEIVED)) == 2


async def test_fetch_stamps_quotes_on_receipt() -> None:
    clock = FakeClock(RECEIVED)
    async with FixtureServer() as srv:
        srv.route(PATH, Reply(fixture("kraken_ticker.json")))
        async with kraken.Kraken(base_url=srv.url, clock=clock.now) as src:
            quotes = await src.fetch()
        (req,) = srv.requests
    assert req.query == {"pair": ["XBTCAD,ETHCAD"]}
    assert {q.timestamp for q in quotes} == {RECEIVED}


async def test_an_error_with_http_200_is_not_retried() -> None:
    async with FixtureServer() as srv:
        srv.route(PATH, Reply(fixture("kraken_unknown_pair.json")))
        async with kraken.Kraken(base_url=srv.url, pairs=["XBTXYZ"]) as src:
            with pytest.raises(SourceError, match="kraken: EQuery:Unknown asset pair"):
                await src.fetch()
        assert len(srv.requests) == 1


async def test_a_busy_service_is_retried_with_backoff() -> None:
    sleeps = Sleeps()
    busy = Reply(fixture("kraken_busy.json"))
    async with FixtureServer() as srv:
        srv.route(PATH, busy, busy, Reply(fixture("kraken_ticker.json")))
        async with kraken.Kraken(base_url=srv.url, sleep=sleeps) as src:
            assert len(await src.fetch()) == 2
    assert sleeps.delays == [0.5, 1.0]


async def test_an_http_error_shows_the_error_array() -> None:
    async with FixtureServer() as srv:
        srv.route(PATH, Reply(b'{"error": ["EGeneral:Internal error"]}', status=500))
        async with kraken.Kraken(base_url=srv.url, sleep=Sleeps()) as src:
            with pytest.raises(SourceError, match="HTTP 500.*EGeneral:Internal error"):
                await src.fetch()

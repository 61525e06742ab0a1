"""ECB eurofxref-daily.xml: parser, CAD crosses, and fetcher over a real HTTP server."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ratehubd.adapters.feeds import ecb
from ratehubd.engine.pairs import Pair
from ratehubd.errors import SourceError
from tests.fixtures.sources import fixture
from tests.fixtures.sources.server import FixtureServer, Reply

PATH = "/stats/eurofxref/eurofxref-daily.xml"


def test_parse_reads_the_namespaced_cubes_as_eur_quotes() -> None:
    quotes = {q.pair: q for q in ecb.parse(fixture("ecb_daily.xml"))}
    assert set(quotes) == {Pair("EUR", "CAD"), Pair("EUR", "USD"), Pair("EUR", "GBP")}
    assert quotes[Pair("EUR", "GBP")].mid == Decimal("0.83015")
    q = quotes[Pair("EUR", "CAD")]
    assert (q.mid, q.kind, q.source) == (Decimal("1.4876"), "reference", "ecb")
    assert q.timestamp == datetime(2025, 1, 3, 15, 0, tzinfo=UTC)  # 16:00 CET


def test_all_currencies_when_asked() -> None:
    codes = {q.pair.quote for q in ecb.parse(fixture("ecb_daily.xml"), currencies=None)}
    assert codes == {"USD", "JPY", "GBP", "CHF", "CAD"}


def test_cad_crosses_go_through_eur() -> None:
    crosses = {str(c.pair): c for c in ecb.cad_crosses(ecb.parse(fixture("ecb_daily.xml")))}
    assert crosses["EUR/CAD"].mid == Decimal("1.4876")
    usd = crosses["USD/CAD"]
    assert abs(usd.mid - Decimal("1.4876") / Decimal("1.0321")) < Decimal("1e-26")
    assert usd.inverted == (True, False)
    assert str(usd.mid).startswith("1.44133320414688499176436")  # full precision, unrounded
    assert abs(crosses["GBP/CAD"].mid - Decimal("1.4876") / Decimal("0.83015")) < Decimal("1e-26")


def test_a_missing_currency_is_tolerated() -> None:
    quotes = ecb.parse(fixture("ecb_no_gbp.xml"))
    assert {q.pair.quote for q in quotes} == {"USD", "CAD"}
    assert {str(c.pair) for c in ecb.cad_crosses(quotes)} == {"EUR/CAD", "USD/CAD"}
    assert ecb.cad_crosses([q for q in quotes if q.pair.quote != "CAD"]) == []


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"<not xml", "not valid XML"),
        (b"<Envelope/>", "no dated <Cube"),
        (fixture("ecb_daily.xml").replace(b"rate='1.4876'", b"rate='n/a'"), "rate of CAD"),
    ],
)
def test_malformed_answers_are_clear_errors(payload: bytes, message: str) -> None:
    with pytest.raises(SourceError, match=message):
        ecb.parse(payload)


def test_none_of_the_wanted_currencies_is_an_error() -> None:
    with pytest.raises(SourceError, match="no rate for SEK on 2025-01-03"):
        ecb.parse(fixture("ecb_daily.xml"), currencies={"SEK"})


async def test_fetch_over_http() -> None:
    async with FixtureServer() as srv:
        srv.route(PATH, Reply(fixture("ecb_daily.xml"), content_type="text/xml"))
        async with ecb.Ecb(base_url=srv.url + "/stats/eurofxref") as src:
            quotes = await src.fetch()
    assert len(quotes) == 3


async def test_an_html_error_page_is_reported_and_retried() -> None:
    page = Reply(fixture("ecb_error.html"), status=503, content_type="text/html")
    async with FixtureServer() as srv:
        srv.route(PATH, page)
        async with ecb.Ecb(base_url=srv.url + "/stats/eurofxref", sleep=_no_wait) as src:
            with pytest.raises(SourceError, match="HTTP 503.*Service Unavailable.*3 attempts"):
                await src.fetch()
        assert len(srv.hits(PATH)) == 3


async def _no_wait(delay: float) -> None:
    pass

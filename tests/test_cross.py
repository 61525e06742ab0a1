"""Cross rates through a pivot, with bid and ask combined correctly, in Decimal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratehubd.engine.cross import Quote, cross, find_route
from ratehubd.engine.pairs import Pair

T0 = datetime(2025, 1, 3, 15, 0, tzinfo=UTC)
D = Decimal


def q(pair: str, mid: str, bid: str | None = None, ask: str | None = None, **kw: object) -> Quote:
    base, quote = pair.split("/")
    return Quote(
        pair=Pair(base, quote),
        mid=D(mid),
        bid=D(bid) if bid else None,
        ask=D(ask) if ask else None,
        source=str(kw.get("source", "s")),
        timestamp=kw.get("timestamp", T0),  # type: ignore[arg-type]
        kind="exchange",
    )


def test_a_direct_leg_is_itself() -> None:
    c = cross(Pair("BTC", "CAD"), [q("BTC/CAD", "100", "99", "101")])
    assert (c.bid, c.mid, c.ask, c.inverted) == (D(99), D(100), D(101), (False,))


def test_through_a_pivot_bid_times_bid_and_ask_times_ask() -> None:
    c = cross(
        Pair("BTC", "CAD"), [q("BTC/USD", "100", "99", "101"), q("USD/CAD", "1.35", "1.34", "1.36")]
    )
    assert c.bid == D("99") * D("1.34")
    assert c.ask == D("101") * D("1.36")
    assert c.mid == D("135.00")
    assert c.describe() == (
        "BTC/CAD = BTC/USD 100 (bid 99 ask 101) from s x USD/CAD 1.35 (bid 1.34 ask 1.36) from s"
    )


def test_an_inverted_leg_swaps_sides() -> None:
    # USD/CAD from EUR legs: 1/(EUR/USD) x EUR/CAD; bid(USD/EUR) = 1/ask(EUR/USD)
    eurusd = q("EUR/USD", "1.0320", "1.0310", "1.0330")
    eurcad = q("EUR/CAD", "1.4876", "1.4870", "1.4882")
    c = cross(Pair("USD", "CAD"), [eurusd, eurcad])
    assert c.inverted == (True, False)
    assert c.bid is not None and c.ask is not None
    assert abs(c.bid - D("1.4870") / D("1.0330")) < D("1e-26")
    assert abs(c.ask - D("1.4882") / D("1.0310")) < D("1e-26")
    assert c.bid < c.mid < c.ask
    assert "1/(EUR/USD 1.0320" in c.describe()


def test_a_wholly_inverted_pair() -> None:
    c = cross(Pair("CAD", "USD"), [q("USD/CAD", "1.25", "1.24", "1.26")])
    assert c.inverted == (True,)
    assert c.mid == D("0.8")
    assert c.bid is not None and abs(c.bid - D(1) / D("1.26")) < D("1e-27")
    assert c.ask is not None and abs(c.ask - D(1) / D("1.24")) < D("1e-27")


def test_full_precision_is_kept() -> None:
    c = cross(Pair("USD", "CAD"), [q("EUR/USD", "1.0321"), q("EUR/CAD", "1.4876")])
    assert len(c.mid.as_tuple().digits) >= 45  # no rounding before the pricing step


def test_mid_only_legs_count_as_a_point() -> None:
    c = cross(Pair("BTC", "CAD"), [q("BTC/USD", "100", "99", "101"), q("USD/CAD", "1.5")])
    assert (c.bid, c.ask) == (D("148.5"), D("151.5"))
    c2 = cross(Pair("BTC", "CAD"), [q("BTC/USD", "100"), q("USD/CAD", "1.5")])
    assert (c2.bid, c2.ask, c2.mid) == (None, None, D("150.0"))


def test_timestamp_is_the_oldest_leg_and_sources_are_listed_once() -> None:
    old = T0 - timedelta(hours=1)
    c = cross(
        Pair("BTC", "CAD"),
        [q("BTC/USD", "1", source="coinbase"), q("USD/CAD", "1", source="oxr", timestamp=old)],
    )
    assert c.timestamp == old and c.sources == ("coinbase", "oxr")


@pytest.mark.parametrize(
    ("legs", "message"),
    [
        ([], "no legs"),
        (["EUR/USD"], "do not lead from BTC to CAD"),
        (["BTC/USD", "EUR/CAD"], "EUR/CAD does not continue from USD"),
        (["BTC/USD", "USD/EUR"], "do not lead from BTC to CAD"),
    ],
)
def test_legs_that_do_not_chain_are_a_bug(legs: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        cross(Pair("BTC", "CAD"), [q(p, "1") for p in legs])


@pytest.mark.parametrize(
    ("target", "available", "route"),
    [
        ("USD/CAD", {"USD/CAD", "EUR/CAD"}, ("USD/CAD",)),
        ("CAD/USD", {"USD/CAD"}, ("USD/CAD",)),
        ("USD/CAD", {"EUR/USD", "EUR/CAD", "EUR/GBP"}, ("EUR/USD", "EUR/CAD")),
        ("EUR/CAD", {"USD/CAD", "USD/EUR"}, ("USD/EUR", "USD/CAD")),
        ("BTC/CAD", {"BTC/USD"}, None),
    ],
)
def test_find_route(target: str, available: set[str], route: tuple[str, ...] | None) -> None:
    def pair(s: str) -> Pair:
        base, quote = s.split("/")
        return Pair(base, quote)

    found = find_route(pair(target), {pair(p) for p in available})
    assert (tuple(str(p) for p in found) if found else None) == route


def test_the_first_pivot_that_works_wins() -> None:
    have = {Pair("GBP", "USD"), Pair("USD", "CAD"), Pair("EUR", "GBP"), Pair("EUR", "CAD")}
    assert find_route(Pair("GBP", "CAD"), have, ("EUR", "USD")) == (
        Pair("EUR", "GBP"),
        Pair("EUR", "CAD"),
    )
    assert find_route(Pair("GBP", "CAD"), have, ("USD",)) == (
        Pair("GBP", "USD"),
        Pair("USD", "CAD"),
    )


# -- property: bid <= mid <= ask survives any crossing ----------------------------------------

prices = st.decimals(min_value=D("0.0001"), max_value=D("1000000"), places=6, allow_nan=False)
spreads = st.decimals(min_value=D(0), max_value=D("0.2"), places=6)


@st.composite
def leg(draw: st.DrawFn, base: str, quote: str) -> Quote:
    """A leg between ``base`` and ``quote`` as some source publishes it: either way round,
    with or without a bid and ask around its mid."""
    mid, spread = draw(prices), draw(spreads)
    sided = draw(st.booleans())
    pair = Pair(base, quote) if draw(st.booleans()) else Pair(quote, base)
    return Quote(
        pair=pair,
        mid=mid,
        bid=mid * (1 - spread / 2) if sided else None,
        ask=mid * (1 + spread / 2) if sided else None,
        source="s",
        timestamp=T0,
        kind="exchange",
    )


@given(first=leg("BTC", "USD"), second=leg("USD", "CAD"))
def test_cross_bid_never_exceeds_cross_ask(first: Quote, second: Quote) -> None:
    c = cross(Pair("BTC", "CAD"), [first, second])
    assert c.mid > 0
    if c.bid is not None and c.ask is not None:
        assert c.bid <= c.mid <= c.ask
    inverse = cross(Pair("CAD", "BTC"), [second, first])
    if inverse.bid is not None and inverse.ask is not None:
        assert inverse.bid <= inverse.mid <= inverse.ask

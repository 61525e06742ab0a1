"""Pairs and Decimal money: parsing, outward rounding, quotes around a mid. No I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ratehubd.engine.money import mid_of, round_down, round_up, spread_of, to_decimal
from ratehubd.engine.pairs import Pair, match_symbol, parse_pair, resolve_pair
from ratehubd.engine.pricing import INVARIANT, check_rates, quote_from_mid
from ratehubd.errors import InvalidRates, InvalidRequest, UnknownPair

D = Decimal
USDCAD = Pair("USD", "CAD")
KNOWN = frozenset({USDCAD, Pair("EUR", "CAD"), Pair("BTC", "CAD"), Pair("USD", "JPY")})


# -- pairs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["USD/CAD", "USDCAD", "usd-cad", "usd/cad", "UsdCad", "usd_cad", "  USD/CAD  "]
)
def test_every_accepted_spelling_emits_usd_cad(text: str) -> None:
    pair = parse_pair(text)
    assert pair == USDCAD
    assert str(pair) == "USD/CAD"
    assert pair.compact == "USDCAD"


def test_longer_codes_need_a_separator() -> None:
    assert str(parse_pair("usdt-cad")) == "USDT/CAD"
    with pytest.raises(UnknownPair):
        parse_pair("USDTCAD")


@pytest.mark.parametrize("text", ["", "USD", "USDCADX", "US/CAD", "USD/C4D", "USD//CAD", "1.37"])
def test_unparseable_pair_says_which_forms_are_accepted(text: str) -> None:
    with pytest.raises(UnknownPair) as err:
        parse_pair(text)
    assert "USD/CAD, USDCAD or usd-cad" in err.value.message
    assert err.value.status == 400
    assert isinstance(err.value, InvalidRequest)


def test_same_currency_on_both_sides_is_rejected() -> None:
    with pytest.raises(UnknownPair, match="same currency"):
        parse_pair("cad/CAD")


def test_resolve_pair_lists_the_configured_pairs() -> None:
    assert resolve_pair("usdcad", KNOWN) == USDCAD
    with pytest.raises(UnknownPair) as err:
        resolve_pair("GBP/CAD", KNOWN)
    assert "GBP/CAD" in err.value.message
    assert "BTC/CAD, EUR/CAD, USD/CAD, USD/JPY" in err.value.message


def test_inverse_and_order() -> None:
    assert USDCAD.inverse() == Pair("CAD", "USD")
    assert sorted([Pair("USD", "CAD"), Pair("BTC", "CAD")])[0] == Pair("BTC", "CAD")


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [
        ("USD/CAD", {USDCAD}),
        ("USDCAD", {USDCAD}),
        ("usd-cad", {USDCAD}),
        ("USD", {USDCAD, Pair("USD", "JPY")}),
        ("eur", {Pair("EUR", "CAD")}),
        ("CAD", set()),  # never a base here
        ("BTCUSD", set()),  # a valid pair that is not configured
        ("garbage!", set()),
    ],
)
def test_match_symbol(symbol: str, expected: set[Pair]) -> None:
    assert match_symbol(symbol, KNOWN) == expected


# -- decimals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1.37, D("1.37")), ("1.33", D("1.33")), (2, D(2)), (D("0.03"), D("0.03")), (0.1, D("0.1"))],
)
def test_to_decimal_keeps_what_the_user_typed(value: object, expected: Decimal) -> None:
    got = to_decimal(value, "buyRate")
    assert got == expected
    assert str(got) == str(expected)


@pytest.mark.parametrize("value", [True, None, "abc", float("nan"), float("inf"), "NaN", [1]])
def test_to_decimal_rejects_non_numbers_naming_the_field(value: object) -> None:
    with pytest.raises(InvalidRates, match="buyRate must be a"):
        to_decimal(value, "buyRate")


@pytest.mark.parametrize(
    ("value", "tick", "up", "down"),
    [
        (D("1.36505"), D("0.0001"), D("1.3651"), D("1.3650")),
        (D("1.3650"), D("0.0001"), D("1.3650"), D("1.3650")),  # on a tick: unchanged
        (D("1.36500001"), D("0.0001"), D("1.3651"), D("1.3650")),
        (D("135123.456"), D("0.01"), D("135123.46"), D("135123.45")),
        (D("135123.451"), D("0.05"), D("135123.50"), D("135123.45")),
        (D("7"), D("0.25"), D("7"), D("7")),
        (D("7.01"), D("0.25"), D("7.25"), D("7.00")),
    ],
)
def test_rounding_to_tick(value: Decimal, tick: Decimal, up: Decimal, down: Decimal) -> None:
    assert round_up(value, tick) == up
    assert round_down(value, tick) == down
    assert round_down(value, tick) <= value <= round_up(value, tick)


def test_mid_and_spread_of_the_guide_example() -> None:
    mid = mid_of(D("1.37"), D("1.33"))
    assert mid == D("1.35")
    assert spread_of(D("1.37"), D("1.33"), mid) == D("0.04") / D("1.35")


# -- quote_from_mid -------------------------------------------------------------------------


def test_quote_from_mid_default_spread() -> None:
    buy, sell = quote_from_mid(D("1.35"), D("0.02"), D("0.0001"))
    assert (buy, sell) == (D("1.3635"), D("1.3365"))
    assert spread_of(buy, sell, D("1.35")) == D("0.02")


def test_quote_rounds_outward_so_the_spread_never_narrows() -> None:
    mid, spread, tick = D("1.35437"), D("0.02"), D("0.0001")
    buy, sell = quote_from_mid(mid, spread, tick)
    exact_half = mid * spread / 2
    assert buy == D("1.3680")  # 1.3679137 rounded up
    assert sell == D("1.3408")  # 1.3408263 rounded down
    assert buy >= mid + exact_half
    assert sell <= mid - exact_half
    assert spread_of(buy, sell, mid) >= spread
    # ... and by less than one tick on each side.
    assert buy - (mid + exact_half) < tick
    assert (mid - exact_half) - sell < tick


def test_quote_is_on_the_tick_and_keeps_the_invariant() -> None:
    for mid in (D("1.35"), D("1.350049"), D("0.7412"), D("135000.005"), D("4500.1")):
        tick = D("0.01") if mid > 100 else D("0.0001")
        buy, sell = quote_from_mid(mid, D("0.001"), tick)
        assert 0 < sell < mid < buy
        assert buy % tick == 0 and sell % tick == 0


def test_a_spread_thinner_than_a_tick_still_keeps_buy_above_sell() -> None:
    buy, sell = quote_from_mid(D("1.35"), D("0.0000001"), D("0.0001"))
    assert (buy, sell) == (D("1.3501"), D("1.3499"))


def test_quote_from_mid_refuses_a_spread_that_would_make_sell_non_positive() -> None:
    with pytest.raises(InvalidRates, match="sellRate would be <= 0"):
        quote_from_mid(D("0.0001"), D("1.9999"), D("0.0001"))


# -- check_rates ----------------------------------------------------------------------------


def test_check_rates_accepts_the_guide_example() -> None:
    check_rates(D("1.37"), D("1.33"))


@pytest.mark.parametrize(("buy", "sell"), [("1.33", "1.37"), ("1.35", "1.35")])
def test_inverted_rates_are_rejected_stating_the_convention(buy: str, sell: str) -> None:
    with pytest.raises(InvalidRates) as err:
        check_rates(D(buy), D(sell))
    assert INVARIANT in err.value.message
    assert "sellRate < mid < buyRate" in err.value.message
    assert err.value.details == {"buyRate": buy, "sellRate": sell}


@pytest.mark.parametrize(("buy", "sell"), [("0", "1.33"), ("1.37", "0"), ("-1.37", "-1.40")])
def test_zero_or_negative_rates_are_rejected(buy: str, sell: str) -> None:
    with pytest.raises(InvalidRates, match="must be positive"):
        check_rates(D(buy), D(sell))

"""The TUI's pure parts, without a terminal: the board (rows, change, history, filter),
the cells, the dialog checks (numbers, inverted rates, durations, pairs) and the event
log lines."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ratectl.tui import events, forms
from ratectl.tui.board import COLUMN_KEYS, Board, cells
from tests.tui_support import FROZEN, NOW_MS, rate

KNOWN = {"USD/CAD", "EUR/CAD", "BTC/CAD"}
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


# -- board --------------------------------------------------------------------------------


def test_apply_reports_new_and_changed_pairs_only() -> None:
    board = Board()
    assert board.apply(FROZEN) == {"USD/CAD", "EUR/CAD", "GBP/CAD", "BTC/CAD", "ETH/CAD"}
    assert board.apply(FROZEN) == set()  # the same values again: nothing to redraw
    moved = rate("EUR/CAD", 1.5046, 1.4747, 1.48967)
    assert board.apply([moved]) == {"EUR/CAD"}
    row = board.rows["EUR/CAD"]
    assert (row.buy, row.sell, row.mid) == (
        Decimal("1.5046"),
        Decimal("1.4747"),
        Decimal("1.48967"),
    )
    assert row.direction == 1 and list(row.history) == [1.48957, 1.48967]


def test_change_is_relative_to_the_first_mid_in_decimal() -> None:
    board = Board()
    board.apply([rate("USD/CAD", 1.37, 1.33, 1.35)])
    board.apply([rate("USD/CAD", 1.3565, 1.3165, 1.3365)])
    row = board.rows["USD/CAD"]
    assert row.change == Decimal("-0.01")  # exact: (1.3365 - 1.35) / 1.35
    assert row.direction == -1
    assert cells(row, NOW_MS)[COLUMN_KEYS.index("change")].plain == "▼-1.00%"


def test_the_change_arrow_agrees_with_its_sign_and_the_mid_shows_the_last_tick() -> None:
    board = Board()
    board.apply([rate("USD/CAD", 1.37, 1.33, 1.35)])
    board.apply([rate("USD/CAD", 1.3565, 1.3165, 1.3365)])  # down 1 %
    board.apply([rate("USD/CAD", 1.3566, 1.3166, 1.3366)])  # last tick up, still down overall
    row = board.rows["USD/CAD"]
    change = cells(row, NOW_MS)[COLUMN_KEYS.index("change")]
    mid = cells(row, NOW_MS)[COLUMN_KEYS.index("mid")]
    assert change.plain == "▼-0.99%" and str(change.style) == "red"
    assert str(mid.style) == "green"  # the last tick went up
    board.apply([rate("USD/CAD", 1.3965, 1.3565, 1.3765)])  # up overall
    change = cells(row, NOW_MS)[COLUMN_KEYS.index("change")]
    assert change.plain == "▲+1.96%" and str(change.style) == "green"


def test_history_is_bounded_and_records_mid_moves_only() -> None:
    board = Board(history=3)
    for i in range(6):
        board.apply([rate("USD/CAD", 1.37, 1.33, 1.35 + i / 10000)])
    board.apply([rate("USD/CAD", 1.37, 1.33, 1.3505, age_s=0)])  # same mid, newer market data
    assert list(board.rows["USD/CAD"].history) == [1.3503, 1.3504, 1.3505]


def test_unreadable_rates_are_counted_not_shown() -> None:
    board = Board()
    bad = [{"currencyPair": "USD/CAD"}, {"rate": "x"}, rate("EUR/CAD", 1.5, 1.4, "abc")]  # type: ignore[arg-type]
    assert board.apply(bad) == set() and board.ignored == 3 and not board.rows


def test_filter_matches_with_or_without_the_slash() -> None:
    board = Board()
    board.apply(FROZEN)
    assert board.visible() == ["BTC/CAD", "ETH/CAD", "EUR/CAD", "GBP/CAD", "USD/CAD"]
    assert board.visible("usd") == ["USD/CAD"]
    assert board.visible("eurcad") == ["EUR/CAD"]
    assert board.visible("usd-cad") == ["USD/CAD"]
    assert board.visible("/cad") == board.visible()
    assert board.visible("xyz") == []


def test_cells_on_the_tick_with_markers() -> None:
    board = Board()
    board.apply(FROZEN)
    usd = [c.plain for c in cells(board.rows["USD/CAD"], NOW_MS)]
    assert usd == ["USD/CAD", "1.3700", "1.3300", "1.35000", " +0.00%", "manual", "store", "2s"]
    eth = [c.plain for c in cells(board.rows["ETH/CAD"], NOW_MS)]
    assert eth[1:4] == ["4549.14", "4459.05", "4504.097"] and eth[6] == "all"
    gbp = cells(board.rows["GBP/CAD"], NOW_MS)
    assert gbp[COLUMN_KEYS.index("age")].plain == "2m STALE"
    assert cells(board.rows["GBP/CAD"], NOW_MS + 3_600_000)[-1].plain == "1h STALE"


# -- dialogs -----------------------------------------------------------------------------------


def check_override(**values: str) -> tuple[dict[str, str], dict[str, object] | None]:
    return forms.override(values, known=KNOWN, store="s1", now=NOW)


def test_override_body_for_fixed_rates() -> None:
    errors, body = check_override(
        pair="usdcad", buy="1.37", sell="1.33", valid_for="1h", reason=" High demand "
    )
    assert errors == {}
    assert body == {
        "currencyPair": "USD/CAD",
        "buyRate": 1.37,
        "sellRate": 1.33,
        "storeId": "s1",
        "validUntil": "2026-01-05T13:00:00.000Z",
        "reason": "High demand",
    }


def test_override_spread_alone() -> None:
    errors, body = check_override(pair="EUR/CAD", spread="3%")
    assert errors == {} and body == {"currencyPair": "EUR/CAD", "spread": 0.03, "storeId": "s1"}


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        ({"buy": "1.30", "sell": "1.33"}, "buy", "buy 1.30 must be greater than sell 1.33"),
        ({"buy": "1.33", "sell": "1.33"}, "buy", "buy is what a customer pays"),
        ({"buy": "abc", "sell": "1.33"}, "buy", "buy 'abc' is not a number; write it like 1.37"),
        ({"buy": "1.37", "sell": "-1"}, "sell", "sell '-1' must be a number greater than 0"),
        ({"buy": "1.37"}, "sell", "give sell too"),
        ({"sell": "1.33"}, "buy", "give buy too"),
        ({}, "buy", "give buy and sell (fixed rates), or only a spread"),
        ({"spread": "lots"}, "spread", "spread 'lots' is not a number"),
        ({"spread": "150%"}, "spread", "is 150% of the mid; write 3% or 0.03"),
        ({"buy": "1.37", "sell": "1.33", "valid_for": "soon"}, "valid_for", "not a duration"),
    ],
)
def test_override_errors_name_the_field_and_the_fix(
    values: dict[str, str], field: str, message: str
) -> None:
    errors, body = check_override(pair="USD/CAD", **values)
    assert body is None and message in errors[field]


def test_override_pair_must_be_one_the_daemon_prices() -> None:
    errors, _ = check_override(pair="XAU/CAD", buy="1.37", sell="1.33")
    assert errors == {"pair": "XAU/CAD is not priced here; pick one of BTC/CAD, EUR/CAD, USD/CAD"}
    errors, _ = check_override(pair="dollars", buy="1.37", sell="1.33")
    assert "not a currency pair" in errors["pair"]
    errors, _ = check_override(pair="", buy="1.37", sell="1.33")
    assert errors["pair"] == "which pair? e.g. USD/CAD"


def test_lock_form() -> None:
    errors, body = forms.lock(
        {"pair": "BTC/CAD", "ttl": "90s", "reference": "TX1"}, known=KNOWN, store="s1"
    )
    assert errors == {}
    assert body == {
        "currencyPair": "BTC/CAD",
        "ttlSeconds": 90,
        "storeId": "s1",
        "reference": "TX1",
    }
    errors, body = forms.lock({"pair": "BTC/CAD", "ttl": ""}, known=KNOWN, store=None)
    assert body == {"currencyPair": "BTC/CAD", "ttlSeconds": 300}  # the default: 5m
    errors, body = forms.lock({"pair": "nope", "ttl": "later"}, known=KNOWN, store="s1")
    assert body is None and set(errors) == {"pair", "ttl"}
    assert errors["ttl"] == "TTL 'later' is not a duration; write it like 90s, 5m or 300 (seconds)"


def test_store_form() -> None:
    assert forms.store({"store": " store123 "}) == ({}, {"storeId": "store123"})
    assert forms.store({"store": ""}) == ({}, {"storeId": None})
    errors, body = forms.store({"store": "two words"})
    assert body is None and "1-64 letters, digits or _.:@- characters" in errors["store"]


# -- event log lines ------------------------------------------------------------------------------


def test_event_lines() -> None:
    def line(type_: str, **data: object) -> str:
        return events.describe({"type": type_, "data": data, "timestamp": NOW_MS}, UTC).plain

    assert (
        line(
            "rate_override_set",
            currencyPair="USD/CAD",
            storeId="s1",
            buyRate=1.37,
            sellRate=1.33,
            reason="High demand",
            author="env",
        )
        == "12:00:00  override set      USD/CAD @s1  buy 1.37 sell 1.33  'High demand'  by env"
    )
    assert line("rate_override_cleared", currencyPair="EUR/CAD", storeId=None) == (
        "12:00:00  override cleared  EUR/CAD"
    )
    assert (
        line(
            "rate_lock_created",
            currencyPair="USD/CAD",
            storeId="s1",
            lockId="L1",
            buyRate=1.37,
            sellRate=1.33,
            ttlSeconds=300,
            reference="TX1",
        )
        == "12:00:00  lock created      USD/CAD @s1  L1  buy 1.37 sell 1.33  for 300s  'TX1'"
    )
    assert line("rate_lock_expired", currencyPair="USD/CAD", storeId="s1", lockId="L1") == (
        "12:00:00  lock expired      USD/CAD @s1  L1"
    )
    breach = line(
        "rate_threshold_breach", currencyPair="GBP/CAD", kind="stale", state="begun", detail="old"
    )
    assert breach == "12:00:00  BREACH            GBP/CAD  stale: old"
    cleared = line("rate_threshold_breach", currencyPair="GBP/CAD", kind="stale", state="cleared")
    assert cleared.startswith("12:00:00  breach cleared    GBP/CAD")
    assert events.notice(NOW_MS, UTC, "resumed").plain == "12:00:00  connection        resumed"
    assert events.describe({"type": "x", "data": None}, UTC).plain.startswith("--:--:--  x")

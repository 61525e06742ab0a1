"""``ratectl tui`` with Pilot and frozen data (no daemon): keys, the table updated in place,
filter, pause, store switch, read-only, help, the dialogs' checks shown in place, the
status bar and event log, and text snapshots of whole screens."""

from __future__ import annotations

from typing import Any

from textual.widgets import Input

from ratectl.tui.app import RatehubApp
from ratectl.tui.event_log import EventLog
from ratectl.tui.filter_bar import FilterBar
from ratectl.tui.form_screen import FormScreen
from ratectl.tui.help_screen import HelpScreen
from ratectl.tui.hub_link import HubLink
from ratectl.tui.lock_screen import LockScreen
from ratectl.tui.override_screen import OverrideScreen
from ratectl.tui.pair_history import PairHistory
from ratectl.tui.rates_table import RatesTable
from ratectl.tui.status_bar import StatusBar
from ratectl.tui.store_screen import StoreScreen
from tests.tui_support import FROZEN, NOW_MS, assert_snapshot, feed, frozen_options, rate

SIZE = (80, 24)


def app_(**kw: Any) -> RatehubApp:
    return RatehubApp(frozen_options(**kw))


def rows(app: RatehubApp) -> list[list[str]]:
    return app.query_one(RatesTable).rows_text()


def footer_keys(app: RatehubApp) -> set[str]:
    return {b.binding.action for b in app.screen.active_bindings.values() if b.binding.show}


async def type_into(pilot: Any, field: str, text: str) -> None:
    screen = pilot.app.screen
    field_input = screen.query_one(f"#{field}", Input)
    field_input.value = text
    await pilot.pause()


# -- the table ----------------------------------------------------------------------------


async def test_frozen_dashboard_snapshot() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        app.query_one(StatusBar).state = "connected"
        app.query_one(StatusBar).latency_ms = 3
        app.query_one(StatusBar).last_tick_ms = NOW_MS - 400
        app.post_message(
            HubLink.Event(
                "s1",
                {
                    "type": "rate_override_set",
                    "timestamp": NOW_MS,
                    "data": {"currencyPair": "USD/CAD", "storeId": "s1", "buyRate": 1.37,
                             "sellRate": 1.33, "reason": "High demand", "author": "env"},
                },
            )
        )  # fmt: skip
        await pilot.pause()
        assert_snapshot(app, "dashboard")


async def test_updates_touch_only_the_cells_that_changed() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        table = app.query_one(RatesTable)
        before = table.cell_updates
        await feed(pilot, [rate("EUR/CAD", 1.5047, 1.4748, 1.48977)])
        # buy, sell, mid and change moved; pair, source, override marker and age did not
        assert table.cell_updates - before == 4
        eur = rows(app)[2]
        assert eur[:5] == ["EUR/CAD", "1.5047", "1.4748", "1.48977", "▲+0.01%"]
        before = table.cell_updates
        await feed(pilot, FROZEN[1:2] * 3)  # the same values, three times in one batch
        assert rows(app)[2][1] == "1.5045" and table.cell_updates - before == 4


async def test_many_messages_between_frames_apply_as_one_batch() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        flushes = app.flushes
        for i in range(1, 11):  # ten frames before the next batch
            app.post_message(
                HubLink.Rates("s1", [rate("USD/CAD", 1.37, 1.33, 1.35 + i / 10000)], False)
            )
        await pilot.pause()
        app.flush()
        assert app.flushes == flushes + 1
        assert rows(app)[4][3] == "1.35100"  # the latest wins
        assert list(app.board.rows["USD/CAD"].history)[-1] == 1.351


async def test_frames_from_a_store_left_behind_are_ignored() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN, store="other")
        await feed(pilot, FROZEN[:1], store=None)
        assert rows(app) == []


async def test_selecting_a_pair_shows_its_history() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        history = app.query_one(PairHistory)
        assert history.pair == "BTC/CAD"  # the first row
        await pilot.press("down", "down", "down", "down")
        assert history.pair == "USD/CAD"
        await feed(pilot, [rate("USD/CAD", 1.3701, 1.3301, 1.3501, override="s1")])
        assert history.mids == (1.35, 1.3501)
        assert history.title().plain == "USD/CAD  last 1.3501  low 1.35  high 1.3501  2 ticks"


async def test_keys_and_clicks_move_the_selection() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        await pilot.press("end")
        assert app.selected == "USD/CAD"
        await pilot.press("home", "down")
        assert app.selected == "ETH/CAD"
        await pilot.click(RatesTable, offset=(2, 3))  # the third row, under the header
        assert app.selected == "EUR/CAD"
        await pilot.press("pagedown")
        assert app.selected == "USD/CAD"


async def test_age_ticks_without_updates() -> None:
    clock = {"now": NOW_MS / 1000}
    app = app_(clock=lambda: clock["now"])
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        assert rows(app)[2][7] == "2s"  # EUR/CAD
        clock["now"] += 60
        app.tick()
        await pilot.pause()
        assert rows(app)[2][7] == "1m"


# -- keys -----------------------------------------------------------------------------------


async def test_filter_keeps_matching_pairs_and_escape_clears_it() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        await pilot.press("slash")
        bar = app.query_one(FilterBar)
        assert bar.has_focus and bar.has_class("-open")
        await pilot.press(*"usd")
        assert [r[0] for r in rows(app)] == ["USD/CAD"]
        assert "filter: usd" in app.query_one(StatusBar).render().plain
        await pilot.press("enter")  # keeps the filter, back to the table
        assert not bar.has_class("-open") and app.query_one(RatesTable).has_focus
        await feed(pilot, [rate("EUR/CAD", 1.6, 1.4, 1.5)])
        assert [r[0] for r in rows(app)] == ["USD/CAD"]
        await pilot.press("slash", "escape")
        assert len(rows(app)) == 5 and app.filter_text == ""
        assert rows(app)[2][1] == "1.6000"


async def test_pause_holds_the_table_and_resume_applies_the_latest() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        await pilot.press("p")
        assert app.paused and "PAUSED" in app.query_one(StatusBar).render().plain
        await feed(pilot, [rate("EUR/CAD", 1.6, 1.4, 1.5)])
        await feed(pilot, [rate("EUR/CAD", 1.61, 1.41, 1.51)])
        assert rows(app)[2][1] == "1.5045"
        app.post_message(HubLink.Event("s1", {"type": "rate_lock_created", "data": {}}))
        await pilot.pause()
        assert "lock created" in app.query_one(EventLog).lines_written[-1]  # events keep coming
        await pilot.press("p")
        await pilot.pause()
        assert not app.paused and rows(app)[2][1] == "1.6100"


async def test_store_switcher_resets_the_board() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        await pilot.press("s")
        assert isinstance(app.screen, StoreScreen)
        await type_into(pilot, "store", "bad store")
        await pilot.press("enter")
        assert isinstance(app.screen, StoreScreen)
        assert "1-64 letters" in app.screen.errors_shown()["store"]
        await type_into(pilot, "store", "store9")
        await pilot.press("enter")
        assert not isinstance(app.screen, StoreScreen)
        assert app.store == "store9" and app.query_one(HubLink).store == "store9"
        assert rows(app) == [] and "store: store9" in app.query_one(StatusBar).render().plain
        assert app.query_one(EventLog).lines_written[-1].endswith("showing store store9")
        await feed(pilot, FROZEN[:2], store="store9")
        assert len(rows(app)) == 2
        await pilot.press("s")
        await type_into(pilot, "store", "")
        await pilot.press("enter")
        assert app.store is None


async def test_help_lists_the_keys_and_closes() -> None:
    app = app_()
    async with app.run_test(size=(90, 30)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert_snapshot(app, "help")
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_footer_shows_the_keys() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert {"quit", "filter", "pause", "store", "override", "lock", "help"} <= footer_keys(app)


# -- read-only --------------------------------------------------------------------------------


async def test_read_only_hides_every_mutation() -> None:
    app = app_(read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        keys = footer_keys(app)
        assert "override" not in keys and "lock" not in keys and "filter" in keys
        await pilot.press("o")
        await pilot.press("l")
        assert not isinstance(app.screen, FormScreen)
        assert "READ-ONLY" in app.query_one(StatusBar).render().plain
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert [k for k, _ in app.screen.keys] == ["q", "/", "p", "s", "t", "?", "up/down"]
        await pilot.press("escape")
        assert_snapshot(app, "read_only")


async def test_a_forbidden_change_turns_this_store_read_only() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(FormScreen.Forbidden("key abc (read-only) may not change store 's1'"))
        await pilot.pause()
        assert app.read_only and "override" not in footer_keys(app)
        assert "read-only: key abc" in app.query_one(EventLog).lines_written[-1]
        app.store = "s2"  # another store may be writable
        await pilot.pause()
        assert not app.read_only and "override" in footer_keys(app)
        app.store = "s1"
        await pilot.pause()
        assert app.read_only


# -- dialogs: checks in place -----------------------------------------------------------------


async def test_override_dialog_shows_errors_in_place_and_stays_open() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        await pilot.press("down", "down", "down", "down", "o")  # on USD/CAD
        screen = app.screen
        assert isinstance(screen, OverrideScreen)
        assert screen.query_one("#pair", Input).value == "USD/CAD"
        await type_into(pilot, "buy", "1.30")
        await type_into(pilot, "sell", "1.33")
        await type_into(pilot, "valid_for", "soon")
        await pilot.press("ctrl+s")
        assert app.screen is screen
        errors = screen.errors_shown()
        assert set(errors) == {"buy", "valid_for"}
        assert errors["buy"].startswith("buy 1.30 must be greater than sell 1.33")
        assert screen.query_one("#buy", Input).has_class("-rejected")
        assert screen.query_one("#buy", Input).has_focus  # the first field to fix
        assert_snapshot(app, "override_errors")
        await type_into(pilot, "buy", "abc")
        await pilot.press("enter")
        assert screen.errors_shown()["buy"] == "buy 'abc' is not a number; write it like 1.37"
        await pilot.press("escape")
        assert not isinstance(app.screen, OverrideScreen)


async def test_lock_dialog_checks_the_ttl_and_the_pair() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        await pilot.press("l")
        screen = app.screen
        assert isinstance(screen, LockScreen)
        assert screen.query_one("#pair", Input).value == "BTC/CAD"
        assert screen.query_one("#ttl", Input).value == "5m"
        await type_into(pilot, "ttl", "forever")
        await type_into(pilot, "pair", "XAU/CAD")
        await pilot.press("enter")
        assert app.screen is screen
        assert set(screen.errors_shown()) == {"pair", "ttl"}
        assert screen.errors_shown()["pair"].startswith("XAU/CAD is not priced here")


async def test_a_dialog_is_for_the_highlighted_row_even_right_after_a_move() -> None:
    """The key that opens a dialog can overtake the table's PairSelected message."""
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, FROZEN)
        table = app.query_one(RatesTable)
        for action, kind in ((app.action_override, OverrideScreen), (app.action_lock, LockScreen)):
            before = table.selected
            table.action_cursor(1)  # no pause: the selection message is still queued
            assert table.selected != before
            action()
            await pilot.pause()
            assert isinstance(app.screen, kind)
            assert app.screen.query_one("#pair", Input).value == table.selected
            await pilot.press("escape")
        await pilot.press("down", "o")  # and as typed
        assert app.screen.query_one("#pair", Input).value == table.selected


async def test_lock_idempotency_key_follows_the_request() -> None:
    screen = LockScreen(pair="USD/CAD", store="s1", known=set(), hint="", submit=dict)
    body = {"currencyPair": "USD/CAD", "ttlSeconds": 300, "storeId": "s1"}
    first = screen.request(body)["idempotencyKey"]
    assert screen.request(dict(body))["idempotencyKey"] == first  # a resend: the same key
    assert screen.request({**body, "ttlSeconds": 60})["idempotencyKey"] != first
    other = LockScreen(pair="USD/CAD", store="s1", known=set(), hint="", submit=dict)
    assert other.request(body)["idempotencyKey"] != first  # another dialog: another lock


# -- status bar and event log -----------------------------------------------------------------


async def test_status_bar_follows_the_link() -> None:
    app = app_()
    async with app.run_test(size=(120, 24)) as pilot:
        bar = app.query_one(StatusBar)
        app.post_message(HubLink.Status("unreachable", "cannot reach the ratehubd hub"))
        await pilot.pause()
        text = bar.render().plain
        assert text.startswith("● unreachable  http://127.0.0.1:3000  store: s1  ping -  tick -")
        assert "cannot reach the ratehubd hub" in text
        app.post_message(HubLink.Status("connected"))
        app.post_message(HubLink.Latency(2.4))
        await feed(pilot, FROZEN)
        assert bar.render().plain.startswith(
            "● connected  http://127.0.0.1:3000  store: s1  ping 2 ms"
        )
        assert "tick 0.0s ago" in bar.render().plain


async def test_event_log_lines_for_events_and_notices() -> None:
    app = app_()
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(
            HubLink.Event("s1", {"type": "rate_threshold_breach", "timestamp": NOW_MS,
                                 "data": {"currencyPair": "GBP/CAD", "kind": "stale",
                                          "state": "begun", "detail": "no data for 120 s"}})
        )  # fmt: skip
        app.post_message(HubLink.Event("other", {"type": "rate_lock_created", "data": {}}))
        app.post_message(HubLink.Notice("the daemon is restarting; reconnecting in 0.2 s"))
        await pilot.pause()
        lines = app.query_one(EventLog).lines_written
        assert lines[-2] == "12:00:00  BREACH            GBP/CAD  stale: no data for 120 s"
        assert lines[-1].endswith(
            "connection        the daemon is restarting; reconnecting in 0.2 s"
        )
        assert not any("lock created" in line for line in lines)  # another store's event

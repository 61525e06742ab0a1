"""The TUI's Stores screen (``t``): every store's screen counts, stale ones first and red,
re-read live; Enter opens the store's terminals. With frozen answers for the screens'
layout (text snapshots), and against a real daemon with a terminal that acks and then
stops."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from textual.widgets import DataTable, Static

from ratectl.errors import Unreachable
from ratectl.tui.app import RatehubApp
from ratectl.tui.help_screen import HelpScreen
from ratectl.tui.options import TuiOptions
from ratectl.tui.stores_screen import StoresScreen, TerminalsScreen
from ratehubd.config import Config
from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY
from tests.test_terminal_events import rate_frame, url
from tests.tui_support import NOW_MS, assert_snapshot, frozen_options, screen_text, until


def store(sid: str, *, current: int = 0, stale: int = 0, unconfirmed: int = 0) -> dict[str, Any]:
    return {
        "storeId": sid,
        "terminals": current + stale + unconfirmed,
        "confirming": current + stale,
        "current": current,
        "stale": stale,
        "unconfirmed": unconfirmed,
    }


def terminal(session: int, state: str, *, node: str = "n1") -> dict[str, Any]:
    confirming = state != "unconfirmed"
    return {
        "sessionId": session,
        "clientType": "store_os" if confirming else "dashboard",
        "keyName": "env",
        "node": node,
        "remoteAddr": "127.0.0.1",
        "connectedAt": "2026-01-05T11:59:00.000Z",
        "lastSentSeq": 40,
        "ackSeq": 38 if confirming else None,
        "ackChecksum": "0badf00d" if confirming else None,
        "current": (state == "current") if confirming else None,
        "staleSinceMs": NOW_MS - 12_000 if state == "stale" else None,
        "state": state,
        "expectedChecksum": "c0ffee00",
        "acks": 7 if confirming else 0,
    }


class Answers:
    """The daemon's answers for the screens, changeable between reads (a failure raises)."""

    def __init__(self) -> None:
        self.stores: list[Any] = [
            store("s1", current=2, unconfirmed=1),
            store("s7", current=1, stale=1),
            store("s3", unconfirmed=2),
        ]
        self.terminals: dict[str, list[Any]] = {
            "s7": [terminal(3, "current"), terminal(9, "stale", node="n2")],
        }
        self.down = False
        self.asked: list[str] = []

    def read_stores(self) -> list[Any]:
        if self.down:
            raise Unreachable("daemon unreachable at http://127.0.0.1:3000")
        return self.stores

    def read_terminals(self, sid: str) -> list[Any]:
        self.asked.append(sid)
        return self.terminals.get(sid, [])


def app_with(answers: Answers, **kw: Any) -> RatehubApp:
    app = RatehubApp(frozen_options(poll_interval=0.05, **kw))
    app.api.stores = answers.read_stores  # type: ignore[method-assign]
    app.api.terminals = answers.read_terminals  # type: ignore[method-assign]
    return app


async def open_stores(pilot: Any) -> StoresScreen:
    """Press ``t`` and wait for the screen's first read."""
    await pilot.press("t")
    screen = pilot.app.screen
    assert isinstance(screen, StoresScreen)
    await until(pilot, lambda: screen.loads > 0)
    return screen


def table_keys(screen: Any) -> list[str | None]:
    table = screen.query_one(DataTable)
    return [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]


async def test_t_opens_the_stores_screen_stale_first_and_enter_opens_terminals() -> None:
    answers = Answers()
    app = app_with(answers)
    async with app.run_test(size=(80, 16)) as pilot:
        screen = await open_stores(pilot)
        await pilot.pause()
        assert table_keys(screen) == ["s7", "s1", "s3"]  # the stale store on top
        assert_snapshot(app, "stores")
        await pilot.press("enter")  # the cursor starts on the stale store
        terms = app.screen
        assert isinstance(terms, TerminalsScreen) and terms.store == "s7"
        await until(pilot, lambda: terms.loads > 0)
        await pilot.pause()
        assert table_keys(terms) == ["n2:9", "n1:3"]
        assert_snapshot(app, "terminals")
        await pilot.press("escape")
        assert app.screen is screen
        await pilot.press("escape")
        assert not isinstance(app.screen, StoresScreen)


async def test_the_key_is_in_the_footer_and_in_help() -> None:
    app = app_with(Answers())
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.pause()
        assert "Stores" in screen_text(app).splitlines()[-1]
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "Stores" in screen_text(app)
        await pilot.press("escape")
        await pilot.press("t")
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "Terminals" in footer and "Back" in footer
        assert "Override" not in footer and "Filter" not in footer  # the rates' keys are off
        await pilot.press("o")  # ... and do nothing here
        assert isinstance(app.screen, StoresScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        assert "Terminals" in text and "hub.confirm_timeout_ms" in text and "unconfirmed" in text


async def test_live_refresh_keeps_the_cursor_on_its_store() -> None:
    answers = Answers()
    app = app_with(answers)
    async with app.run_test(size=(80, 16)) as pilot:
        screen = await open_stores(pilot)
        await pilot.press("down", "down")  # s3, the third row
        answers.stores = [store("s1", stale=1), store("s3", unconfirmed=2), store("s9", current=1)]
        seen = screen.loads
        await until(pilot, lambda: screen.loads > seen + 1)
        assert table_keys(screen) == ["s1", "s3", "s9"]
        table = screen.query_one(DataTable)
        # still on s3, which moved up a row (a rebuilt table would put it on the first)
        assert table.cursor_row == 1 and table_keys(screen)[table.cursor_row] == "s3"


async def test_a_failed_read_keeps_the_rows_and_says_why() -> None:
    answers = Answers()
    app = app_with(answers)
    async with app.run_test(size=(80, 16)) as pilot:
        screen = await open_stores(pilot)
        answers.down = True
        seen = screen.loads
        await until(pilot, lambda: screen.loads > seen)
        await pilot.pause()
        problem = screen.query_one("#problem", Static)
        assert problem.display
        assert "unreachable" in screen_text(app) and "retrying" in screen_text(app)
        assert table_keys(screen) == ["s7", "s1", "s3"]
        answers.down = False
        seen = screen.loads
        await until(pilot, lambda: screen.loads > seen)
        await pilot.pause()
        assert not problem.display


async def test_against_a_daemon_a_terminal_that_stops_acking_turns_its_store_red(
    make_config: Callable[..., Config],
) -> None:
    # A feed that does not tick: the only new table is the override's, so the terminal is
    # current until then (with ticks it would go stale between its acks).
    rt = Runtime(
        make_config(hub={"confirm_timeout_ms": 200}, feed={"update_frequency_ms": 3_600_000})
    )
    await rt.start()
    base = f"http://127.0.0.1:{rt.api_port}"
    options = TuiOptions(url=base, token=ADMIN_KEY, store=None, poll_interval=0.1, timeout=5)
    app = RatehubApp(options)
    from websockets.asyncio.client import connect

    try:
        async with (
            connect(url(rt, "store_os")) as term,
            app.run_test(size=(100, 20)) as pilot,
        ):
            snap = await rate_frame(term)
            await term.send(json.dumps({"type": "ack", "data": {"checksum": snap["checksum"]}}))
            await pilot.press("t")
            screen = app.screen
            assert isinstance(screen, StoresScreen)

            def row() -> Any:
                return next((r for r in screen.rows if r.storeId == "s1"), None)

            await until(pilot, lambda: row() is not None and row().current == 1)
            body = {"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33, "storeId": "s1"}
            async with httpx.AsyncClient(
                base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            ) as api:
                assert (await api.post("/api/rates/set", json=body)).status_code == 200
            await until(pilot, lambda: row() is not None and row().stale == 1)
            assert table_keys(screen)[0] == "s1"
            await pilot.press("enter")
            terms = app.screen
            assert isinstance(terms, TerminalsScreen)
            await until(pilot, lambda: [t.state for t in terms.rows] == ["stale"])
            assert terms.rows[0].clientType == "store_os"
    finally:
        await rt.stop()

"""``ratectl tui`` against a real daemon: it connects and measures latency, the override
and lock dialogs change the daemon (and show its refusals without closing), a read-only
key turns the dashboard read-only, and it reconnects and resumes across a restart of a
``ratehubd`` process on the same state directory and port; and ``ratectl tui`` as a real
process in a pseudo-terminal."""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from textual.widgets import Input

from ratectl.tui.app import RatehubApp
from ratectl.tui.event_log import EventLog
from ratectl.tui.form_screen import FormScreen
from ratectl.tui.lock_screen import LockScreen
from ratectl.tui.options import TuiOptions
from ratectl.tui.override_screen import OverrideScreen
from ratectl.tui.status_bar import StatusBar
from ratehubd.auth import READ_ONLY, new_key
from tests.conftest import ADMIN_KEY, CountedDelays, DaemonProcess, start_daemon, timeout
from tests.tui_support import until

PAIRS = {"USD/CAD", "EUR/CAD", "GBP/CAD", "BTC/CAD", "ETH/CAD"}


def fast() -> Iterator[float]:
    while True:
        yield 0.1


def live(url: str, token: str = ADMIN_KEY, store: str | None = "tui-live", **kw: Any) -> RatehubApp:
    options = TuiOptions(
        url=url, token=token, store=store, ping_interval=0.2, delays=fast, timeout=5, **kw
    )
    return RatehubApp(options)


def url_of(runtime: Any) -> str:
    return f"http://127.0.0.1:{runtime.api_port}"


def log(app: RatehubApp) -> str:
    return "\n".join(app.query_one(EventLog).lines_written)


async def fill(pilot: Any, **values: str) -> None:
    for field, text in values.items():
        pilot.app.screen.query_one(f"#{field}", Input).value = text
    await pilot.pause()


async def test_connects_shows_every_pair_and_measures_latency(runtime: Any) -> None:
    app = live(url_of(runtime))
    async with app.run_test(size=(80, 24)) as pilot:
        status = app.query_one(StatusBar)
        await until(pilot, lambda: set(app.board.rows) == PAIRS and status.state == "connected")
        await until(pilot, lambda: status.latency_ms is not None)
        assert status.latency_ms is not None and 0 <= status.latency_ms < 5000
        assert status.last_tick_ms is not None
        row = app.board.rows["USD/CAD"]
        assert 0 < row.sell < row.mid < row.buy


async def test_override_dialog_sets_an_override_and_shows_refusals_in_place(
    runtime: Any,
) -> None:
    app = live(url_of(runtime), store="tui-ov")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: set(app.board.rows) == PAIRS)
        await pilot.press("down", "down", "down", "down", "o")
        screen = app.screen
        assert isinstance(screen, OverrideScreen) and screen.pair == "USD/CAD"
        await fill(pilot, buy="1.37001", sell="1.33", reason="TUI test")
        await pilot.press("enter")
        await until(pilot, lambda: bool(screen.daemon_error()))
        assert app.screen is screen  # the daemon said no: still open, to fix and resend
        assert "buyRate 1.37001 is finer than USD/CAD's tick 0.0001" in screen.daemon_error()
        await fill(pilot, buy="1.37")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is not screen)
        [ov] = [o for o in runtime.service.overrides("tui-ov") if o["storeId"] == "tui-ov"]
        assert (ov["buyRate"], ov["sellRate"], ov["reason"]) == (1.37, 1.33, "TUI test")
        await until(pilot, lambda: "override set      USD/CAD @tui-ov  buy 1.37" in log(app))
        await until(pilot, lambda: app.board.rows["USD/CAD"].override == "store")
        assert str(app.board.rows["USD/CAD"].buy) == "1.37"


async def test_switching_store_follows_the_other_channel(runtime: Any) -> None:
    from ratehubd import wire

    req = wire.SetRateRequest(
        currencyPair="USD/CAD", buyRate=1.37, sellRate=1.33, storeId="tui-b", reason="b only"
    )
    await runtime.service.set_override(req, "tester")
    app = live(url_of(runtime), store="tui-a")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: set(app.board.rows) == PAIRS)
        assert app.board.rows["USD/CAD"].override is None  # store b's override is not a's
        await pilot.press("s")
        await fill(pilot, store="tui-b")
        await pilot.press("enter")
        await until(pilot, lambda: app.board.rows.get("USD/CAD") is not None)
        await until(pilot, lambda: app.board.rows["USD/CAD"].override == "store")
        assert str(app.board.rows["USD/CAD"].buy) == "1.37"
        assert "store: tui-b" in app.query_one(StatusBar).render().plain
        await runtime.service.set_override(
            wire.SetRateRequest(
                currencyPair="EUR/CAD", buyRate=1.52, sellRate=1.47, storeId="tui-a"
            ),
            "tester",
        )
        await pilot.pause(0.3)
        assert "EUR/CAD @tui-a" not in log(app)  # store a's events stay on a's channel


async def test_lock_dialog_creates_a_lock(runtime: Any) -> None:
    app = live(url_of(runtime), store="tui-lock")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: set(app.board.rows) == PAIRS)
        await pilot.press("l")
        screen = app.screen
        assert isinstance(screen, LockScreen)
        await fill(pilot, pair="eur-cad", ttl="2m", reference="TX42")
        await pilot.press("enter")
        await until(pilot, lambda: app.screen is not screen)
        [lock] = runtime.service.locks("tui-lock")
        assert (lock["currencyPair"], lock["ttlSeconds"], lock["reference"]) == (
            "EUR/CAD",
            120,
            "TX42",
        )
        assert lock["idempotencyKey"].startswith("tui-")
        await until(
            pilot, lambda: f"lock created      EUR/CAD @tui-lock  {lock['lockId']}" in log(app)
        )


async def test_a_read_only_key_turns_the_dashboard_read_only(runtime: Any) -> None:
    key, secret = new_key("wall screen", READ_ONLY)
    runtime.keys.add(key)
    app = live(url_of(runtime), token=secret, store="tui-ro")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: set(app.board.rows) == PAIRS)  # it may read
        await pilot.press("o")
        screen = app.screen
        assert isinstance(screen, OverrideScreen)
        await fill(pilot, pair="USD/CAD", buy="1.37", sell="1.33")
        await pilot.press("enter")
        await until(pilot, lambda: app.read_only)
        assert app.screen is screen and "may not" in screen.daemon_error()
        assert not screen.query_one("#submit").display  # nothing left to send
        await pilot.press("escape", "o", "l")
        assert not isinstance(app.screen, FormScreen)
        assert "READ-ONLY" in app.query_one(StatusBar).render().plain
        assert "read-only: key" in log(app)


async def test_an_absent_daemon_is_retried() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    delays = CountedDelays(0.1)
    url = f"http://127.0.0.1:{port}"
    app = RatehubApp(TuiOptions(url=url, token=ADMIN_KEY, store="x", delays=delays, timeout=5))
    async with app.run_test(size=(80, 24)) as pilot:
        status = app.query_one(StatusBar)
        await until(pilot, lambda: status.state == "unreachable")
        assert "[Errno" not in status.detail and "nothing listens there" in status.detail
        await until(pilot, lambda: delays.calls >= 4)  # the link keeps trying ...
        # ... and says so in the log once, in words
        assert log(app).count("daemon unreachable at") == 1, log(app)
        assert "retrying in" in log(app) and "[Errno" not in log(app)


async def test_reconnects_and_resumes_across_a_daemon_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_daemon(state)
    daemons: list[DaemonProcess] = [first]
    port = first.url.rsplit(":", 1)[1]
    app = live(first.url, store="tui-re")
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            status = app.query_one(StatusBar)
            await until(pilot, lambda: set(app.board.rows) == PAIRS and status.state == "connected")
            first.stop()
            await until(pilot, lambda: status.state == "reconnecting", limit=15)
            assert "the daemon is restarting" in log(app) or "reconnecting in" in log(app)
            second = start_daemon(state, args=["--port", port])
            daemons.append(second)
            await until(pilot, lambda: status.state == "connected", limit=15)
            await until(pilot, lambda: "resumed after seq" in log(app))
            async with httpx.AsyncClient(
                base_url=second.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            ) as http:
                body = {"currencyPair": "GBP/CAD", "buyRate": 1.78, "sellRate": 1.74}
                resp = await http.post("/api/rates/set", json={**body, "storeId": "tui-re"})
                assert resp.status_code == 200, resp.text
            await until(pilot, lambda: "override set      GBP/CAD @tui-re  buy 1.78" in log(app))
            await until(pilot, lambda: str(app.board.rows["GBP/CAD"].buy) == "1.78")
            assert "gap:" not in log(app)
    finally:
        for d in daemons:
            d.stop()
            if d.proc.stdout:
                d.proc.stdout.close()


# -- as a user runs it: a real process in a terminal ------------------------------------------


class Terminal:
    """A pseudo-terminal of 80x24 running a command; the screen's text as it is written."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        import fcntl
        import pty
        import struct
        import termios

        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.output = b""

    @property
    def text(self) -> str:
        return re.sub(rb"\x1b(\[[0-9;?<>=]*[a-zA-Z~]|[()][0-9A-Z])", b"", self.output).decode(
            "utf-8", "replace"
        )

    def read(self, wait: float) -> None:
        if select.select([self.master], [], [], wait)[0]:
            try:
                self.output += os.read(self.master, 65536)
            except OSError:  # the child closed the terminal
                time.sleep(wait)

    def until(self, text: str, limit: float = 15) -> None:
        deadline = time.monotonic() + timeout(limit)
        while text not in self.text:
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on screen within {timeout(limit)} s")
            self.read(0.1)

    def press(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def exit_code(self, limit: float = 15) -> int | None:
        deadline = time.monotonic() + timeout(limit)
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read(0.1)  # keep draining: a full terminal would block the child's exit
        return self.proc.poll()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


@pytest.mark.parametrize("read_only", [False, True])
def test_ratectl_tui_in_a_terminal(daemon_proc: DaemonProcess, read_only: bool) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATECTL_", "RATEHUB_"))}
    env.update(RATECTL_URL=daemon_proc.url, RATECTL_TOKEN=ADMIN_KEY, TERM="xterm-256color")
    argv = [sys.executable, "-m", "ratectl", "tui", "--store", "store123"]
    term = Terminal(argv + (["--read-only"] if read_only else []), env)
    try:
        term.until("USD/CAD")
        term.until("● connected")
        term.until("? Help")  # the footer
        footer = term.text.rsplit("q Quit", 1)[1].split("\n", 1)[0]
        assert ("o Override" in footer) is not read_only
        assert ("l Lock" in footer) is not read_only
        assert ("READ-ONLY" in term.text) is read_only
        term.press(b"?")
        term.until("what a customer pays")
        term.press(b"q")  # closes the help
        time.sleep(0.3)
        term.press(b"q")  # quits
        assert term.exit_code() == 0
    finally:
        term.close()


def test_ratectl_tui_needs_a_terminal() -> None:
    from typer.testing import CliRunner

    from ratectl.cli import app

    result = CliRunner().invoke(app, ["tui"])
    assert result.exit_code == 2
    assert "ratectl tui needs a terminal" in result.stderr
    assert "ratectl rates -w" in result.stderr

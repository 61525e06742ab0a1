"""RatehubApp: ``ratectl tui``, the live dashboard.

Layout (``app.tcss``): status bar, filter bar (on ``/``), the rates table, the selected
pair's history, the event log, the footer with the keys.

Data flow, attributes down and messages up: :class:`HubLink` follows the hub in a
worker and posts ``Rates``/``Event``/``Status``/``Latency``/``Notice``. Rates are not
drawn per message: they are conflated into ``_pending`` (latest per pair) and a timer
applies the batch at most every ``flush_interval`` (50 ms) to the :class:`Board` and
tells the table which pairs changed; the table replaces only the cells that differ.
So 20 frames/s of 50 pairs cost at most 20 small table updates per second, whatever
the message rate. Pause stops applying (the batch keeps the latest values); events
keep flowing into the log.

Changes (override, lock) go through dialogs whose API calls run in thread workers. A
read-only dashboard (``--read-only``, or after the daemon refused the key for a
change at this store) hides them from the footer and ignores their keys.
"""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Footer

from ratectl import render
from ratectl.errors import CtlError
from ratectl.tui.api import Api
from ratectl.tui.board import Board
from ratectl.tui.event_log import EventLog
from ratectl.tui.filter_bar import FilterBar
from ratectl.tui.form_screen import FormScreen
from ratectl.tui.help_screen import HelpScreen
from ratectl.tui.hub_link import HubLink
from ratectl.tui.lock_screen import LockScreen
from ratectl.tui.options import TuiOptions
from ratectl.tui.override_screen import OverrideScreen
from ratectl.tui.pair_history import PairHistory
from ratectl.tui.rates_table import RatesTable
from ratectl.tui.status_bar import StatusBar
from ratectl.tui.store_screen import StoreScreen
from ratectl.tui.stores_screen import PolledScreen, StoresScreen

MUTATIONS = frozenset({"override", "lock"})


class RatehubApp(App[None]):
    """The live dashboard of one daemon and one store (or the global rates)."""

    CSS_PATH = "app.tcss"
    TITLE = "ratehub"
    ENABLE_COMMAND_PALETTE = False  # every action has its key, listed in the footer and on ?
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("slash", "filter", "Filter"),
        Binding("p", "pause", "Pause"),
        Binding("s", "store", "Store"),
        Binding("t", "stores", "Stores"),
        Binding("o", "override", "Override"),
        Binding("l", "lock", "Lock"),
        Binding("question_mark", "help", "Help"),
    ]

    paused = reactive(False, bindings=True)
    read_only = reactive(False, bindings=True)
    store: reactive[str | None] = reactive(None, init=False)
    filter_text = reactive("", init=False)
    selected: reactive[str | None] = reactive(None, init=False)

    class BreachesLoaded(Message):
        """The breaches active when the dashboard connected."""

        def __init__(self, breaches: list[Any]) -> None:
            super().__init__()
            self.breaches = breaches

    def __init__(self, options: TuiOptions, api: Api | None = None) -> None:
        super().__init__()
        self.options = options
        self.api = api or Api(options)
        self.board = Board(options.history)
        self._pending: dict[str, dict[str, Any]] = {}
        self._forbidden: set[str | None] = set()
        self._history_due, self._history_at = False, 0.0
        self.flushes = 0  # batches applied, and the time they took (the benchmark reads these)
        self.flush_seconds = 0.0
        self.set_reactive(RatehubApp.store, options.store)
        self.set_reactive(RatehubApp.read_only, options.read_only)

    def compose(self) -> ComposeResult:
        # Kept as attributes: a message that arrives while the app shuts down still finds them.
        self.status_bar = StatusBar(id="status")
        self.filter_bar = FilterBar(id="filter")
        self.rates_table = RatesTable(self.board, id="rates")
        self.history = PairHistory(id="history")
        self.event_log = EventLog(tz=self.options.tz, max_lines=self.options.log_lines, id="events")
        self.hub = HubLink(self.options, id="hub")
        yield self.status_bar
        yield self.filter_bar
        yield self.rates_table
        yield self.history
        yield self.event_log
        yield self.hub
        yield Footer()

    def on_mount(self) -> None:
        status = self.status_bar
        status.url = self.options.url
        status.store = self.store
        status.read_only = self.read_only
        status.now_ms = self.options.now_ms()
        if self.options.freeze_gc:
            # What exists now (modules, widgets, styles) lives as long as the app: keep it
            # out of the collector's full passes, which otherwise stall frames by ~100 ms.
            gc.collect()
            gc.freeze()
        self.set_interval(self.options.flush_interval, self.flush)
        self.set_interval(1.0, self.tick)
        self.rates_table.focus()
        where = f"store {self.store}" if self.store else "the global rates"
        self.note(f"ratectl tui: {self.options.url}, {where}; press ? for help")
        if self.options.connect:
            self.load_breaches()

    # -- reactives ------------------------------------------------------------------------

    def watch_store(self, store: str | None) -> None:
        self._pending.clear()
        self.board.reset()
        self.rates_table.show((), self.options.now_ms())
        self.status_bar.store = store
        self.hub.store = store
        self.read_only = self.options.read_only or store in self._forbidden
        self.note(f"showing {f'store {store}' if store else 'the global rates'}")

    def watch_paused(self, paused: bool) -> None:
        self.status_bar.paused = paused
        if not paused:
            self.flush()

    def watch_read_only(self, read_only: bool) -> None:
        self.status_bar.read_only = read_only

    def watch_filter_text(self, text: str) -> None:
        self.rates_table.filter_text = text
        self.status_bar.filter_text = text

    def watch_selected(self, pair: str | None) -> None:
        history = self.history
        history.pair = pair
        row = self.board.rows.get(pair) if pair else None
        history.mids = tuple(row.history) if row else ()

    # -- actions --------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action != "quit" and isinstance(self.screen, PolledScreen):
            return False  # the rates' keys do not apply to the Stores and Terminals screens
        if action in MUTATIONS and self.read_only:
            return False  # hidden from the footer, and the key does nothing
        return True

    def action_filter(self) -> None:
        bar = self.filter_bar
        bar.add_class("-open")
        bar.focus()

    def action_pause(self) -> None:
        self.paused = not self.paused

    def action_store(self) -> None:
        def switched(result: dict[str, Any] | None) -> None:
            if result is not None and result["storeId"] != self.store:
                self.store = result["storeId"]

        self.push_screen(StoreScreen(store=self.store), switched)

    def action_stores(self) -> None:
        self.push_screen(StoresScreen(self.api.stores, self.api.terminals, self.options))

    def _highlighted(self) -> str | None:
        """The pair under the cursor now. ``selected`` follows the table's messages, which
        a key pressed right after a cursor move can overtake: a dialog opened then was for
        the pair before."""
        self.selected = self.rates_table.selected
        return self.selected

    def action_override(self) -> None:
        if self.read_only:
            return
        screen = OverrideScreen(
            pair=self._highlighted() or "",
            store=self.store,
            known=set(self.board.rows),
            hint=self._hint(),
            now=lambda: datetime.fromtimestamp(self.options.clock(), UTC),
            submit=self.api.set_rate,
        )
        self.push_screen(screen, self._override_done)

    def action_lock(self) -> None:
        if self.read_only:
            return
        screen = LockScreen(
            pair=self._highlighted() or "",
            store=self.store,
            known=set(self.board.rows),
            hint=self._hint(),
            submit=self.api.create_lock,
        )
        self.push_screen(screen, self._lock_done)

    def action_help(self) -> None:
        keys = [
            (self.get_key_display(b), b.description)
            for b in self.BINDINGS
            if isinstance(b, Binding) and self.check_action(b.action, ())
        ]
        keys += [("up/down", "select a pair (its history shows below the table)")]
        self.push_screen(HelpScreen(keys, self.read_only))

    # -- messages -------------------------------------------------------------------------

    def on_hub_link_rates(self, message: HubLink.Rates) -> None:
        if message.store != self.store:
            return  # still in flight from the store we left
        for rate in message.rates:
            pair = rate.get("currencyPair")
            if isinstance(pair, str):
                self._pending[pair] = rate
        self.status_bar.last_tick_ms = self.options.now_ms()

    def on_hub_link_event(self, message: HubLink.Event) -> None:
        if message.store == self.store:
            self.event_log.event(message.msg)

    def on_hub_link_notice(self, message: HubLink.Notice) -> None:
        self.note(message.text)

    def on_hub_link_status(self, message: HubLink.Status) -> None:
        status = self.status_bar
        status.state, status.detail = message.state, message.detail
        if message.state in ("refused", "failed"):
            self.note(f"stopped following the hub: {message.detail}")

    def on_hub_link_latency(self, message: HubLink.Latency) -> None:
        self.status_bar.latency_ms = message.ms

    def on_rates_table_pair_selected(self, message: RatesTable.PairSelected) -> None:
        self.selected = message.pair

    def on_filter_bar_updated(self, message: FilterBar.Updated) -> None:
        self.filter_text = message.text

    def on_filter_bar_closed(self, message: FilterBar.Closed) -> None:
        self.filter_bar.remove_class("-open")
        self.rates_table.focus()

    def on_form_screen_forbidden(self, message: FormScreen.Forbidden) -> None:
        self._forbidden.add(self.store)
        self.read_only = True
        self.note(f"read-only: {message.text}")

    def on_ratehub_app_breaches_loaded(self, message: BreachesLoaded) -> None:
        for b in message.breaches:
            if isinstance(b, dict) and b.get("state") != "cleared":
                self.event_log.event(
                    {"type": "rate_threshold_breach", "data": b, "timestamp": None}
                )

    # -- work -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Apply the rates that arrived since the last frame, as one batch."""
        if self.paused or not self._pending:
            return
        started = time.perf_counter()
        pending, self._pending = self._pending, {}
        changed = self.board.apply(pending.values())
        self.rates_table.show(changed, self.options.now_ms())
        self._history_due |= self.selected in changed
        self._draw_history()
        self.flushes += 1
        self.flush_seconds += time.perf_counter() - started

    def _draw_history(self) -> None:
        """The sparkline follows the selected pair, at most every ``history_interval``."""
        now = time.monotonic()
        if self._history_due and now - self._history_at >= self.options.history_interval:
            self._history_due, self._history_at = False, now
            self.watch_selected(self.selected)

    def tick(self) -> None:
        now = self.options.now_ms()
        self.status_bar.now_ms = now
        if not self.paused:
            self.rates_table.tick(now)
            self._draw_history()

    @work(thread=True, exclusive=True, group="breaches", exit_on_error=False)
    def load_breaches(self) -> None:
        try:
            self.post_message(self.BreachesLoaded(self.api.breaches()))
        except CtlError:
            pass  # the stream reports an unreachable daemon or a refused key

    def note(self, text: str) -> None:
        self.event_log.notice(self.options.now_ms(), text)

    def _hint(self) -> str:
        row = self.board.rows.get(self.selected or "")
        if row is None:
            return ""
        buy, sell = render.on_tick(row.buy, row.tick), render.on_tick(row.sell, row.tick)
        return f"Now: buy {buy} sell {sell}."

    def _override_done(self, result: dict[str, Any] | None) -> None:
        if result is not None:
            self.note(f"override set: {result.get('currencyPair')} (the hub confirms below)")

    def _lock_done(self, result: dict[str, Any] | None) -> None:
        if result is not None:
            self.note(
                f"lock {result.get('lockId')}: {result.get('currencyPair')} "
                f"buy {render.num(result.get('buyRate'))} sell {render.num(result.get('sellRate'))}"
                f" until {result.get('expiresAt')}"
            )

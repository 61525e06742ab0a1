"""StoresScreen and TerminalsScreen: is every store's screen showing the current rate?

``StoresScreen`` lists every store with connections (``GET /api/stores``, every node of a
fleet), stale ones first and in red; Enter opens ``TerminalsScreen``, that store's
connections (``GET /api/stores/{storeId}/terminals``). Both re-read every
``poll_interval`` in a thread worker, keep the cursor on the same store or session across
refreshes, and on a failed read keep the last rows and say above them what went wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from pydantic import ValidationError
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ratectl import models, render
from ratectl.errors import CtlError
from ratectl.tui.help_screen import HelpScreen
from ratectl.tui.options import TuiOptions

STALE = "bold red"
STATE_LEGEND = (
    ("current", "acknowledged the newest rate table the hub sent it"),
    ("confirming", "acknowledges, and the newest table is not yet confirmed (within the timeout)"),
    ("stale", "did not acknowledge the newest table within hub.confirm_timeout_ms"),
    ("unconfirmed", "never acknowledges (the guide's clients): what it shows is unknown"),
)


class PolledScreen(Screen[None]):
    """A table re-read from the daemon every ``poll_interval`` seconds."""

    TITLE_TEXT: ClassVar[str] = ""
    HELP_KEYS: ClassVar[Sequence[tuple[str, str]]] = ()
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("r", "reload", "Refresh"),
        Binding("question_mark", "help", "Help"),
    ]
    DEFAULT_CSS = """
    PolledScreen #title { height: 1; background: $panel; padding: 0 1; }
    PolledScreen #problem { height: auto; color: $error; padding: 0 1; display: none; }
    PolledScreen #problem.-shown { display: block; }
    PolledScreen DataTable { height: 1fr; }
    """

    class Loaded(Message):
        def __init__(self, rows: list[Any] | None, problem: str | None) -> None:
            super().__init__()
            self.rows, self.problem = rows, problem

    def __init__(self, fetch: Callable[[], list[Any]], options: TuiOptions) -> None:
        super().__init__()
        self.fetch = fetch
        self.options = options
        self.rows: list[Any] = []
        self.loads = 0  # completed reads, successful or not (tests wait on it)
        self.updated_ms: int | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.TITLE_TEXT, id="title")
        yield Static("", id="problem")
        table: DataTable[Text] = DataTable(cursor_type="row", zebra_stripes=True)
        table.add_columns(*self.columns())
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.action_reload()
        self.set_interval(self.options.poll_interval, self.action_reload)

    def action_back(self) -> None:
        self.dismiss(None)

    def action_reload(self) -> None:
        self.load()

    def action_help(self) -> None:
        keys = [(self.app.get_key_display(b), b.description) for b in self._bindings_shown()]
        self.app.push_screen(HelpScreen([*keys, *self.HELP_KEYS], False, legend=STATE_LEGEND))

    def _bindings_shown(self) -> list[Binding]:
        return [b for b in type(self).BINDINGS if isinstance(b, Binding) and b.show]

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def load(self) -> None:
        try:
            self.post_message(self.Loaded(self.parse(self.fetch()), None))
        except CtlError as e:
            self.post_message(self.Loaded(None, str(e)))
        except ValidationError as e:
            self.post_message(self.Loaded(None, f"the daemon's answer did not parse: {e}"))

    def on_polled_screen_loaded(self, message: Loaded) -> None:
        self.loads += 1
        problem = self.query_one("#problem", Static)
        problem.set_class(message.problem is not None, "-shown")
        if message.problem is not None:
            problem.update(f"{message.problem} (showing the last rows read; retrying)")
            return
        assert message.rows is not None
        table: DataTable[Text] = self.query_one(DataTable)
        at = table.cursor_row
        keep = self.row_key(self.rows[at]) if 0 <= at < len(self.rows) else None
        self.rows = message.rows
        self.updated_ms = self.options.now_ms()
        table.clear()
        for row in self.rows:
            table.add_row(*self.cells(row), key=self.row_key(row))
        keys = [self.row_key(r) for r in self.rows]
        if keep in keys:
            table.move_cursor(row=keys.index(keep), animate=False)
        self.query_one("#title", Static).update(self.title_line())

    def when(self) -> str:
        if self.updated_ms is None:
            return "not read yet"
        at = datetime.fromtimestamp(self.updated_ms / 1000, self.options.tz)
        return f"read {at:%H:%M:%S}"

    # -- what each screen shows --------------------------------------------------------------

    def columns(self) -> Sequence[str]:
        raise NotImplementedError

    def parse(self, data: list[Any]) -> list[Any]:
        raise NotImplementedError

    def row_key(self, row: Any) -> str:
        raise NotImplementedError

    def cells(self, row: Any) -> Sequence[Text]:
        raise NotImplementedError

    def title_line(self) -> Text:
        raise NotImplementedError


class StoresScreen(PolledScreen):
    """Every store with connections: terminals, confirming, current, stale, unconfirmed."""

    TITLE_TEXT = "Stores"
    HELP_KEYS = (("up/down", "select a store"),)
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("enter", "open", "Terminals", priority=True),  # over the table's own enter
        Binding("r", "reload", "Refresh"),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        fetch: Callable[[], list[Any]],
        terminals: Callable[[str], list[Any]],
        options: TuiOptions,
    ) -> None:
        super().__init__(fetch, options)
        self.fetch_terminals = terminals

    def columns(self) -> Sequence[str]:
        return ("STORE", "TERMINALS", "CONFIRMING", "CURRENT", "STALE", "UNCONFIRMED")

    def parse(self, data: list[Any]) -> list[Any]:
        # The daemon sends stale stores first; sorted here too, so the screen never depends on it.
        return sorted(models.stores(data), key=lambda r: (r.stale == 0, r.storeId))

    def row_key(self, row: Any) -> str:
        return str(row.storeId)

    def cells(self, row: Any) -> Sequence[Text]:
        style = STALE if row.stale else ""
        counts = (row.terminals, row.confirming, row.current, row.stale, row.unconfirmed)
        return (
            Text(row.storeId, style=style or "bold"),
            *(Text(str(n), style=style, justify="right") for n in counts),
        )

    def title_line(self) -> Text:
        stale = [r for r in self.rows if r.stale]
        text = Text.assemble(
            ("Stores", "bold"), f"  {len(self.rows)} with connections, ", self.when()
        )
        if stale:
            text.append(f"  {len(stale)} with stale screens", style=STALE)
        return text

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        message.stop()
        self._open(message.row_key.value)

    def action_open(self) -> None:
        table: DataTable[Text] = self.query_one(DataTable)
        if 0 <= table.cursor_row < len(self.rows):
            self._open(self.row_key(self.rows[table.cursor_row]))

    def _open(self, store: str | None) -> None:
        if store is not None:
            fetch = self.fetch_terminals
            self.app.push_screen(TerminalsScreen(store, lambda: fetch(store), self.options))


class TerminalsScreen(PolledScreen):
    """One store's connections: state, session, client, key, node, remote, acks."""

    HELP_KEYS = (("up/down", "select a terminal"),)

    def __init__(self, store: str, fetch: Callable[[], list[Any]], options: TuiOptions) -> None:
        super().__init__(fetch, options)
        self.store = store

    def columns(self) -> Sequence[str]:
        return ("STATE", "SESSION", "CLIENT", "KEY", "NODE", "REMOTE", "SENT", "ACKED", "STALE FOR")

    def parse(self, data: list[Any]) -> list[Any]:
        order = {"stale": 0, "confirming": 1, "current": 2, "unconfirmed": 3}
        return sorted(models.terminals(data), key=lambda t: (order[t.state], t.sessionId))

    def row_key(self, row: Any) -> str:
        return f"{row.node}:{row.sessionId}"

    def cells(self, row: Any) -> Sequence[Text]:
        stale_for = "-"
        if row.staleSinceMs is not None:
            stale_for = render.age(self.options.now_ms(), row.staleSinceMs)
        style = STALE if row.state == "stale" else ""
        return (
            Text(row.state, style=render.STATE_STYLE.get(row.state, "dim")),
            Text(str(row.sessionId), style=style),
            Text(row.clientType, style=style),
            Text(row.keyName or "-", style=style),
            Text(row.node or "-", style=style),
            Text(row.remoteAddr or "-", style=style),
            Text(str(row.lastSentSeq), style=style, justify="right"),
            Text("-" if row.ackSeq is None else str(row.ackSeq), style=style, justify="right"),
            Text(stale_for, style=style),
        )

    def title_line(self) -> Text:
        stale = sum(1 for t in self.rows if t.state == "stale")
        text = Text.assemble(
            ("Terminals of ", "bold"),
            (self.store, "bold"),
            f"  {len(self.rows)} connected, ",
            self.when(),
        )
        if stale:
            text.append(f"  {stale} stale", style=STALE)
        return text

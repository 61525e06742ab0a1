"""HelpScreen: every key the dashboard takes, and what the columns and markers mean.

The key list is given by the app from its own bindings (the ones active now, so a
read-only dashboard does not offer changes), so it never drifts from the footer.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

LEGEND = (
    ("BUY / SELL", "what a customer pays / receives for one unit of the base currency"),
    (
        "MID",
        "the mid rate (one digit finer than the pair's tick); green: the last tick"
        " moved it up, red: down",
    ),
    ("CHG", "change of the mid since the dashboard opened: ▲ up, ▼ down (sign and arrow agree)"),
    ("SOURCE", "market, or manual when an override sets the rate"),
    ("OVR", "an override applies: store (this store's own) or all (a global one)"),
    ("AGE", "how old the market data behind the rate is; STALE: too old, locks are refused"),
)


class HelpScreen(ModalScreen[None]):
    """Keys and legend; any of Escape, q or ? closes it."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("q", "close", "Close", show=False),
        Binding("question_mark", "close", "Close", show=False),
    ]

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 90;
        max-width: 100%;
        height: auto;
        max-height: 100%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    """

    def __init__(
        self,
        keys: Sequence[tuple[str, str]],
        read_only: bool,
        *,
        legend: Sequence[tuple[str, str]] = LEGEND,
    ) -> None:
        super().__init__()
        self.keys = keys
        self.read_only = read_only
        self.legend = legend

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self.body(), id="help-body")

    def body(self) -> Table:
        t = Table.grid(padding=(0, 2))
        t.add_column(style="bold cyan", no_wrap=True)
        t.add_column()
        t.add_row(Text("ratectl tui", style="bold"), "live rates, history and events")
        t.add_row("", "")
        for key, what in self.keys:
            t.add_row(key, what)
        if self.read_only:
            t.add_row("", Text("read-only: changes are hidden", style="italic"))
        t.add_row("", "")
        for column, what in self.legend:
            t.add_row(Text(column, style="bold"), what)
        return t

    def action_close(self) -> None:
        self.dismiss(None)

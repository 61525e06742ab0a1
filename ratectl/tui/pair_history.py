"""PairHistory: the selected pair's recent mids as a sparkline, with its range.

Attributes down: the app sets ``pair`` and ``mids`` (oldest first), at most every
``history_interval``. Both lines only repaint: nothing here changes size, so an update
never costs a layout of the screen.
"""

from __future__ import annotations

from decimal import Decimal

from rich.text import Text
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Sparkline

from ratectl.render import num
from ratectl.tui.text_line import TextLine


class PairHistory(Widget):
    """``USD/CAD  last 1.35012  low 1.3490  high 1.3512  120 ticks`` over a sparkline."""

    DEFAULT_CSS = """
    PairHistory {
        height: 4;
        padding: 0 1;
    }
    PairHistory > Sparkline {
        height: 3;
    }
    """

    pair: reactive[str | None] = reactive(None)
    mids: reactive[tuple[float, ...]] = reactive(())

    def compose(self) -> ComposeResult:
        self.label = TextLine(classes="title")
        self.line = Sparkline([], id="history-line")
        yield self.label
        yield self.line

    def watch_pair(self) -> None:
        self._draw()

    def watch_mids(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        self.line.data = list(self.mids)
        self.label.text = self.title()

    def title(self) -> Text:
        if self.pair is None:
            return Text("no pair selected", style="dim")
        if not self.mids:
            return Text.assemble((self.pair, "bold"), ("  waiting for rates", "dim"))
        low, high = min(self.mids), max(self.mids)
        return Text.assemble(
            (self.pair, "bold"),
            f"  last {_n(self.mids[-1])}",
            (f"  low {_n(low)}  high {_n(high)}", "dim"),
            (f"  {len(self.mids)} tick{'s' if len(self.mids) != 1 else ''}", "dim"),
        )


def _n(value: float) -> str:
    return num(Decimal(repr(value)))

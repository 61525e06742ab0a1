"""RatesTable: one row per pair, updated in place.

The app owns the :class:`~ratectl.tui.board.Board` and tells the table which pairs
changed (``show``) and when a second has passed (``tick``). The table keeps the cells it
last drew and replaces only those that differ, so a batch of updates costs one
``update_cell`` per changed cell and one repaint per frame, never a rebuild. Rows are
rebuilt only when the set of visible pairs changes (a new pair, or the filter).
Highlighting a row posts ``PairSelected``.
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.text import Text
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable

from ratectl.tui.board import AGE, COLUMNS, Board, age_cell, cells


class RatesTable(DataTable[Text]):
    """Buy, sell, mid, change, source, override and age of every (filtered) pair."""

    DEFAULT_CSS = """
    RatesTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    filter_text = reactive("", init=False)

    class PairSelected(Message):
        def __init__(self, pair: str | None) -> None:
            super().__init__()
            self.pair = pair

    def __init__(self, board: Board, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.board = board
        self.now_ms = 0
        self._order: list[str] = []
        self._drawn: dict[str, tuple[Text, ...]] = {}
        self.cell_updates = 0  # for the benchmark: cells actually replaced

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            right = key in ("buy", "sell", "mid", "change", "age")
            self.add_column(Text(label, justify="right" if right else "left"), key=key, width=width)

    def watch_filter_text(self) -> None:
        self.show(())

    def show(self, changed: Iterable[str], now_ms: int | None = None) -> None:
        """Draw the pairs that changed (and any that appeared or were filtered in/out)."""
        if now_ms is not None:
            self.now_ms = now_ms
        wanted = self.board.visible(self.filter_text)
        if wanted != self._order:
            self._rebuild(wanted)
            return
        for pair in changed:
            if pair in self._drawn:
                self._redraw(pair, cells(self.board.rows[pair], self.now_ms))

    def tick(self, now_ms: int) -> None:
        """Time passed: only the AGE cells move."""
        self.now_ms = now_ms
        for pair in self._order:
            old = self._drawn[pair]
            age = age_cell(self.board.rows[pair], now_ms)
            if age != old[AGE]:
                self._redraw(pair, (*old[:AGE], age, *old[AGE + 1 :]))

    def _redraw(self, pair: str, new: tuple[Text, ...]) -> None:
        old = self._drawn[pair]
        for (key, _, _), before, after in zip(COLUMNS, old, new, strict=True):
            if before != after:
                self.update_cell(pair, key, after)
                self.cell_updates += 1
        self._drawn[pair] = new

    def _rebuild(self, wanted: list[str]) -> None:
        selected = self.selected
        self.clear()
        self._drawn = {p: cells(self.board.rows[p], self.now_ms) for p in wanted}
        for pair in wanted:
            self.add_row(*self._drawn[pair], key=pair)
        self._order = wanted
        if selected in wanted:
            self.move_cursor(row=wanted.index(selected), animate=False)
        else:
            self.post_message(self.PairSelected(self.selected))

    @property
    def selected(self) -> str | None:
        if not self._order or not 0 <= self.cursor_row < len(self._order):
            return None
        return self._order[self.cursor_row]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(self.PairSelected(event.row_key.value))

"""RatesTable: one row per pair, updated in place, drawn line by line.

The app owns the :class:`~ratectl.tui.board.Board` and tells the table which pairs
changed (``show``) and when a second has passed (``tick``). The table keeps the cells it
last drew; a pair whose cells differ gets its row re-rendered (one Rich ``Text`` to one
``Strip``) and only that line repainted. Every other line is served from the strip cache,
so a frame costs what changed, not the size of the table. (Textual's ``DataTable``
re-renders every visible cell after any change; with 50 pairs at 20 updates/s that took
most of a CPU, see ``bench/tui_updates.py``.) The set of rows is rebuilt only when the
visible pairs change (a new pair, or the filter).

Keys: up/down, page up/down, home/end move the cursor (a click too); moving it posts
``PairSelected``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ratectl.tui.board import AGE, COLUMNS, Board, age_cell, cells

RIGHT = frozenset({"buy", "sell", "mid", "change", "age"})
GAP = 2  # spaces between columns, and one before the first
# 79 columns: with the scrollbar, the table fits an 80-column terminal.
WIDTH = 1 + sum(width for _, _, width in COLUMNS) + GAP * (len(COLUMNS) - 1)


class RatesTable(ScrollView, can_focus=True):
    """Buy, sell, mid, change, source, override and age of every (filtered) pair."""

    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(-1)", "First", show=False),
        Binding("end", "edge(1)", "Last", show=False),
    ]

    COMPONENT_CLASSES = {"rates-table--header", "rates-table--cursor", "rates-table--odd"}

    DEFAULT_CSS = """
    RatesTable {
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    RatesTable > .rates-table--header {
        text-style: bold;
        background: $panel;
        color: $foreground;
    }
    RatesTable > .rates-table--odd {
        background: $surface-lighten-1;
    }
    RatesTable > .rates-table--cursor {
        background: $block-cursor-blurred-background;
    }
    RatesTable:focus > .rates-table--cursor {
        background: $block-cursor-background;
    }
    """

    filter_text = reactive("", init=False)
    cursor = reactive(0, init=False)

    class PairSelected(Message):
        def __init__(self, pair: str | None) -> None:
            super().__init__()
            self.pair = pair

    def __init__(self, board: Board, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.board = board
        self.now_ms = 0
        self._order: list[str] = []
        self._drawn: dict[str, tuple[Text, ...]] = {}
        # Each row's line as last drawn, and for which (style part, scroll x, width):
        # served again until its cells change.
        self._strips: dict[str, tuple[tuple[str | None, int, int], Strip]] = {}
        self._header: Strip | None = None
        self._styles: dict[str | None, Style] = {}
        self.cell_updates = 0  # cells that changed (the benchmark and tests read these)
        self.rows_rendered = 0

    def watch_filter_text(self) -> None:
        self.show(())

    def watch_cursor(self, old: int, new: int) -> None:
        self._refresh_row(old)
        self._refresh_row(new)
        self._scroll_to_cursor()
        self.post_message(self.PairSelected(self.selected))

    def action_cursor(self, step: int) -> None:
        self._move(self.cursor + step)

    def action_page(self, step: int) -> None:
        self._move(self.cursor + step * max(1, self.size.height - 2))

    def action_edge(self, step: int) -> None:
        self._move(0 if step < 0 else len(self._order) - 1)

    # -- what the app calls ------------------------------------------------------------------

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

    @property
    def selected(self) -> str | None:
        return self._order[self.cursor] if 0 <= self.cursor < len(self._order) else None

    def rows_text(self) -> list[list[str]]:
        """The cells as drawn, row by row (for tests and copy-paste)."""
        return [[c.plain for c in self._drawn[p]] for p in self._order]

    # -- drawing ---------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        if y == 0:
            return self._header_strip().crop_extend(scroll_x, scroll_x + width, None)
        index = y - 1 + scroll_y
        if index >= len(self._order):
            return Strip.blank(width, self.rich_style)
        pair = self._order[index]
        part = "rates-table--cursor" if index == self.cursor else None
        if part is None and index % 2:
            part = "rates-table--odd"
        key = (part, scroll_x, width)
        cached = self._strips.get(pair)
        if cached is not None and cached[0] == key:
            return cached[1]
        base = self._style(part)
        strip = self._render_row(self._drawn[pair]).apply_style(base)
        strip = strip.crop_extend(scroll_x, scroll_x + width, base)
        self._strips[pair] = (key, strip)
        return strip

    def on_resize(self) -> None:
        self._header = None
        self.virtual_size = Size(WIDTH, len(self._order) + 1)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._header = None
        self._styles.clear()
        self._strips.clear()

    def on_focus(self) -> None:
        self._styles.clear()  # the cursor's colour depends on focus
        self._strips.pop(self.selected or "", None)
        self._refresh_row(self.cursor)

    def on_blur(self) -> None:
        self.on_focus()

    def _style(self, part: str | None) -> Style:
        """The widget's style, with a component's on top; computed once per style change."""
        style = self._styles.get(part)
        if style is None:
            style = self.rich_style
            if part is not None:
                style += self.get_component_rich_style(part)
            self._styles[part] = style
        return style

    def on_click(self, event: events.Click) -> None:
        index = event.y - 1 + self.scroll_offset.y
        if event.y >= 1 and 0 <= index < len(self._order):
            self._move(index)

    def _render_row(self, row: tuple[Text, ...]) -> Strip:
        """One row as segments: cells fitted to their columns, two spaces apart."""
        self.rows_rendered += 1
        segments = [_SPACE]
        for i, ((key, _, width), cell) in enumerate(zip(COLUMNS, row, strict=True)):
            if i:
                segments.append(_GAP)
            segments += _cell(self.app.console, cell, width, key in RIGHT)
        return Strip(segments, WIDTH)

    def _header_strip(self) -> Strip:
        if self._header is None:
            style = self._style("rates-table--header")
            head = tuple(Text(label) for _, label, _ in COLUMNS)
            self._header = self._render_row(head).apply_style(style)
        return self._header

    def _redraw(self, pair: str, new: tuple[Text, ...]) -> None:
        old = self._drawn[pair]
        changed = sum(before != after for before, after in zip(old, new, strict=True))
        if not changed:
            return
        self.cell_updates += changed
        self._drawn[pair] = new
        self._strips.pop(pair, None)
        self._refresh_row(self._order.index(pair))

    def _rebuild(self, wanted: list[str]) -> None:
        selected = self.selected
        self._drawn = {p: cells(self.board.rows[p], self.now_ms) for p in wanted}
        self._strips.clear()
        self._order = wanted
        self.virtual_size = Size(WIDTH, len(wanted) + 1)
        self.refresh()
        index = wanted.index(selected) if selected in wanted else 0
        if index != self.cursor:
            self.cursor = index  # the watcher posts PairSelected
        else:
            self.post_message(self.PairSelected(self.selected))

    def _move(self, index: int) -> None:
        if self._order:
            self.cursor = max(0, min(len(self._order) - 1, index))

    def _refresh_row(self, index: int) -> None:
        y = index + 1 - self.scroll_offset.y
        if 1 <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def _scroll_to_cursor(self) -> None:
        top, rows = self.scroll_offset.y, max(1, self.size.height - 1)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + rows:
            self.scroll_to(y=self.cursor - rows + 1, animate=False)


_SPACE = Segment(" ")
_GAP = Segment(" " * GAP)


@lru_cache(maxsize=256)
def _parse(style: str) -> Style:
    return Style.parse(style)


def _cell(console: Console, cell: Text, width: int, right: bool) -> list[Segment]:
    """A cell padded (or cut, with an ellipsis) to ``width``. Single-style cells, most of
    them, skip Rich's general text rendering."""
    if cell.spans or cell.cell_len > width or not isinstance(cell.style, str):
        text = cell.copy()
        text.truncate(width, overflow="ellipsis")
        pad = " " * (width - text.cell_len)
        segments = list(text.render(console))
        return [Segment(pad), *segments] if right else [*segments, Segment(pad)]
    pad = " " * (width - cell.cell_len)
    body = Segment(cell.plain, _parse(cell.style) if cell.style else None)
    return [Segment(pad), body] if right else [body, Segment(pad)]

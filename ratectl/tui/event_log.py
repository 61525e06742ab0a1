"""EventLog: overrides, locks, breaches and what happened to the connection, newest last.

A bounded :class:`~textual.widgets.RichLog` (``max_lines``); the lines come from
:mod:`ratectl.tui.events`, which is pure and tested as text.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from rich.text import Text
from textual.widgets import RichLog

from ratectl.tui import events


class EventLog(RichLog):
    """The dashboard's event log."""

    DEFAULT_CSS = """
    EventLog {
        height: 8;
        border-top: solid $primary-background;
        scrollbar-size-vertical: 1;
        scrollbar-size-horizontal: 0;
    }
    """

    def __init__(self, *, tz: tzinfo | None, max_lines: int, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=max_lines, wrap=True, markup=False, auto_scroll=True)
        self.tz = tz
        self.lines_written: list[str] = []  # plain text, for tests and copy-paste
        self._max = max_lines

    def event(self, msg: dict[str, Any]) -> None:
        self._add(events.describe(msg, self.tz))

    def notice(self, ts_ms: int, text: str) -> None:
        self._add(events.notice(ts_ms, self.tz, text))

    def _add(self, line: Text) -> None:
        self.write(line)
        self.lines_written.append(line.plain)
        del self.lines_written[: -self._max]

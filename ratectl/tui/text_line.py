"""TextLine: one line of text that only repaints when it changes.

``Label.update`` asks for a layout of the whole screen (the label may change size); a line
of fixed height never needs one, so text that changes several times a second (the
sparkline's title) uses this instead.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget


class TextLine(Widget):
    """Shows ``text``; setting it repaints the line, nothing else."""

    DEFAULT_CSS = """
    TextLine {
        height: 1;
    }
    """

    text: reactive[Text] = reactive(Text)

    def render(self) -> Text:
        return self.text

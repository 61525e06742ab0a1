"""FilterBar: type to keep only the pairs that match (``usd``, ``/cad``, ``btc``).

Shown by the app's ``/``; every keystroke posts ``Updated``; Enter keeps the filter and
goes back to the table (``Closed``), Escape clears it first.
"""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    """The pair filter."""

    BINDINGS = [Binding("escape", "clear_filter", "Clear filter")]

    DEFAULT_CSS = """
    FilterBar {
        dock: top;
        display: none;
        border: tall $accent;
    }
    FilterBar.-open {
        display: block;
    }
    """

    class Updated(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Closed(Message):
        pass

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder="pairs: usd, /cad, btc  (Enter keeps, Esc clears)", id=id)

    def action_clear_filter(self) -> None:
        self.value = ""
        self.post_message(self.Closed())

    def _on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(self.Updated(event.value.strip()))

    def _on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.post_message(self.Closed())

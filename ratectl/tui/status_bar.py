"""StatusBar: the daemon, the connection, its latency and the age of the last tick.

Attributes down: the app sets the reactives; ``now_ms`` moves once a second so the
age of the last tick keeps counting while nothing arrives.
"""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from ratectl.render import age

STATE_STYLE = {
    "connected": "bold green",
    "connecting": "yellow",
    "reconnecting": "bold yellow",
    "unreachable": "bold red",
    "refused": "bold red",
    "failed": "bold red",
    "offline": "dim",
}


class StatusBar(Widget):
    """``● connected  http://127.0.0.1:3000  store: store123  ping 2 ms  tick 0.4s ago``"""

    DEFAULT_CSS = """
    StatusBar {
        dock: top;
        height: 1;
        background: $panel;
        padding: 0 1;
    }
    """

    url = reactive("")
    state = reactive("offline")
    detail = reactive("")
    store: reactive[str | None] = reactive(None)
    latency_ms: reactive[float | None] = reactive(None)
    last_tick_ms: reactive[int | None] = reactive(None)
    now_ms = reactive(0)
    paused = reactive(False)
    read_only = reactive(False)
    filter_text = reactive("")

    def render(self) -> Text:
        text = Text.assemble(
            ("● ", STATE_STYLE.get(self.state, "")),
            (self.state, STATE_STYLE.get(self.state, "")),
            "  ",
            (self.url, "bold"),
            "  store: ",
            (self.store or "(global)", "bold"),
            "  ping ",
            ("-" if self.latency_ms is None else f"{self.latency_ms:.0f} ms", "bold"),
            "  tick ",
            ("-" if self.last_tick_ms is None else f"{self._tick_age()} ago", "bold"),
        )
        if self.paused:
            text.append("  PAUSED", style="bold reverse yellow")
        if self.read_only:
            text.append("  READ-ONLY", style="bold reverse blue")
        if self.filter_text:
            text.append(f"  filter: {self.filter_text}", style="italic")
        if self.detail and self.state in ("unreachable", "refused", "failed"):
            text.append(f"  {self.detail}", style="red")
        return text

    def _tick_age(self) -> str:
        assert self.last_tick_ms is not None
        ms = max(0, self.now_ms - self.last_tick_ms)
        return f"{ms / 1000:.1f}s" if ms < 60_000 else age(self.now_ms, self.last_tick_ms)

"""HubLink: the daemon's WebSocket hub, followed in a worker. Not displayed.

Attributes down, messages up: the app sets ``store``; the link follows that store's
channel with :func:`ratectl.stream.follow` (which reconnects with backoff and resumes
from the last ``seq`` without a gap) and posts what arrives as messages: ``Rates``,
``Event``, ``Notice``, ``Status`` and ``Latency``. Changing ``store`` restarts the
exclusive worker with a fresh position. A daemon that is not there yet is retried with
the same backoff; a refused key stops the link (``Status("refused")``).

Latency is measured on the connection itself: a ``ping`` every ``ping_interval``
seconds, the hub's ``pong`` echoes its ``timestamp``; the time between the two (on the
monotonic clock) is the round trip.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from textual import work
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from ratectl.errors import CtlError, Unreachable
from ratectl.stream import Follow, Tracker, follow
from ratectl.tui.events import EVENT_TYPES
from ratectl.tui.options import TuiOptions

WANTED = frozenset({"rate_update", "pong", *EVENT_TYPES})


class HubLink(Widget):
    """Follows the hub for ``store``; posts rates, events and the connection's state."""

    DEFAULT_CSS = """
    HubLink {
        display: none;
    }
    """

    store: reactive[str | None] = reactive(None, init=False)

    class Rates(Message):
        """Rates from one frame (``snapshot``: the whole table after a (re)connect)."""

        def __init__(self, store: str | None, rates: list[dict[str, Any]], snapshot: bool):
            super().__init__()
            self.store = store
            self.rates = rates
            self.snapshot = snapshot

    class Event(Message):
        """A discrete event: an override, a lock, a threshold breach."""

        def __init__(self, store: str | None, msg: dict[str, Any]) -> None:
            super().__init__()
            self.store = store
            self.msg = msg

    class Notice(Message):
        """Something to tell the operator: a reconnect, a resume, a gap."""

        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    class Status(Message):
        """connecting, connected, reconnecting, unreachable, refused or failed (and why)."""

        def __init__(self, state: str, detail: str = "") -> None:
            super().__init__()
            self.state = state
            self.detail = detail

    class Latency(Message):
        def __init__(self, ms: float) -> None:
            super().__init__()
            self.ms = ms

    def __init__(self, options: TuiOptions, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.options = options
        self._generation = 0
        self._pings: dict[int, float] = {}
        self.set_reactive(HubLink.store, options.store)

    def on_mount(self) -> None:
        if self.options.connect:
            self.follow()

    def watch_store(self) -> None:
        if self.options.connect:
            self.follow()

    @work(exclusive=True, group="hub", exit_on_error=False)
    async def follow(self) -> None:
        """Follow the hub until the worker is replaced (store switch) or the key is refused."""
        self._generation += 1
        store, o = self.store, self.options
        f = Follow(
            url=o.url,
            token=o.token,
            timeout=o.timeout,
            store=store,
            tracker=Tracker(events=WANTED),
            on_message=lambda msg: self._received(store, msg),
            on_notice=self._notice,
            delays=o.delays,
            on_open=self._opened,
        )
        delays = o.delays()
        told = False  # the outage is told once, not at every attempt
        while True:
            self.post_message(self.Status("connecting", o.url))
            try:
                await follow(f)
                return
            except Unreachable as exc:
                delay = next(delays)
                self.post_message(self.Status("unreachable", f"{exc.message}"))
                if not told:
                    self.post_message(
                        self.Notice(
                            f"daemon unreachable at {o.url}; retrying in {delay:.1f} s, then "
                            "with backoff until it is back"
                        )
                    )
                    told = True
                await asyncio.sleep(delay)
            except CtlError as exc:  # the key was refused, or the hub said no: retry cannot help
                self.post_message(self.Status("refused", exc.message))
                return
            except Exception as exc:  # a bug: say so on screen rather than go quiet
                self.post_message(self.Status("failed", f"{type(exc).__name__}: {exc}"))
                return

    def _received(self, store: str | None, msg: dict[str, Any]) -> bool:
        type_, data = msg.get("type"), msg.get("data")
        if not isinstance(data, dict):
            return False
        if type_ == "rate_update":
            rates = [r for r in data.get("rates") or [] if isinstance(r, dict)]
            self.post_message(self.Rates(store, rates, bool(data.get("snapshot"))))
        elif type_ == "pong":
            sent = self._pings.pop(data.get("clientTimestamp", -1), None)
            if sent is not None:
                self.post_message(self.Latency((time.monotonic() - sent) * 1000))
        else:
            self.post_message(self.Event(store, msg))
        return False

    def _notice(self, text: str) -> None:
        self.post_message(self.Notice(text))

    def _opened(self, ws: Any) -> None:
        self.post_message(self.Status("connected", self.options.url))
        self.run_worker(
            self._ping(ws, self._generation), group="ping", exclusive=True, exit_on_error=False
        )

    async def _ping(self, ws: Any, generation: int) -> None:
        """Probe the round trip until the connection closes; then say it is gone."""
        from websockets.exceptions import ConnectionClosed

        self._pings.clear()
        token = 0
        try:
            while True:
                token += 1
                self._pings[token] = time.monotonic()
                await ws.send(json.dumps({"type": "ping", "data": {"timestamp": token}}))
                try:
                    await asyncio.wait_for(ws.wait_closed(), self.options.ping_interval)
                    break
                except TimeoutError:
                    continue
        except ConnectionClosed:
            pass
        if generation == self._generation:
            self.post_message(self.Status("reconnecting", "connection lost"))

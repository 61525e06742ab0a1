"""The backplane: how a change reaches the hub of every node.

The service never calls the hub directly; it publishes backplane messages, and
each node's hub applies what arrives (``apply``). ``MemoryBackplane`` delivers
in-process, synchronously, and is the single-node mode (not a test double). A
Redis implementation publishes the same messages, encoded with ``encode``, to a
channel every node subscribes to, without touching the hub's logic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from ratehubd.engine.pairs import Pair, parse_pair
from ratehubd.hub.hub import Hub


@dataclass(frozen=True, slots=True)
class RatesDirty:
    pairs: tuple[str, ...]
    store_id: str | None = None


@dataclass(frozen=True, slots=True)
class EventMessage:
    type: str
    data: dict[str, Any]
    store_id: str | None
    seq: int
    ts: float


@dataclass(frozen=True, slots=True)
class MarketMessage:
    quotes: list[dict[str, Any]]
    ts: float


@dataclass(frozen=True, slots=True)
class QuotesMessage:
    """Market-data quotes one node of a fleet took in (``wire.quote_wire`` shape), for the
    other nodes' engines: every node prices from the same market. ``node`` is who took
    them in; that node has applied them already."""

    quotes: list[dict[str, Any]]
    node: str


Message = RatesDirty | EventMessage | MarketMessage | QuotesMessage
Handler = Callable[[Message], None]
_KINDS: dict[
    str, type[RatesDirty] | type[EventMessage] | type[MarketMessage] | type[QuotesMessage]
] = {
    "rates": RatesDirty,
    "event": EventMessage,
    "market": MarketMessage,
    "quotes": QuotesMessage,
}


class Backplane(Protocol):
    def publish(self, msg: Message) -> None: ...
    def subscribe(self, handler: Handler) -> None: ...


class MemoryBackplane:
    """In-process fan-out: every subscriber gets every message, at once, in order."""

    def __init__(self) -> None:
        self._handlers: list[Handler] = []
        self.published = 0

    def publish(self, msg: Message) -> None:
        self.published += 1
        for handler in self._handlers:
            handler(msg)

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)


def apply(hub: Hub, msg: Message) -> None:
    """Apply a backplane message to a node's hub."""
    if isinstance(msg, RatesDirty):
        pairs: set[Pair] = {parse_pair(p) for p in msg.pairs}
        hub.mark_rates(pairs, msg.store_id)
    elif isinstance(msg, EventMessage):
        hub.publish_event(msg.type, msg.data, msg.store_id, msg.ts, msg.seq)
    elif isinstance(msg, MarketMessage):
        hub.publish_market(msg.quotes, msg.ts)
    # QuotesMessage is for engines (ratehubd.adapters.fleet), not hubs.


def encode(msg: Message) -> str:
    kind = next(k for k, cls in _KINDS.items() if isinstance(msg, cls))
    return json.dumps({"kind": kind, **asdict(msg)}, separators=(",", ":"))


def decode(text: str) -> Message:
    raw = json.loads(text)
    cls = _KINDS[raw.pop("kind")]
    if cls is RatesDirty:
        raw["pairs"] = tuple(raw["pairs"])
    return cls(**raw)

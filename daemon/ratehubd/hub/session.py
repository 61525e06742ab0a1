"""One connected client: who it is, what it subscribed to, and its outbox.

The outbox is bounded (``Hub.queue_frames``). Frames wait there only while the
client's socket is not draining; see ``Hub._enqueue`` for what happens when it fills.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ratehubd.engine.pairs import Pair
from ratehubd.hub.ratelimit import TokenBucket

DASHBOARD = "dashboard"
STORE_OS = "store_os"
CLIENT_TYPES = (DASHBOARD, STORE_OS)

# The guide's clients read rate updates in two shapes. The dashboard, and any client
# that sends `subscribe` (the guide's API example does, as store_os), reads WRAPPED;
# the store terminal's service, which sends `rate_subscribe`, reads FLAT. clientType
# sets the shape until the first subscription message says otherwise.
WRAPPED = "data"
FLAT = "flat"

# Close codes, documented in README ("WebSocket close codes").
CLOSE_SLOW_CONSUMER = 4008  # the outbox overflowed; reconnect with ?lastSeq=<reason's seq>
CLOSE_RATE_LIMITED = 4029  # kept flooding after the error message
CLOSE_DRAINING = 1012  # service restart: reconnect with the resume position


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a session wants. ``pairs`` None means every configured pair."""

    pairs: frozenset[Pair] | None = None
    market_data: bool = False
    rate_type: str = "both"
    min_interval_ms: int = 0
    # "changes": lean rate frames (provenance, storeId, validUntil, stale only in snapshots
    # and when they change); "always": every rate complete in every frame.
    provenance: str = "changes"


class Frame:
    """One outgoing message, shared by every session of a group: encoded to UTF-8 once."""

    __slots__ = ("text", "seq", "conflatable", "data")

    def __init__(self, text: str, seq: int, conflatable: bool) -> None:
        self.text = text
        self.seq = seq
        self.conflatable = conflatable  # a rates frame: a newer snapshot supersedes it
        self.data = text.encode()  # once, here: a frame is written to many sockets


@dataclass(eq=False, slots=True)
class Session:
    id: int
    client_type: str
    store_id: str | None
    key_id: str
    bucket: TokenBucket
    sub: Subscription = field(default_factory=Subscription)
    outbox: deque[Frame] = field(default_factory=deque)
    last_seq: int = 0
    needs_snapshot: bool = False
    violations: int = 0
    closing: tuple[int, str] | None = None
    # The store the connection opened with (connection limits count by it).
    opened_store: str | None = None
    # Events at or below this seq are not sent: the client resumed with them already
    # (from another node of a fleet, ahead of this one).
    skip_through: int = 0
    # Resuming from before the hub's in-memory log: nothing but control frames is queued
    # until the adapter hands the older events in (``Hub.resume_history``).
    awaiting_history: bool = False
    # The last rate table the client confirmed applying (``ack``), when, and how many.
    ack_checksum: str | None = None
    ack_seq: int | None = None
    ack_at: float | None = None
    acks: int = 0
    stale_since: float | None = None  # announced stale (terminal_stale) since then
    connected_at: float = 0.0
    remote: str | None = None  # the peer's address, set by the adapter
    history: list[Any] = field(default_factory=list)  # the older events read so far
    # Message shape: WRAPPED ({type: "data", data: {type, ...}}) or FLAT ({type, data}).
    dialect: str = ""
    # The connection's fast path, set by the adapter: write a frame at once if the
    # socket drains (True), or decline (False) so the hub queues it in the outbox.
    write: Callable[[Frame], bool] | None = None

    def __post_init__(self) -> None:
        if not self.dialect:
            self.dialect = WRAPPED if self.client_type == DASHBOARD else FLAT

    @property
    def group_key(self) -> tuple[str | None, str, Subscription]:
        return (self.store_id, self.dialect, self.sub)

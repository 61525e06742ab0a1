"""Connects the sans-I/O hub to live connections.

When the hub has something to send (``Hub.wake``), the pump flushes it as soon
as one batch window has passed since the previous flush: ``hub.flush(now)``,
then each ready session's outbox goes to its connection if the connection is
draining; otherwise the frames stay in the outbox, where the hub's slow-consumer
policy applies. Flushing on demand rather than on a fixed beat means a change
waits at most one window and usually less (it never waits for the beat's
phase), two flushes are never closer than a window, and an idle hub does no
work. Replies to a client's own message (pong, errors, acks) are written at
once, not at the next window.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter, deque
from typing import Protocol

from ratehubd.errors import RateLimited, Unavailable
from ratehubd.hub.hub import Hub
from ratehubd.hub.session import Frame, Session

log = logging.getLogger("ratehub.hub")

CLOSE_POLICY = 1008  # the key was revoked (or is no longer allowed)


class Conn(Protocol):
    def writable(self) -> bool: ...
    def write(self, frames: list[Frame]) -> None: ...
    def write_now(self, frame: Frame) -> bool:
        """Write ``frame`` if the socket drains; False (nothing written) otherwise."""
        ...

    def close(self, code: int, reason: str) -> None: ...


class Clock(Protocol):
    def time(self) -> float: ...


class HubPump:
    def __init__(
        self,
        hub: Hub,
        clock: Clock,
        window_s: float,
        heartbeat_s: float,
        debug: bool = False,
        max_per_key: int = 10_000,
        max_per_store: int = 1_000,
    ) -> None:
        self.hub = hub
        self.clock = clock
        self.window_s = window_s
        self.heartbeat_s = heartbeat_s
        self.debug = debug
        self.max_per_key = max_per_key
        self.max_per_store = max_per_store
        self.conns: dict[int, Conn] = {}
        self._ids = itertools.count(1)
        self._blocked: set[Session] = set()
        self._per_key: Counter[str] = Counter()
        self._per_store: Counter[str | None] = Counter()
        # The other nodes' counts (``counts`` of each, summed), for fleet-wide limits.
        self.elsewhere: dict[str, int] = {}
        self.accepting = True
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.Handle | None = None  # the next flush
        self._retry: asyncio.TimerHandle | None = None  # the next try of blocked sockets
        self._write_soon = False
        self._last_flush = float("-inf")  # loop time
        hub.wake = self._arm
        hub.queued = self._queued
        # Fan-out latency (ms) from the first change in a window to the end of its writes.
        self.latencies: deque[float] = deque(maxlen=2048)

    def admit(self, key_id: str, store_id: str | None) -> None:
        """Refuse a new connection over the per-key or per-store limit (429 at the upgrade)."""
        if not self.accepting:
            raise Unavailable("the daemon is draining; reconnect in a moment")
        on_key = self._per_key[key_id] + self.elsewhere.get(f"k:{key_id}", 0)
        if on_key >= self.max_per_key:
            raise RateLimited(f"key {key_id} already has {self.max_per_key} open WebSockets")
        on_store = self._per_store[store_id] + self.elsewhere.get(f"s:{store_id}", 0)
        if store_id is not None and on_store >= self.max_per_store:
            raise RateLimited(
                f"store {store_id!r} already has {self.max_per_store} open WebSockets"
            )

    def counts(self) -> dict[str, int]:
        """This node's open connections per key (``k:ID``) and per store (``s:ID``)."""
        out = {f"k:{k}": n for k, n in self._per_key.items() if n > 0}
        out.update({f"s:{st}": n for st, n in self._per_store.items() if n > 0 and st})
        return out

    def attach(
        self,
        conn: Conn,
        client_type: str,
        store_id: str | None,
        key_id: str,
        last_seq: int | None = None,
        epoch: str | None = None,
    ) -> Session:
        sid = next(self._ids)
        session = self.hub.open(
            sid,
            client_type,
            store_id,
            key_id,
            self.clock.time(),
            last_seq=last_seq,
            last_epoch=epoch,
        )
        session.write = conn.write_now
        self.conns[sid] = conn
        self._per_key[key_id] += 1
        self._per_store[store_id] += 1
        if self.debug:
            log.info("ws open #%d %s store=%s key=%s", sid, client_type, store_id, key_id)
        self.write_ready()
        return session

    def detach(self, sid: int) -> None:
        session = self.hub.sessions.get(sid)
        if session is not None:
            self._blocked.discard(session)
            self._per_key[session.key_id] -= 1
            self._per_store[session.opened_store] -= 1
        self.hub.close(sid)
        self.conns.pop(sid, None)
        if self.debug:
            log.info("ws close #%d", sid)

    def close_key(self, key_id: str, reason: str) -> int:
        """Close every session of ``key_id`` now (1008): nothing more is queued or sent
        to them. Returns how many were closed."""
        closed = 0
        for sid, conn in list(self.conns.items()):
            session = self.hub.sessions.get(sid)
            if session is not None and session.key_id == key_id:
                session.closing = (CLOSE_POLICY, reason)
                session.outbox.clear()
                conn.close(CLOSE_POLICY, reason)
                closed += 1
        if closed:
            log.info("closed %d WebSocket session(s) of key %s: %s", closed, key_id, reason)
        return closed

    def receive(self, sid: int, text: str) -> None:
        session = self.hub.sessions.get(sid)
        if session is None or session.closing is not None:
            return  # closing (a revoked key, a slow consumer): nothing more is handled
        if self.debug:
            log.info("ws recv #%d %s", sid, text[:200])
        self.hub.receive(sid, text, self.clock.time())
        self.write_ready()

    def write_ready(self) -> None:
        ready = self.hub.take_ready()
        if self._blocked:
            ready.extend(self._blocked)
            self._blocked = set()
        for s in ready:
            conn = self.conns.get(s.id)
            if conn is None:
                continue
            if s.closing is not None:
                conn.close(*s.closing)
                continue
            if not s.outbox:
                continue
            if not conn.writable():
                self._blocked.add(s)
                continue
            frames = list(s.outbox)
            s.outbox.clear()
            conn.write(frames)
            self.hub.sent(s, frames)
        if self._blocked and self._retry is None and self._loop is not None:
            # Try them again in a window, on a timer of their own: the flush keeps
            # following the changes, not this.
            self._retry = self._loop.call_later(self.window_s, self._retry_blocked)

    def _retry_blocked(self) -> None:
        self._retry = None
        self.write_ready()

    def _queued(self) -> None:
        """A frame waits in an outbox (an event for a client with frames queued, a
        close owed): write what can be written on the loop's next turn."""
        if not self._write_soon and self._loop is not None:
            self._write_soon = True
            self._loop.call_soon(self._write_queued)

    def _write_queued(self) -> None:
        self._write_soon = False
        self.write_ready()

    def tick(self) -> None:
        first = self.hub.flush(self.clock.time())
        self.write_ready()
        if first is not None:
            self.latencies.append((self.clock.time() - first) * 1000)

    def latency_ms(self) -> dict[str, float | int | None]:
        """p50 and p99 of recent fan-out latencies."""
        xs = sorted(self.latencies)
        if not xs:
            return {"p50": None, "p99": None, "samples": 0}

        def pick(q: float) -> float:
            return round(xs[min(len(xs) - 1, int(q * len(xs)))], 3)

        return {"p50": pick(0.50), "p99": pick(0.99), "samples": len(xs)}

    def _arm(self) -> None:
        """Schedule a flush one window after the start of the previous one, or now if
        that has passed (so a client never gets more than 1 s / window rate frames a
        second, and the flush's own time does not stretch the window)."""
        loop = self._loop
        if self._timer is None and loop is not None:
            due = self._last_flush + self.window_s
            if due <= loop.time():
                # On the loop's next turn, ahead of its I/O callbacks: the flush then
                # follows the change closely, and the next window starts no later.
                self._timer = loop.call_soon(self._flush)
            else:
                self._timer = loop.call_at(due, self._flush)

    def _flush(self) -> None:
        self._timer = None
        assert self._loop is not None
        self._last_flush = self._loop.time()
        try:
            self.tick()
        finally:
            if self.hub.owes():
                # What a subscription's frequency held back, an owed snapshot, or (if
                # the flush failed; the loop logs it) the changes it did not send.
                self._arm()

    async def run(self) -> None:
        """Flush on demand and send heartbeats, until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._arm()  # anything that arrived before the loop ran
        try:
            while True:
                await asyncio.sleep(self.heartbeat_s)
                self.hub.heartbeat(self.clock.time())
                self.write_ready()
        finally:
            for timer in (self._timer, self._retry):
                if timer is not None:
                    timer.cancel()
            self._timer = self._retry = None
            self._loop = None

    def close_all(self, code: int, reason_for: dict[int, str] | None = None) -> None:
        for sid, conn in list(self.conns.items()):
            session = self.hub.sessions.get(sid)
            seq = session.last_seq if session else 0
            conn.close(code, f"server restarting; resume with lastSeq={seq}")

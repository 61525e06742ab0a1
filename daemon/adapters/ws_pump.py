"""Connects the sans-I/O hub to live connections.

Every batch window: ``hub.flush(now)``, then write each ready session's outbox
to its connection if the connection is draining; otherwise leave the frames in
the outbox, where the hub's slow-consumer policy applies. Replies to a client's
own message (pong, errors, acks) are written at once, not at the next window.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter, deque
from typing import Protocol

from daemon.errors import RateLimited, Unavailable
from daemon.hub.hub import Hub
from daemon.hub.session import Frame, Session

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
        self.accepting = True
        hub.direct = self._direct
        # Fan-out latency (ms) from the first change in a window to the end of its writes.
        self.latencies: deque[float] = deque(maxlen=2048)

    def admit(self, key_id: str, store_id: str | None) -> None:
        """Refuse a new connection over the per-key or per-store limit (429 at the upgrade)."""
        if not self.accepting:
            raise Unavailable("the daemon is draining; reconnect in a moment")
        if self._per_key[key_id] >= self.max_per_key:
            raise RateLimited(f"key {key_id} already has {self.max_per_key} open WebSockets")
        if store_id is not None and self._per_store[store_id] >= self.max_per_store:
            raise RateLimited(
                f"store {store_id!r} already has {self.max_per_store} open WebSockets"
            )

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

    def _direct(self, s: Session, frame: Frame) -> bool:
        """The hub's fast path: a session with nothing queued on a draining socket gets
        its frame written now, without a trip through its outbox."""
        conn = self.conns.get(s.id)
        return conn is not None and conn.write_now(frame)

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

    async def run(self) -> None:
        """Flush every window and send heartbeats, until cancelled."""
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + self.heartbeat_s
        while True:
            # One window from the start of one flush to the start of the next: the flush's
            # own time does not stretch the window, and two flushes are never closer than a
            # window (so a client never gets more than 1 s / window rate frames a second).
            started = loop.time()
            self.tick()
            if started >= next_beat:
                next_beat = started + self.heartbeat_s
                self.hub.heartbeat(self.clock.time())
                self.write_ready()
            await asyncio.sleep(max(0.0, started + self.window_s - loop.time()))

    def close_all(self, code: int, reason_for: dict[int, str] | None = None) -> None:
        for sid, conn in list(self.conns.items()):
            session = self.hub.sessions.get(sid)
            seq = session.last_seq if session else 0
            conn.close(code, f"server restarting; resume with lastSeq={seq}")

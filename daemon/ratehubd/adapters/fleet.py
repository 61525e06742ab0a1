"""One node of a fleet: the glue between the Redis backplane, the hub and the database.

The service publishes through ``FleetNode`` (it is the service's ``fanout``). Every
hub event, this node's or another's, goes through the sans-I/O ``Sequencer`` before it
reaches the hub, so each node's clients see the fleet's events in seq order, each
once. This adapter does the sequencer's I/O:

- it reads a missing seq range from the shared ``events`` table when a held event
  has waited ``wait_s``, or when the database's counter says events were committed
  that no message announced (polled every ``poll_s``, and at once after Redis
  reconnects): nothing is lost while Redis is down, only late;
- it brings another node's override and lock changes into this node's engine (read
  back from the database by id, exact decimals), so this node's rate frames show
  them. Override versions come from the database (one sequence per key for the whole
  fleet), so every engine takes the changes in the database's order and is never moved
  back to an older state.

It also elects the node that runs the jobs the fleet needs done once (``leads``: a
PostgreSQL advisory lock): threshold checks, and polling the market, whose quotes
reach the other nodes' engines as ``QuotesMessage`` (``on_quotes``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, text

from ratehubd import wire
from ratehubd.adapters.redis_backplane import RedisBackplane
from ratehubd.engine.cross import Quote
from ratehubd.engine.engine import RateEngine
from ratehubd.engine.model import Override
from ratehubd.engine.pairs import Pair
from ratehubd.errors import RatehubError
from ratehubd.hub.backplane import EventMessage, Handler, Message, QuotesMessage, apply
from ratehubd.hub.hub import Hub
from ratehubd.hub.sequencer import Sequencer
from ratehubd.store.repository import Store

log = logging.getLogger("ratehub.fleet")

OVERRIDE_EVENTS = frozenset(
    {wire.RATE_OVERRIDE_SET, wire.RATE_OVERRIDE_CLEARED, wire.RATE_OVERRIDE_EXPIRED}
)
LOCK_EVENTS = frozenset(
    {
        wire.RATE_LOCK_CREATED,
        wire.RATE_LOCK_CONSUMED,
        wire.RATE_LOCK_RELEASED,
        wire.RATE_LOCK_EXPIRED,
    }
)
MAX_FILL = 10_000  # seqs read from the log at once
# pg advisory lock held by the node that runs fleet-wide jobs, keyed by (this number, the
# schema's hash): fleets in different schemas of one database each elect their own leader.
LEADER_LOCK = 0x6C65_6164

Key = tuple[str, str | None]


def default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def _key(msg: EventMessage) -> Key | None:
    if msg.type not in OVERRIDE_EVENTS:
        return None
    return str(msg.data.get("currencyPair")), msg.store_id


def event_message(row: Any) -> EventMessage:
    """A logged event row as the backplane message that announced it."""
    return EventMessage(row.type, json.loads(row.payload), row.store_id, row.seq, row.ts_us / 1e6)


class FleetNode:
    def __init__(
        self,
        hub: Hub,
        engine: RateEngine,
        store: Store,
        backplane: RedisBackplane,
        *,
        wait_s: float = 0.5,
        poll_s: float = 2.0,
    ) -> None:
        self.hub = hub
        self.engine = engine
        self.store = store
        self.backplane = backplane
        self.poll_s = poll_s
        self.sequencer = Sequencer(hub.seq + 1, wait_s)
        self._local_seqs: set[int] = set()
        self._local_keys: dict[Key, int] = {}
        self._changes: asyncio.Queue[EventMessage] = asyncio.Queue()
        self._kick = asyncio.Event()
        self._poll_now = True
        self._db_errors: set[str] = set()
        self._leader: Connection | None = None
        self.polls = 0
        self.synced = 0  # other nodes' changes brought into this engine
        # Quotes other nodes took in, for this node's engine (the runtime sets it).
        self.on_quotes: Callable[[list[Quote]], object] | None = None
        self.quotes_received = 0
        self.quotes_heard_at = time.monotonic()  # when another node's quotes last arrived
        self.database_answers = True  # as of the last ``leads``
        backplane.subscribe(self._on_message)
        backplane.on_connect = self.catch_up

    # -- the Backplane protocol, for the service ------------------------------------------

    def publish(self, msg: Message) -> None:
        if isinstance(msg, EventMessage):
            self._local_seqs.add(msg.seq)
            key = _key(msg)
            if key is not None:
                self._local_keys[key] = max(msg.seq, self._local_keys.get(key, 0))
        self.backplane.publish(msg)
        if isinstance(msg, EventMessage) and msg.seq < self.sequencer.next:
            self._local_seqs.discard(msg.seq)  # delivered, or already read from the log

    def subscribe(self, handler: Handler) -> None:
        self.backplane.subscribe(handler)

    async def start(self, wait_s: float = 5.0) -> None:
        """Subscribe (waiting up to ``wait_s`` for Redis; a node starts without it)."""
        await self.backplane.start(wait_s)

    async def stop(self) -> None:
        await self.backplane.stop()
        await asyncio.to_thread(self._resign)

    # -- fleet-wide jobs --------------------------------------------------------------------

    async def leads(self) -> bool:
        """Whether this node runs the jobs the fleet needs done once, not once per node
        (threshold checks: else every node would announce and audit each breach; market
        polls: else every node would price from its own market). The
        leader holds a PostgreSQL advisory lock on a connection of its own; when that
        connection or the node dies, the lock goes and the next node to ask takes over."""
        return await asyncio.to_thread(self._lead)

    def _lead(self) -> bool:
        try:
            if self._leader is not None:
                self._leader.execute(text("SELECT 1"))
                self._leader.commit()
                self.database_answers = True
                return True
            conn = self.store.engine.connect()
            got = conn.execute(
                text("SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))"),
                {"k": LEADER_LOCK},
            )
            held = bool(got.scalar())
            conn.commit()  # the session-level lock outlives the transaction
            self.database_answers = True
            if not held:
                conn.close()
                return False
            self._leader = conn
            log.info("fleet: node %s runs the fleet-wide jobs (market, thresholds)", self.node_id)
            return True
        except Exception as exc:
            self.database_answers = False
            if self._leader is not None:
                log.warning("fleet: node %s lost the fleet-wide jobs (%s)", self.node_id, exc)
                with contextlib.suppress(Exception):
                    self._leader.invalidate()  # never back into the pool holding the lock
                    self._leader.close()
                self._leader = None
            return False

    def _resign(self) -> None:
        conn, self._leader = self._leader, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.execute(
                    text("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))"),
                    {"k": LEADER_LOCK},
                )
                conn.commit()
            with contextlib.suppress(Exception):
                conn.invalidate()
                conn.close()

    @property
    def node_id(self) -> str:
        return self.backplane.node_id

    def catch_up(self) -> None:
        """Check the database for events no message announced, now (Redis reconnected)."""
        self._poll_now = True
        self._kick.set()

    # -- delivery -------------------------------------------------------------------------

    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, QuotesMessage):
            if msg.node != self.node_id and self.on_quotes is not None:
                try:
                    quotes = [wire.quote_from_wire(q) for q in msg.quotes]
                except (KeyError, TypeError, ValueError) as exc:
                    log.warning("fleet: unreadable quotes from node %s: %s", msg.node, exc)
                    return
                self.quotes_received += len(quotes)
                self.quotes_heard_at = time.monotonic()
                self.on_quotes(quotes)
            return
        if not isinstance(msg, EventMessage):
            apply(self.hub, msg)
            return
        self._deliver(self.sequencer.offer(msg, time.monotonic()))
        if self.sequencer.held:
            self._kick.set()

    def _deliver(self, events: list[EventMessage]) -> None:
        for ev in events:
            apply(self.hub, ev)
            if ev.seq in self._local_seqs:
                self._local_seqs.discard(ev.seq)
            elif ev.type in OVERRIDE_EVENTS or ev.type in LOCK_EVENTS:
                self._changes.put_nowait(ev)

    # -- tasks ----------------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.gather(self._repair(), self._sync())

    async def _repair(self) -> None:
        next_poll = 0.0
        while True:
            try:
                now = time.monotonic()
                if self._poll_now or now >= next_poll:
                    self._poll_now = False
                    next_poll = now + self.poll_s
                    self.polls += 1
                    committed = await asyncio.to_thread(self.store.committed_seq)
                    span = self.sequencer.behind(committed)
                    if span is not None:
                        await self._fill(*span)
                span = self.sequencer.missing(time.monotonic())
                if span is not None:
                    await self._fill(*span)
                self._db_ok("the event log")
            except Exception as exc:  # the database is away: try again in a while
                self._db_down("the event log", exc)
                await asyncio.sleep(self.poll_s)
                self._poll_now = True
                continue
            deadline = self.sequencer.deadline()
            wake = next_poll if deadline is None else min(deadline, next_poll)
            self._kick.clear()
            if self._poll_now:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), max(0.0, wake - time.monotonic()))

    async def _fill(self, first: int, last: int) -> None:
        last = min(last, first + MAX_FILL - 1)
        rows = await asyncio.to_thread(self.store.events_between, first, last)
        before = self.sequencer.stats.gap_seqs
        out = self.sequencer.fill([event_message(r) for r in rows], first, last, time.monotonic())
        lost = self.sequencer.stats.gap_seqs - before
        if lost:
            log.warning(
                "fleet: %d event(s) between seq %d and %d are no longer in the log; "
                "clients resuming across them get a snapshot marked recovered=false",
                lost,
                first,
                last,
            )
        self._deliver(out)

    async def _sync(self) -> None:
        while True:
            ev = await self._changes.get()
            while True:
                try:
                    await self._sync_one(ev)
                    self._db_ok("overrides and locks")
                except (RatehubError, ValueError, KeyError) as exc:
                    log.warning("fleet: cannot apply %s seq %d here: %s", ev.type, ev.seq, exc)
                except Exception as exc:  # the database is away: retry, keeping the order
                    self._db_down("overrides and locks", exc)
                    await asyncio.sleep(self.poll_s)
                    continue
                break

    def _db_down(self, what: str, exc: BaseException) -> None:
        if what not in self._db_errors:
            log.warning("fleet: cannot read %s from the database (%s); retrying", what, exc)
        self._db_errors.add(what)

    def _db_ok(self, what: str) -> None:
        if what in self._db_errors:
            self._db_errors.discard(what)
            log.warning("fleet: reading %s from the database again", what)

    async def _sync_one(self, ev: EventMessage) -> None:
        if ev.type in LOCK_EVENTS:
            lock = await asyncio.to_thread(self.store.get_lock, str(ev.data["lockId"]))
            if lock is not None and lock.pair in self.engine.policies:
                if self.engine.locks.commit(lock):
                    self.synced += 1
            return
        key = _key(ev)
        assert key is not None
        if self._local_keys.get(key, 0) > ev.seq:
            return  # this node changed the key since: its state is newer
        pair = self.engine.pair(key[0])
        if ev.type == wire.RATE_OVERRIDE_SET:
            found = await asyncio.to_thread(self.store.get_override, str(ev.data["id"]))
            if found is None or found[1] != "active" or self._local_keys.get(key, 0) > ev.seq:
                return
            # Versions are the database's, one sequence per key across the fleet: the
            # engine takes this one only if it is newer than what it holds.
            if self.engine.overrides.commit(found[0]):
                self._changed(pair, key[1])
        else:
            current = self._current(pair, key[1])
            if current is not None and current.id == ev.data.get("id"):
                self.engine.overrides.remove(current)
                self._changed(pair, key[1])

    def _current(self, pair: Pair, store_id: str | None) -> Override | None:
        return next(
            (o for o in self.engine.overrides.all() if o.pair == pair and o.store_id == store_id),
            None,
        )

    def _changed(self, pair: Pair, store_id: str | None) -> None:
        self.synced += 1
        self.hub.mark_rates({pair}, store_id)

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        st = self.sequencer.stats
        return {
            **self.backplane.status(),
            "deliveredSeq": self.sequencer.delivered_seq,
            "held": self.sequencer.held,
            "reordered": st.reordered,
            "duplicates": st.duplicates,
            "filledFromDatabase": st.filled,
            "gapSeqs": st.gap_seqs,
            "engineSyncs": self.synced,
            "leads": self._leader is not None,  # polls the market, checks thresholds
            "quotesReceived": self.quotes_received,  # from the leading node
        }

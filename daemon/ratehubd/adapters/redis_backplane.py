"""The Redis backplane: fan-out between the nodes of a fleet, over Redis pub/sub.

``publish`` is called synchronously from the event loop (the service publishes right
after a durable write). It hands the message to this node's own subscribers at once,
and, for the kinds that other nodes need (``shared``: hub events by default), queues
it for Redis; a sender task drains the queue, so the loop never waits on Redis. A
receiver task holds the subscription and hands other nodes' messages to the
subscribers; each message carries its node id (``node|json``) and a node drops its
own echo.

Why pub/sub and not Streams: the durable, ordered log already exists (the ``events``
table in the shared database, seqs allocated in the writing transaction), so Redis is
only the doorbell that makes other nodes see an event within milliseconds. What
pub/sub loses while a node is disconnected is read back from the database by seq
(``ratehubd.adapters.fleet``): a second log in Redis would need trimming, consumer
groups and acknowledgements, and would still not be the source of truth.

When Redis goes away both tasks reconnect with capped exponential backoff (logged
once per outage, then on recovery); the send queue is bounded (``queue_limit``, the
oldest go first: other nodes read those events from the database anyway), and
``on_connect`` fires after every (re)subscription so the node can catch up.

"Rates changed" marks and market-data frames stay on the node: every node computes
rates from its own engine. What crosses Redis is what changes shared state (events)
and the quotes the leading node takes in (``QuotesMessage``), which every engine
prices from.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ratehubd.hub.backplane import EventMessage, Handler, Message, decode, encode
from ratehubd.urls import redact_url

log = logging.getLogger("ratehub.backplane")

SEP = "|"


def backoff(
    initial: float = 0.1, factor: float = 2.0, cap: float = 5.0, jitter: float = 0.1
) -> Iterator[float]:
    """Delays between reconnection attempts: exponential, capped, with a little jitter."""
    delay = initial
    while True:
        yield delay * (1 + random.uniform(-jitter, jitter))
        delay = min(cap, delay * factor)


class RedisBackplane:
    def __init__(
        self,
        url: str,
        channel: str,
        node_id: str,
        *,
        shared: tuple[type, ...] = (EventMessage,),
        queue_limit: int = 10_000,
        on_connect: Callable[[], None] | None = None,
        health_check_s: float = 5.0,
    ) -> None:
        if SEP in node_id:
            raise ValueError(f"node id may not contain {SEP!r}")
        self.url = url
        self.channel = channel
        self.node_id = node_id
        self.shared = shared
        self.on_connect = on_connect
        self._health_check_s = health_check_s
        self._handlers: list[Handler] = []
        self._queue: deque[str] = deque(maxlen=queue_limit)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ready = asyncio.Event()
        self.connected = False  # the subscription is live
        self.sender_connected = False
        self.published = 0  # handed to publish() on this node
        self.sent = 0  # delivered to Redis
        self.received = 0  # from other nodes
        self.echoes = 0  # our own, back from Redis (dropped)
        self.dropped = 0  # the send queue overflowed
        self.bad = 0  # messages that did not decode
        self.reconnects = 0
        self.lag_ms: float | None = None  # age of the last received event on arrival
        self._kv: aioredis.Redis | None = None  # for share_counts

    # -- the Backplane protocol -----------------------------------------------------------

    def publish(self, msg: Message) -> None:
        self.published += 1
        self._deliver(msg)
        if isinstance(msg, self.shared):
            if len(self._queue) == self._queue.maxlen:
                self.dropped += 1
            self._queue.append(f"{self.node_id}{SEP}{encode(msg)}")
            self._wake.set()

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self, wait_s: float = 5.0) -> bool:
        """Start the tasks and wait up to ``wait_s`` for the subscription. Returns whether
        it is live; if not, the node serves anyway and keeps trying (logged)."""
        self._tasks = [
            asyncio.create_task(self._receive(), name="backplane-receive"),
            asyncio.create_task(self._send(), name="backplane-send"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), wait_s)
        if not self.connected:
            log.warning(
                "backplane: Redis at %s is not reachable yet; serving this node alone and "
                "retrying in the background",
                redact_url(self.url),
            )
        return self.connected

    async def stop(self, flush_s: float = 1.0) -> None:
        """Give queued messages ``flush_s`` to leave, then stop both tasks."""
        deadline = time.monotonic() + flush_s
        while self._queue and self.sender_connected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._kv is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._kv.aclose()
            self._kv = None

    async def _share(self, kind: str, value: Any, ttl_s: float) -> list[Any]:
        """Put this node's ``value`` (JSON) under ``kind`` where the other nodes read it, and
        return theirs. A node that stops updating (it died) drops out after ``ttl_s``."""
        if self._kv is None:
            self._kv = self._client("kv")
        index = f"{self.channel}:{kind}"
        now = time.time()
        pipe = self._kv.pipeline(transaction=False)
        pipe.set(f"{index}:{self.node_id}", json.dumps(value), ex=max(1, round(ttl_s)))
        pipe.zadd(index, {self.node_id: now})
        pipe.zremrangebyscore(index, "-inf", now - ttl_s)
        pipe.zrange(index, 0, -1)
        nodes = (await pipe.execute())[-1]
        others = [n.decode() if isinstance(n, bytes) else str(n) for n in nodes]
        keys = [f"{index}:{n}" for n in others if n != self.node_id]
        return [json.loads(text) for text in await self._kv.mget(keys) if text] if keys else []

    async def share_terminals(
        self, terminals: list[dict[str, Any]], ttl_s: float = 3.0
    ) -> list[dict[str, Any]]:
        """This node's terminals (``GET /api/stores/{id}/terminals`` entries, with their
        ``storeId``) for the other nodes; theirs back."""
        return [t for theirs in await self._share("terminals", terminals, ttl_s) for t in theirs]

    async def share_counts(self, counts: dict[str, int], ttl_s: float = 3.0) -> dict[str, int]:
        """This node's counts (connections per key and per store, requests per key) for the
        other nodes; the sum of theirs back: fleet-wide limits."""
        total: dict[str, int] = {}
        for theirs in await self._share("counts", counts, ttl_s):
            for name, n in theirs.items():
                total[name] = total.get(name, 0) + int(n)
        return total

    def status(self) -> dict[str, Any]:
        return {
            "kind": "redis",
            "url": redact_url(self.url),
            "channel": self.channel,
            "node": self.node_id,
            "connected": self.connected and self.sender_connected,
            "published": self.published,
            "sent": self.sent,
            "received": self.received,
            "queued": len(self._queue),
            "dropped": self.dropped,
            "reconnects": self.reconnects,
            "lagMs": None if self.lag_ms is None else round(self.lag_ms, 1),
        }

    # -- tasks ----------------------------------------------------------------------------

    def _client(self, role: str) -> aioredis.Redis:
        return aioredis.Redis.from_url(
            self.url,
            client_name=f"ratehub:{self.node_id}:{role}",  # CLIENT LIST shows who is who
            socket_connect_timeout=5,
            socket_timeout=None,
            health_check_interval=self._health_check_s,
            # No silent retries inside redis-py: this adapter reconnects, logs the outage
            # and has the node catch up from the database once the subscription is back.
            retry=Retry(NoBackoff(), 0),
        )

    async def _receive(self) -> None:
        delays = backoff()
        while True:
            client = self._client("sub")
            try:
                async with client.pubsub() as ps:
                    await ps.subscribe(self.channel)
                    self._up("subscription")
                    delays = backoff()
                    while True:
                        m = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
                        if m is not None and m.get("type") == "message":
                            self._on_raw(m["data"])
            except (RedisError, OSError) as exc:
                delay = next(delays)
                self._down("subscription", exc, delay)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def _send(self) -> None:
        delays = backoff()
        while True:
            client = self._client("pub")
            try:
                await client.ping()
                self.sender_connected = True
                delays = backoff()
                while True:
                    while self._queue:
                        await client.publish(self.channel, self._queue[0])
                        self._queue.popleft()
                        self.sent += 1
                    self._wake.clear()
                    if not self._queue:
                        await self._wake.wait()
            except (RedisError, OSError) as exc:
                self.sender_connected = False
                delay = next(delays)
                log.debug("backplane: publishing failed (%s); retry in %.1f s", exc, delay)
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()

    def _up(self, what: str) -> None:
        if not self.connected:
            was_down = self._ready.is_set()
            self.connected = True
            if was_down:
                self.reconnects += 1
                log.warning("backplane: %s to Redis restored", what)
            else:
                log.info(
                    "backplane: node %s on %s channel %s",
                    self.node_id,
                    redact_url(self.url),
                    self.channel,
                )
        self._ready.set()
        if self.on_connect is not None:
            self.on_connect()

    def _down(self, what: str, exc: BaseException, delay: float) -> None:
        if self.connected:
            log.warning(
                "backplane: %s to Redis lost (%s); reconnecting with backoff, this node "
                "catches up from the database when it is back",
                what,
                str(exc) or type(exc).__name__,
            )
        else:
            log.debug("backplane: Redis still unreachable (%s); retry in %.1f s", exc, delay)
        self.connected = False

    def _on_raw(self, data: bytes | str) -> None:
        text = data.decode() if isinstance(data, bytes) else data
        node, sep, body = text.partition(SEP)
        if not sep:
            self.bad += 1
            return
        if node == self.node_id:
            self.echoes += 1
            return
        try:
            msg = decode(body)
        except (ValueError, KeyError, TypeError) as exc:
            self.bad += 1
            log.warning("backplane: undecodable message from node %s: %s", node, exc)
            return
        self.received += 1
        if isinstance(msg, EventMessage):
            self.lag_ms = max(0.0, (time.time() - msg.ts) * 1000)
        self._deliver(msg)

    def _deliver(self, msg: Message) -> None:
        for handler in self._handlers:
            try:
                handler(msg)
            except Exception:
                log.exception("backplane: a subscriber failed on %s", type(msg).__name__)

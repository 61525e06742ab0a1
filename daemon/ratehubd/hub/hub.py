"""The hub core.

Theory of operation
-------------------
Inputs: ``open``/``close`` a session, ``receive`` a client's text, ``mark_rates``
(which pairs changed, for which store), ``publish_event`` (a discrete event),
``flush(now)`` once per batch window, ``heartbeat(now)``. Outputs: frames in each
session's bounded outbox; ``take_ready()`` names the sessions with something to
send. The adapter writes them and reports back with ``sent``.

Batching and conflation: ``mark_rates`` only records *which* pairs are dirty;
``flush`` reads the current values once per store, so within a window the
latest value per (store, pair) wins. Sessions are grouped by (store, client type,
subscription) and each group's frame is encoded once and shared by every member.

Sequence: ``seq`` numbers the discrete events (overrides, locks, breaches) in
the order they are published, within an ``epoch`` naming the database they
belong to. Every frame carries the seq of the latest event published when it was
built; rate frames are state, not log entries, so they carry the position and
take no number. A client that reconnects with its last seq gets every retained
event after it plus a fresh rate snapshot, or, if the log no longer reaches back
that far, a snapshot marked ``recovered: false`` with the gap. Numbers are
allocated before the event is written (``allocate_seq``) and published in
allocation order, so a client never sees seq N+1 before N.

Slow consumers: see ``_enqueue``.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from ratehubd import wire
from ratehubd.engine.pairs import Pair, match_symbol
from ratehubd.errors import ProtocolError
from ratehubd.hub.ratelimit import TokenBucket
from ratehubd.hub.session import (
    CLIENT_TYPES,
    CLOSE_RATE_LIMITED,
    CLOSE_SLOW_CONSUMER,
    DASHBOARD,
    FLAT,
    WRAPPED,
    Frame,
    Session,
    Subscription,
)

# store_id -> {pair: wire rate dict}, every configured pair with market data.
RatesProvider = Callable[[str | None], dict[Pair, dict[str, Any]]]
Authorizer = Callable[[str, str | None], None]

CLIENT_MESSAGES = (
    "subscribe",
    "rate_subscribe",
    "unsubscribe",
    "resume",
    "ping",
    "push_rate",
    "ack",
)
_CHECKSUM = re.compile(r"[0-9a-f]{8}")
# Events for head office, not for the store's own screens.
DASHBOARD_ONLY = frozenset({wire.TERMINAL_STALE, wire.TERMINAL_CURRENT})
SENT_CHECKSUMS = 32  # per group: the tables a client may still acknowledge
# A client's push of a market price (the dashboard's pushRateData), handed to the
# service: (key id, data) -> the reply's data; raises a RatehubError to refuse.
Pusher = Callable[[str, dict[str, Any]], dict[str, Any]]
# (session id, first seq, last seq): read these logged events for a resuming session.
MAX_REPLAY = 100_000  # a resume replays at most this many events; further back is a gap
HistoryRequest = Callable[[int, int, int], None]


def store_rows(states: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """``GET /api/stores``: per store, its terminals by state (``confirming``: those that
    acknowledge at all), stores with stale terminals first."""
    rows: dict[str, dict[str, Any]] = {}
    for store_id, state in states:
        row = rows.setdefault(
            store_id,
            dict.fromkeys(("terminals", "confirming", "current", "stale", "unconfirmed"), 0),
        )
        row["terminals"] += 1
        row["confirming"] += state != "unconfirmed"
        if state != "confirming":
            row[state] += 1
    ordered = sorted(rows.items(), key=lambda kv: (-kv[1]["stale"], kv[0]))
    return [{"storeId": store_id, **row} for store_id, row in ordered]


def _no_push(key_id: str, data: dict[str, Any]) -> dict[str, Any]:
    raise ProtocolError("this hub does not take pushed prices")


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    seq: int
    store_id: str | None
    type: str
    data: dict[str, Any]
    ts_ms: int


@dataclass
class HubStats:
    frames: int = 0
    messages: int = 0
    conflated: int = 0
    dropped: int = 0
    slow_closes: int = 0
    rate_limited: int = 0
    protocol_errors: int = 0


def _num(x: Any) -> str:
    """JavaScript's ``String(n)``: shortest round-trip digits, plain notation for
    1e-6 <= |n| < 1e21 (no ".0" on whole numbers), else ``1.5e-7`` / ``1e+21``."""
    f = float(x)
    text = repr(f)
    if f == 0 or not math.isfinite(f):
        return {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}.get(text, "0")
    if 1e-6 <= abs(f) < 1e21:
        if "e" in text:
            text = format(Decimal(text), "f")
        return text[:-2] if text.endswith(".0") else text
    digits, _, exp = format(Decimal(text), "e").partition("e")
    return f"{digits}e{'+' if int(exp) >= 0 else '-'}{abs(int(exp))}"


def checksum(rates: Iterable[dict[str, Any]]) -> str:
    """CRC-32 (8 hex digits) of the concatenated ``PAIR=buy/sell;`` of each rate, sorted by
    pair; numbers as JavaScript's ``String()`` prints them, a missing side as ``undefined``."""
    parts = sorted(
        f"{r['currencyPair']}={_num(r['buyRate']) if 'buyRate' in r else 'undefined'}/"
        f"{_num(r['sellRate']) if 'sellRate' in r else 'undefined'};"
        for r in rates
    )
    return f"{zlib.crc32(''.join(parts).encode()):08x}"


# Rate fields a lean frame carries only when they change (the snapshot always has them);
# the rest (what the guide's clients read) are in every rate of every frame.
LEAN_FIELDS = ("storeId", "validUntil", "stale", "provenance")
_UNSENT = object()
_DIGITS = re.compile(r"(?<!\S)[0-9][0-9.eE+-]*(?!\S)")  # a number standing alone


def _lean_key(rate: dict[str, Any]) -> tuple[Any, ...]:
    """What a lean frame compares to decide whether to resend the extras: provenance
    without the market mid, its time and the legs' prices, which move with every tick."""
    prov = rate.get("provenance") or {}
    return (
        rate.get("storeId"),
        rate.get("validUntil"),
        rate.get("stale"),
        tuple(prov.get("marketSources") or ()),
        prov.get("spreadApplied"),
        prov.get("tick"),
        prov.get("override"),
        tuple(_DIGITS.sub("", leg) for leg in prov.get("legs") or ()),  # not their prices
    )


def _allow_all(key_id: str, store_id: str | None) -> None:
    return None


class Hub:
    def __init__(
        self,
        *,
        epoch: str,
        pairs: Iterable[Pair],
        rates: RatesProvider,
        queue_frames: int = 64,
        messages_per_second: float = 20.0,
        message_burst: int = 40,
        heartbeat_interval_ms: int = 30000,
        first_seq: int = 1,
        log_size: int = 10_000,
        authorize: Authorizer = _allow_all,
        push: Pusher = _no_push,
        resume_ahead: int = 0,
        fetch_history: HistoryRequest | None = None,
        confirm_timeout_s: float = 3.0,
    ) -> None:
        self.epoch = epoch
        self.pairs = frozenset(pairs)
        self._rates = rates
        self.queue_frames = queue_frames
        self._msg_rate = messages_per_second
        self._msg_burst = message_burst
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._authorize = authorize
        self._push = push
        # In a fleet a client may resume here with a lastSeq this node has not delivered
        # yet (it came from a node a few ms ahead): up to this many seqs ahead, the
        # resume succeeds and the session skips the events it already has as they come.
        self.resume_ahead = resume_ahead
        # A client resuming from before the in-memory log: the adapter reads the events
        # from the database's log (``fetch_history(sid, first, last)``) and hands them to
        # ``resume_history``; None: such a resume is a gap.
        self.fetch_history = fetch_history
        self.seq = first_seq - 1  # the latest event published
        self._allocated = self.seq
        self.log: deque[LoggedEvent] = deque(maxlen=log_size)
        self.log_floor = first_seq - 1  # events at or below this seq are no longer retained
        self.sessions: dict[int, Session] = {}
        self._groups: dict[tuple[str | None, str, Subscription], set[Session]] = {}
        self._group_sent: dict[tuple[str | None, str, Subscription], float] = {}
        self._group_pending: dict[tuple[str | None, str, Subscription], set[Pair]] = {}
        # Per lean group: per pair, the extras key its last frame carried.
        self._group_extras: dict[tuple[str | None, str, Subscription], dict[str, Any]] = {}
        # Per group: the checksums of the tables it was last sent, newest last (``ack``).
        self._group_checksums: dict[
            tuple[str | None, str, Subscription], deque[tuple[str, float]]
        ] = {}
        self.confirm_timeout_s = confirm_timeout_s
        self._dirty_all: set[Pair] = set()
        self._dirty_store: dict[str, set[Pair]] = {}
        self._marks = 0
        self._first_mark: float | None = None
        self._market_pending: dict[str, dict[str, Any]] = {}
        # Who asked for market data: the market flush visits them, not every session.
        self._market_subs: set[Session] = set()
        self._ready: set[Session] = set()
        self._resnap: set[Session] = set()  # dropped rate frames: a snapshot is owed
        self.stats = HubStats()
        # The adapter's alarms. ``wake``: called once, at the first change after a
        # ``flush``; the adapter flushes as soon as a window has passed since the last
        # flush, so values leave as fresh as the window allows and an idle hub costs
        # nothing. ``queued``: a frame waits in an outbox or a close is owed (a socket
        # that did not drain, mostly); the adapter calls ``take_ready`` soon. Kept apart
        # so that a stalled client never sets the flush's phase.
        self.wake: Callable[[], None] | None = None
        self.queued: Callable[[], None] | None = None
        self._armed = False

    def _poke(self) -> None:
        if not self._armed:
            self._armed = True
            if self.wake is not None:
                self.wake()

    def owes(self) -> bool:
        """Whether a flush is owed without any new change: a group held back by its
        ``frequency``, a snapshot owed after dropped frames, or changes a flush that
        failed did not send."""
        return bool(
            self._group_pending
            or self._resnap
            or self._dirty_all
            or self._dirty_store
            or self._market_pending
        )

    def configure_limits(self, messages_per_second: float, message_burst: int) -> None:
        """New inbound limits, for sessions opened from now on (reload)."""
        self._msg_rate = messages_per_second
        self._msg_burst = message_burst

    # -- sessions -------------------------------------------------------------------------

    def open(
        self,
        sid: int,
        client_type: str,
        store_id: str | None,
        key_id: str,
        now: float,
        *,
        last_seq: int | None = None,
        last_epoch: str | None = None,
    ) -> Session:
        if client_type not in CLIENT_TYPES:
            raise ProtocolError(
                f"clientType must be one of {', '.join(CLIENT_TYPES)}, got {client_type!r}"
            )
        bucket = TokenBucket(self._msg_rate, self._msg_burst, now)
        s = Session(
            sid, client_type, store_id, key_id, bucket, last_seq=self.seq, opened_store=store_id
        )
        s.connected_at = now
        self.sessions[sid] = s
        self._join(s)
        welcome = {
            "sessionId": sid,
            "clientType": client_type,
            "storeId": store_id,
            "epoch": self.epoch,
            "seq": self.seq,
            "heartbeatIntervalMs": self.heartbeat_interval_ms,
            "protocol": wire.PROTOCOL_VERSION,
            "accepts": list(CLIENT_MESSAGES),
        }
        # Resuming, the welcome leaves the client's position where it was: what it missed
        # is still to come (a client that drops now resumes from the same place).
        position = (self.seq, self.epoch) if last_seq is None else (last_seq, last_epoch)
        self._control(s, wire.message(wire.WELCOME, welcome, int(now * 1000)), position)
        if last_seq is not None:
            self._resume(s, last_seq, last_epoch, now)
        else:
            self._snapshot(s, now)
        return s

    def close(self, sid: int) -> None:
        s = self.sessions.pop(sid, None)
        if s is not None:
            self._leave(s)
            self._ready.discard(s)

    def _join(self, s: Session) -> None:
        self._groups.setdefault(s.group_key, set()).add(s)
        if s.sub.market_data:
            self._market_subs.add(s)

    def _leave(self, s: Session) -> None:
        self._market_subs.discard(s)
        members = self._groups.get(s.group_key)
        if members is not None:
            members.discard(s)
            if not members:
                del self._groups[s.group_key]
                self._group_sent.pop(s.group_key, None)
                self._group_pending.pop(s.group_key, None)
                self._group_extras.pop(s.group_key, None)
                self._group_checksums.pop(s.group_key, None)

    def _resubscribe(
        self, s: Session, store_id: str | None, sub: Subscription, dialect: str | None = None
    ) -> None:
        if store_id != s.store_id:
            self._authorize(s.key_id, store_id)
        self._leave(s)
        s.store_id, s.sub = store_id, sub
        if dialect is not None:
            s.dialect = dialect
        self._join(s)

    # -- inbound --------------------------------------------------------------------------

    def receive(self, sid: int, text: str, now: float) -> None:
        """Handle one text frame from a client. Bad input gets an ``error`` message;
        abuse sets ``session.closing``."""
        s = self.sessions[sid]
        if not s.bucket.take(now):
            self.stats.rate_limited += 1
            s.violations += 1
            if s.violations > 3:
                self._close(s, CLOSE_RATE_LIMITED, "message rate limit exceeded repeatedly")
            else:
                self._error(
                    s, "rate_limited", f"slow down: at most {self._msg_rate:g} messages/s", now
                )
            return
        try:
            msg = wire.WsMessage.model_validate_json(text)
        except ValidationError:
            self.stats.protocol_errors += 1
            self._error(
                s,
                "invalid_message",
                'expected JSON {"type": ..., "data": {...}}; '
                f"accepted types: {', '.join(CLIENT_MESSAGES)}",
                now,
            )
            return
        handler = getattr(self, f"_on_{msg.type}", None)
        if msg.type not in CLIENT_MESSAGES or handler is None:
            self._error(
                s,
                "unknown_type",
                f"unknown message type {msg.type!r}; accepted: {', '.join(CLIENT_MESSAGES)}",
                now,
            )
            return
        if msg.data is not None and not isinstance(msg.data, dict):
            self.stats.protocol_errors += 1
            got = wire.encode({"d": msg.data})[5:-1][:40]
            self._error(s, "invalid_data", f"{msg.type}: data must be an object, got {got}", now)
            return
        try:
            handler(s, msg.data or {}, now)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            self._error(s, "invalid_data", f"{msg.type}: {where}: {first['msg']}", now)
        except ProtocolError as exc:
            self._error(s, exc.code, exc.message, now)
        except Exception as exc:  # a RatehubError from authorize
            code = getattr(exc, "code", "error")
            self._error(s, code, getattr(exc, "message", str(exc)), now)

    def _pairs_for(self, symbols: Iterable[str]) -> tuple[frozenset[Pair] | None, list[str]]:
        pairs: set[Pair] = set()
        unknown = []
        symbols = list(symbols)
        if not symbols:
            return None, []
        for sym in symbols:
            found = match_symbol(sym, self.pairs)
            if not found:
                unknown.append(sym)
            pairs |= found
        return frozenset(pairs), unknown

    def _on_subscribe(self, s: Session, data: dict[str, Any], now: float) -> None:
        req = wire.SubscribeData.model_validate(data)
        pairs, unknown = self._pairs_for(req.symbols)
        kind = req.subscriptionType
        sub = Subscription(
            pairs=pairs,
            market_data=kind in ("market_data", "all") or s.sub.market_data,
            rate_type=s.sub.rate_type,
            min_interval_ms=max(0, req.frequency or 0),
            provenance=req.provenance or s.sub.provenance,
        )
        store = req.storeId if req.storeId is not None else s.store_id
        self._resubscribe(s, store, sub, WRAPPED)
        self._ack(s, "subscribe", unknown, now)
        self._snapshot(s, now)

    def _on_rate_subscribe(self, s: Session, data: dict[str, Any], now: float) -> None:
        req = wire.RateSubscribeData.model_validate(data)
        pairs, unknown = self._pairs_for(req.currencies)
        sub = Subscription(
            pairs=pairs,
            market_data=req.includeMarketData,
            rate_type=req.rateType,
            min_interval_ms=s.sub.min_interval_ms,
            provenance=req.provenance or s.sub.provenance,
        )
        store = req.storeId if req.storeId is not None else s.store_id
        self._resubscribe(s, store, sub, FLAT)
        self._ack(s, "rate_subscribe", unknown, now)
        self._snapshot(s, now)

    def _on_unsubscribe(self, s: Session, data: dict[str, Any], now: float) -> None:
        symbols = data.get("symbols") or data.get("currencies") or []
        if not isinstance(symbols, list):
            raise ProtocolError("unsubscribe: symbols must be a list")
        current = s.sub.pairs if s.sub.pairs is not None else self.pairs
        remove, _ = self._pairs_for(symbols)
        left = frozenset() if remove is None else current - remove
        sub = Subscription(
            left, s.sub.market_data and bool(left), s.sub.rate_type, s.sub.min_interval_ms
        )
        self._resubscribe(s, s.store_id, sub)
        self._ack(s, "unsubscribe", [], now)

    def _on_resume(self, s: Session, data: dict[str, Any], now: float) -> None:
        last = data.get("lastSeq")
        if not isinstance(last, int) or isinstance(last, bool) or last < 0:
            raise ProtocolError("resume: lastSeq must be a non-negative integer")
        epoch = data.get("epoch")
        self._resume(s, last, epoch if isinstance(epoch, str) else None, now)

    def _on_push_rate(self, s: Session, data: dict[str, Any], now: float) -> None:
        """``{"type": "push_rate", "data": {"symbol": "BTC", "priceCAD": 97000}}``; only
        keys allowed to feed. Answered with ``push_ack`` or an ``error``."""
        reply = self._push(s.key_id, data)
        self._control(s, wire.message("push_ack", reply, int(now * 1000)))

    def _on_ack(self, s: Session, data: dict[str, Any], now: float) -> None:
        """A terminal confirms the rate table it applied (by the frame's checksum). No
        reply: acks are cheap by design. The hub keeps the last one per session."""
        text = data.get("checksum")
        if not isinstance(text, str) or _CHECKSUM.fullmatch(text) is None:
            raise ProtocolError(
                'ack: checksum must be the 8 hex digits of a rate frame\'s "checksum"'
            )
        seq = data.get("seq")
        if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool) or seq < 0):
            raise ProtocolError("ack: seq must be a non-negative integer (the frame's seq)")
        sent = self._group_checksums.get(s.group_key, ())
        # Nearly every ack is of the newest table: look there before the whole history.
        if (not sent or sent[-1][0] != text) and all(text != c for c, _ in sent):
            raise ProtocolError(
                f"ack: checksum {text} was not sent to this connection recently; acknowledge "
                "the checksum of a rate frame you applied"
            )
        s.ack_checksum, s.ack_seq, s.ack_at, s.acks = text, seq, now, s.acks + 1

    def _unconfirmed_since(self, s: Session) -> float | None:
        """When the first table newer than the session's last ack was sent (None: it holds
        the newest, or never acked). With frames every tick the newest table is always
        young: its age alone would never say a frozen screen is stale."""
        if s.ack_checksum is None:
            return None
        sent = self._group_checksums.get(s.group_key)
        if not sent or sent[-1][0] == s.ack_checksum:
            return None
        since = sent[0][1]  # the acked one is older than anything remembered
        for i, (checksum_, _) in enumerate(sent):
            if checksum_ == s.ack_checksum and i + 1 < len(sent):
                since = sent[i + 1][1]
        return since

    def terminal_state(self, s: Session, now: float) -> str:
        """``unconfirmed`` (never acked: the guide's clients), ``current`` (its last ack is
        the newest table sent to it), ``stale`` (a newer table than its last ack has been
        out ``confirm_timeout_s`` or more), or ``confirming`` (within the timeout)."""
        if s.ack_checksum is None:
            return "unconfirmed"
        since = self._unconfirmed_since(s)
        if since is None:
            return "current"
        return "stale" if now - since >= self.confirm_timeout_s else "confirming"

    def check_terminals(self, now: float) -> list[tuple[str, str | None, dict[str, Any]]]:
        """Terminals that became stale, or current again after being stale, since the last
        call: (event type, store, data). Once per begin and once per clear, never per frame."""
        changes = []
        for s in self.sessions.values():
            state = self.terminal_state(s, now)
            if state == "stale" and s.stale_since is None:
                s.stale_since = self._unconfirmed_since(s) or now
                changes.append((wire.TERMINAL_STALE, s))
            elif state == "current" and s.stale_since is not None:
                changes.append((wire.TERMINAL_CURRENT, s))
                s.stale_since = None
        out = []
        for type_, s in changes:
            sent = self._group_checksums.get(s.group_key)
            since = s.stale_since if type_ == wire.TERMINAL_STALE else now
            data = {
                "storeId": s.store_id,
                "sessionId": s.id,
                "keyId": s.key_id,
                "expectedChecksum": sent[-1][0] if sent else None,
                "ackChecksum": s.ack_checksum,
                "since": wire.iso(datetime.fromtimestamp(since or now, UTC)),
            }
            out.append((type_, s.store_id, data))
        return out

    def confirmations(self, now: float) -> dict[str, int]:
        """How many terminals acknowledge, and how many are current and stale."""
        states = [self.terminal_state(s, now) for s in self.sessions.values()]
        return {
            "confirming": len(states) - states.count("unconfirmed"),
            "current": states.count("current"),
            "stale": states.count("stale"),
        }

    def store_states(self, now: float) -> list[tuple[str, str]]:
        """(store, terminal state) of every connection on a store's channel."""
        return [
            (s.store_id, self.terminal_state(s, now))
            for s in self.sessions.values()
            if s.store_id is not None
        ]

    def terminals(self, store_id: str, now: float) -> list[dict[str, Any]]:
        """The connections on a store's channel and what each confirmed, stale first."""
        order = {"stale": 0, "confirming": 1, "current": 2, "unconfirmed": 3}
        out = []
        for s in self.sessions.values():
            if s.store_id != store_id:
                continue
            state = self.terminal_state(s, now)
            since = self._unconfirmed_since(s)
            sent = self._group_checksums.get(s.group_key)
            out.append(
                {
                    "sessionId": s.id,
                    "clientType": s.client_type,
                    "keyId": s.key_id,
                    "remoteAddr": s.remote,
                    "connectedAt": wire.iso(datetime.fromtimestamp(s.connected_at, UTC)),
                    "lastSentSeq": s.last_seq,
                    "ackSeq": s.ack_seq,
                    "ackChecksum": s.ack_checksum,
                    "current": None if state == "unconfirmed" else state == "current",
                    "staleSinceMs": (
                        int(since * 1000) if state == "stale" and since is not None else None
                    ),
                    "state": state,
                    "expectedChecksum": sent[-1][0] if sent else None,
                    "acks": s.acks,
                }
            )
        return sorted(out, key=lambda t: (order[t["state"]], t["sessionId"]))

    def _on_ping(self, s: Session, data: dict[str, Any], now: float) -> None:
        pong = {"serverTime": int(now * 1000), "clientTimestamp": data.get("timestamp")}
        self._control(s, wire.message(wire.PONG, pong, int(now * 1000)))

    def _ack(self, s: Session, what: str, unknown: list[str], now: float) -> None:
        sub = s.sub
        data = {
            "request": what,
            "storeId": s.store_id,
            "pairs": sorted(str(p) for p in (sub.pairs if sub.pairs is not None else self.pairs)),
            "unknownSymbols": unknown,
            "marketData": sub.market_data,
            "rateType": sub.rate_type,
            "frequency": sub.min_interval_ms,
            "provenance": sub.provenance,
        }
        self._control(s, wire.message(wire.SUBSCRIBED, data, int(now * 1000)))

    def _error(self, s: Session, code: str, text: str, now: float) -> None:
        self._control(s, wire.message(wire.ERROR, {"code": code, "message": text}, int(now * 1000)))

    # -- outbound -------------------------------------------------------------------------

    def mark_rates(
        self, pairs: Iterable[Pair], store_id: str | None = None, now: float | None = None
    ) -> None:
        """Rates of ``pairs`` changed for ``store_id`` (None: every store)."""
        pairs = set(pairs)
        self._marks += len(pairs)
        if self._first_mark is None:
            self._first_mark = now
        self._poke()
        if store_id is None:
            self._dirty_all |= pairs
        else:
            self._dirty_store.setdefault(store_id, set()).update(pairs)

    def allocate_seq(self) -> int:
        """Number the next discrete event (the caller writes it with this seq first)."""
        self._allocated += 1
        return self._allocated

    def publish_event(
        self,
        type_: str,
        data: dict[str, Any],
        store_id: str | None,
        now: float,
        seq: int | None = None,
    ) -> LoggedEvent:
        """Queue a discrete event for every session that should see it; never conflated."""
        seq = self.allocate_seq() if seq is None else seq
        self.seq = max(self.seq, seq)
        ev = LoggedEvent(seq, store_id, type_, data, int(now * 1000))
        self._retain(ev)
        for s in self.sessions.values():
            if self._sees(s, ev) and ev.seq > s.skip_through:
                self._enqueue(s, Frame(self._event_text(s.dialect, ev), ev.seq, False))
        return ev

    def restore_log(self, events: Iterable[LoggedEvent], floor: int) -> None:
        """At start-up: the retained events, oldest first, and ``floor``, the seq at and
        below which nothing is retained (the constructor assumed nothing was)."""
        self.log_floor = floor
        for ev in events:
            self._retain(ev)

    def _retain(self, ev: LoggedEvent) -> None:
        if len(self.log) == self.log.maxlen:
            self.log_floor = self.log[0].seq
        self.log.append(ev)

    def publish_market(self, quotes: list[dict[str, Any]], now: float) -> None:
        """Queue ``market_data_update`` for dashboards that asked for market data; like
        rates, quotes are conflated per pair and leave once per window (``flush``)."""
        if self._first_mark is None:
            self._first_mark = now
        self._poke()
        for q in quotes:
            self._market_pending[q["currencyPair"]] = q

    def publish_status(self, data: dict[str, Any], now: float) -> None:
        """The guide's ``system_status`` event, to dashboards (conflatable, not logged)."""
        ts = int(now * 1000)
        frames: dict[str, Frame] = {}
        for s in self.sessions.values():
            if s.client_type == DASHBOARD:
                frame = frames.get(s.dialect)
                if frame is None:
                    msg = self._dialect(s.dialect, wire.SYSTEM_STATUS, data, ts, self.seq)
                    frame = frames[s.dialect] = Frame(wire.encode(msg), self.seq, True)
                self._enqueue(s, frame)

    def _flush_market(self, now: float) -> None:
        quotes = [self._market_pending[k] for k in sorted(self._market_pending)]
        self._market_pending.clear()
        ts = int(now * 1000)
        frames: dict[str, Frame] = {}
        for s in self._market_subs:
            mine = quotes
            if s.sub.pairs is not None:
                names = {str(p) for p in s.sub.pairs}
                mine = [q for q in quotes if q["currencyPair"] in names]
                if not mine:
                    continue
                payload = {"quotes": mine}
                text = wire.encode(
                    self._dialect(s.dialect, wire.MARKET_DATA_UPDATE, payload, ts, self.seq)
                )
                self._enqueue(s, Frame(text, self.seq, True))
                continue
            frame = frames.get(s.dialect)
            if frame is None:
                payload = {"quotes": quotes}
                text = wire.encode(
                    self._dialect(s.dialect, wire.MARKET_DATA_UPDATE, payload, ts, self.seq)
                )
                frame = frames[s.dialect] = Frame(text, self.seq, True)
            self._enqueue(s, frame)

    def heartbeat(self, now: float) -> None:
        data = {"serverTime": int(now * 1000), "epoch": self.epoch, "seq": self.seq}
        msg = wire.message(wire.HEARTBEAT, data, int(now * 1000), seq=self.seq, epoch=self.epoch)
        text = wire.encode(msg)
        frame = Frame(text, self.seq, True)  # a newer heartbeat supersedes it
        for s in self.sessions.values():
            self._enqueue(s, frame, control=True)

    def flush(self, now: float) -> float | None:
        """Close the batch window: one rates frame per group whose pairs changed, and one
        market frame per market-data subscriber. Returns when the oldest change in the
        window was made (for the fan-out latency metric), or None if nothing changed."""
        first, self._first_mark = self._first_mark, None
        self._armed = False
        if self._market_pending:
            self._flush_market(now)
        if self._resnap:
            owed, self._resnap = self._resnap, set()
            for s in owed:
                if s.needs_snapshot and self.sessions.get(s.id) is s:
                    self._snapshot(s, now)
        if not (self._dirty_all or self._dirty_store or self._group_pending):
            return first
        tables: dict[str | None, dict[Pair, dict[str, Any]]] = {}
        distinct = len(self._dirty_all) + sum(len(v) for v in self._dirty_store.values())
        self.stats.conflated += max(0, self._marks - distinct)
        for key, members in self._groups.items():
            store_id, dialect, sub = key
            dirty = (
                self._dirty_all | self._dirty_store.get(store_id, set())
                if store_id
                else self._dirty_all
            )
            pending = self._group_pending.get(key)
            if pending:
                dirty = dirty | pending
            if sub.pairs is not None:
                dirty = dirty & sub.pairs
            if not dirty:
                continue
            # A wall clock stepped back counts as time passed, not as a reason to go quiet.
            since = now - self._group_sent.get(key, float("-inf"))
            if 0 <= since < sub.min_interval_ms / 1000:
                self._group_pending[key] = set(dirty)
                continue
            self._group_pending.pop(key, None)
            self._group_sent[key] = now
            if store_id not in tables:
                tables[store_id] = self._rates(store_id)
            lean = None if sub.provenance == "always" else self._group_extras.setdefault(key, {})
            table = tables[store_id]
            text = self._rates_text(store_id, dialect, sub, table, dirty, now, self.seq, {}, lean)
            frame = Frame(text, self.seq, True)
            self._fan_out(members, frame, now)
        self._marks = 0
        self._dirty_all.clear()
        self._dirty_store.clear()
        return first

    def _fan_out(self, members: set[Session], frame: Frame, now: float) -> None:
        """One group's frame to each member: the hot loop of the hub. A member with an
        empty outbox goes straight to its connection (``Session.write``); anything else
        takes ``_enqueue``."""
        seq, written = frame.seq, 0
        for s in members:
            write = s.write
            if s.needs_snapshot:
                self._snapshot(s, now)
            elif (
                write is not None
                and not s.outbox
                and s.closing is None
                and not s.awaiting_history  # its replay comes first; _enqueue holds it
                and write(frame)
            ):
                s.last_seq = seq
                written += 1
            else:
                self._enqueue(s, frame)
        self.stats.messages += written
        self.stats.frames += written

    def take_ready(self) -> list[Session]:
        ready = list(self._ready)
        self._ready.clear()
        return ready

    def sent(self, s: Session, frames: list[Frame]) -> None:
        """The adapter wrote these frames; the client's resume position moves on."""
        for f in frames:
            if f.seq >= 0:  # in queue order; an out-of-order event only moves it back
                s.last_seq = f.seq
        self.stats.frames += len(frames)

    # -- internals ------------------------------------------------------------------------

    def _dialect(
        self, dialect: str, type_: str, payload: dict[str, Any], ts: int, seq: int
    ) -> dict[str, Any]:
        """WRAPPED is ``{type: "data", data: {type, ...}}`` (the guide's dashboard);
        FLAT is ``{type, data}`` (its store terminal). Both get ``seq`` and ``epoch``."""
        if dialect == WRAPPED:
            return {
                "type": "data",
                "data": {"type": type_, **payload},
                "timestamp": ts,
                "seq": seq,
                "epoch": self.epoch,
            }
        return {"type": type_, "data": payload, "timestamp": ts, "seq": seq, "epoch": self.epoch}

    def _event_text(self, dialect: str, ev: LoggedEvent) -> str:
        return wire.encode(self._dialect(dialect, ev.type, ev.data, ev.ts_ms, ev.seq))

    def _rates_text(
        self,
        store_id: str | None,
        dialect: str,
        sub: Subscription,
        table: dict[Pair, dict[str, Any]],
        pairs: Iterable[Pair],
        now: float,
        seq: int,
        extra: dict[str, Any],
        lean: dict[str, Any] | None = None,
    ) -> str:
        """``lean``: the group's extras last sent per pair; a rate leaves out the extras
        its group's last frame already carried (None: complete rates, as in snapshots)."""
        rates = [self._shape(table[p], sub.rate_type) for p in sorted(pairs) if p in table]
        if lean is not None:
            rates = [self._lean(r, lean) for r in rates]
        # The checksum covers what this client holds: its pairs, and its side with rateType.
        held = sub.pairs if sub.pairs is not None else table
        scope = [self._shape(table[p], sub.rate_type) for p in held if p in table]
        table_sum = checksum(scope)
        group = self._group_checksums.get((store_id, dialect, sub))
        if group is None:
            group = self._group_checksums[(store_id, dialect, sub)] = deque(maxlen=SENT_CHECKSUMS)
        if not group or group[-1][0] != table_sum:
            group.append((table_sum, now))  # what this group's clients may acknowledge
        payload = {"rates": rates, "checksum": table_sum, **extra}
        return wire.encode(self._dialect(dialect, wire.RATE_UPDATE, payload, int(now * 1000), seq))

    @staticmethod
    def _lean(rate: dict[str, Any], sent: dict[str, Any]) -> dict[str, Any]:
        pair = rate["currencyPair"]
        key = _lean_key(rate)
        if sent.get(pair, _UNSENT) == key:
            return {k: v for k, v in rate.items() if k not in LEAN_FIELDS}
        sent[pair] = key
        return rate

    @staticmethod
    def _shape(rate: dict[str, Any], rate_type: str) -> dict[str, Any]:
        if rate_type == "buy":
            return {k: v for k, v in rate.items() if k != "sellRate"}
        if rate_type == "sell":
            return {k: v for k, v in rate.items() if k != "buyRate"}
        return rate

    def _sees(self, s: Session, ev: LoggedEvent) -> bool:
        if ev.type in DASHBOARD_ONLY and s.client_type != DASHBOARD:
            return False
        if ev.store_id is not None and s.store_id is not None and ev.store_id != s.store_id:
            return False
        if ev.store_id is not None and s.store_id is None and s.client_type != DASHBOARD:
            return False
        pair = ev.data.get("currencyPair")
        if pair and s.sub.pairs is not None:
            return any(str(p) == pair for p in s.sub.pairs)
        return True

    def _snapshot(self, s: Session, now: float, force: bool = False, **extra: Any) -> None:
        s.needs_snapshot = False
        # The snapshot's extras may be newer than the group's last frame: the group's next
        # frame carries them again rather than assume every member holds the same.
        self._group_extras.pop(s.group_key, None)
        table = self._rates(s.store_id)
        pairs = s.sub.pairs if s.sub.pairs is not None else table.keys()
        text = self._rates_text(
            s.store_id, s.dialect, s.sub, table, pairs, now, self.seq, {"snapshot": True, **extra}
        )
        self._enqueue(s, Frame(text, self.seq, True), force=force)

    def resume_history(self, sid: int, events: list[LoggedEvent], now: float) -> None:
        """The adapter's answer to ``fetch_history``: the logged events it asked for,
        oldest first, as far as the database still has them. The resume completes (every
        event the client missed, or a gap for the part the database no longer holds), or
        asks for the rest if the in-memory log moved on meanwhile."""
        s = self.sessions.get(sid)
        if s is None or not s.awaiting_history:
            return
        last_seq = s.last_seq  # where the client said it was: unchanged while it waits
        start = s.history[-1].seq if s.history else last_seq
        if last_seq < self.log_floor and (not events or events[0].seq != start + 1):
            s.awaiting_history, s.history = False, []
            self._gap(s, last_seq, "no longer retained", now)
            return
        s.history.extend(events)
        top = s.history[-1].seq if s.history else last_seq
        if top < self.log_floor:  # the memory log moved on meanwhile: read the rest
            assert self.fetch_history is not None
            self.fetch_history(s.id, top + 1, self.log_floor)
            return
        older, s.awaiting_history, s.history = s.history, False, []
        self._replay(s, last_seq, [ev for ev in older if ev.seq <= self.log_floor], now)

    def _replay(self, s: Session, last_seq: int, older: list[LoggedEvent], now: float) -> None:
        logged = [ev for ev in self.log if ev.seq > max(last_seq, self.log_floor)]
        missed = [ev for ev in (*older, *logged) if ev.seq > last_seq and self._sees(s, ev)]
        # The replay is bounded by the retained log, not by queue_frames (else a client
        # that missed more than a queue's worth could never resume: it would be closed
        # at once, every time). The adapter writes it at once; the bound applies after.
        for ev in missed:
            text = self._event_text(s.dialect, ev)
            self._enqueue(s, Frame(text, ev.seq, False), force=True)
        self._snapshot(
            s, now, force=True, recovered=True, missedEvents=len(missed), fromSeq=last_seq
        )

    def _gap(self, s: Session, last_seq: int, reason: str, now: float) -> None:
        gap = {"fromSeq": last_seq + 1, "toSeq": self.seq, "reason": reason}
        self._snapshot(s, now, recovered=False, gap=gap)

    def _resume(self, s: Session, last_seq: int, last_epoch: str | None, now: float) -> None:
        # Until the replay (or the snapshot) is written, the client is where it said it was;
        # a slow-consumer close meanwhile must give that position back, not a later one.
        s.last_seq = last_seq
        same_epoch = last_epoch is None or last_epoch == self.epoch
        far = self.log_floor - last_seq > MAX_REPLAY
        if same_epoch and last_seq < self.log_floor and self.fetch_history is not None and not far:
            # Older than the in-memory log: the database's log may still have it.
            s.awaiting_history = True
            s.outbox = deque(f for f in s.outbox if f.seq == -1)  # control replies only
            self.fetch_history(s.id, last_seq + 1, self.log_floor)
            return
        ahead = same_epoch and self.seq < last_seq <= self.seq + self.resume_ahead
        if ahead:
            s.skip_through = last_seq
        if same_epoch and self.log_floor <= last_seq <= self.seq or ahead:
            self._replay(s, last_seq, [], now)
        else:
            reason = (
                "epoch changed"
                if not same_epoch
                else f"ahead of this hub (seq {self.seq})"
                if last_seq > self.seq
                else f"more than {MAX_REPLAY} events behind: take the snapshot"
                if far
                else "no longer retained"
            )
            self._gap(s, last_seq, reason, now)

    def _control(
        self, s: Session, msg: dict[str, Any], position: tuple[int, str | None] | None = None
    ) -> None:
        """A reply to this client. It carries the hub's position (everything this session
        should see up to it is already queued ahead of it) but does not move the session's
        resume position (``Frame.seq`` -1): only the frames it replies after do."""
        seq, epoch = position if position is not None else (self.seq, self.epoch)
        msg = {**msg, "seq": seq, "epoch": epoch or self.epoch}
        self._enqueue(s, Frame(wire.encode(msg), -1, False), control=True)

    def _close(self, s: Session, code: int, reason: str) -> None:
        s.closing = (code, reason)
        s.outbox.clear()
        self._ready.add(s)
        if self.queued is not None:
            self.queued()

    def _enqueue(
        self, s: Session, frame: Frame, control: bool = False, force: bool = False
    ) -> None:
        """Queue a frame for a session, applying the slow-consumer policy.

        The outbox holds frames only while the client's socket is not draining.
        When it reaches ``queue_frames``: rate frames are dropped first (they are
        superseded: the session gets a full snapshot at the next flush, whether or
        not anything changes meanwhile); if it is still full, the session is closed
        with code 4008 and its resume position in the reason. Nothing blocks the
        other sessions.
        """
        if s.closing is not None:
            return
        if s.awaiting_history and not control:
            return  # the resume replays it (events) or supersedes it (the snapshot)
        if len(s.outbox) >= self.queue_frames and not force:
            kept = deque(f for f in s.outbox if not f.conflatable)
            dropped = len(s.outbox) - len(kept)
            if dropped:
                self.stats.dropped += dropped
                s.outbox = kept
                s.needs_snapshot = True
                self._resnap.add(s)
                self._poke()
            if len(s.outbox) >= self.queue_frames:
                self.stats.slow_closes += 1
                self._close(
                    s, CLOSE_SLOW_CONSUMER, f"slow consumer; resume with lastSeq={s.last_seq}"
                )
                return
            if frame.conflatable and not control:
                return  # the snapshot that follows supersedes it
        self.stats.messages += 1
        if not s.outbox and s.write is not None and s.write(frame):
            self.stats.frames += 1
            if frame.seq >= 0:
                s.last_seq = frame.seq
            return
        s.outbox.append(frame)
        self._ready.add(s)
        if self.queued is not None:
            self.queued()

"""Following the hub: ``tail`` and ``rates --watch``.

Theory of operation
-------------------
:class:`Tracker` is the sans-I/O core. It is fed every decoded frame and answers what to
show (after the event and pair filters) and what to tell the user (gaps, resumes, errors).
It remembers the resume position: the epoch and the highest ``seq`` on the frames (each
carries the hub's position, and everything the client should see up to it came before).
The ``welcome`` frame is the exception: it echoes the position the client resumed from,
under the epoch it asked for, while ``data.epoch`` names the hub's current one. Events (the
numbered log entries) seen twice after a resume are dropped by seq.

:func:`follow` is the adapter: it connects with the ``store_os`` dialect (``{type, data,
seq, epoch}``), reconnects after any disconnect with a jittered exponential
:func:`backoff`, and resumes with ``?lastSeq=&epoch=`` so no event is lost. The first
connection failing is fatal (exit 3); a 401/403 at any time is fatal (exit 4).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from ratectl.errors import AuthError, CtlError, Unreachable, UsageError

WS_PATH = "/api/rates/websocket"
CONTROL = frozenset({"welcome", "subscribed", "heartbeat", "pong", "error"})
STATE = frozenset({"rate_update", "market_data_update"})  # state frames: not numbered events
KNOWN_EVENTS = (
    "rate_update",
    "rate_override_set",
    "rate_override_cleared",
    "rate_override_expired",
    "rate_threshold_breach",
    "rate_lock_created",
    "rate_lock_expired",
    "market_data_update",
    "system_status",
    "heartbeat",
)
_SPLIT = re.compile(r"^([A-Za-z]{3,5})[/\-_ ]([A-Za-z]{3,5})$")
_JOINED = re.compile(r"^([A-Za-z]{3})([A-Za-z]{3})$")


def normalize_pair(text: str) -> str:
    """``usd-cad``, ``USDCAD``, ``USD/CAD`` -> ``USD/CAD``; a usage error otherwise."""
    cleaned = text.strip()
    m = _SPLIT.match(cleaned) or _JOINED.match(cleaned)
    if m is None:
        raise UsageError(f"{text!r} is not a currency pair; write it as USD/CAD, USDCAD or usd-cad")
    return f"{m.group(1).upper()}/{m.group(2).upper()}"


@dataclass
class Fed:
    """What one frame means for the user: a message to show (filtered), and notices."""

    show: dict[str, Any] | None = None
    notices: list[str] = field(default_factory=list)


class Tracker:
    def __init__(
        self,
        events: frozenset[str] | None = None,
        pairs: frozenset[str] | None = None,
    ) -> None:
        self.events = events  # None: every non-control type
        self.pairs = pairs  # None: every pair
        self.seq: int | None = None
        self.epoch: str | None = None
        self.last_event_seq: int | None = None
        self.awaiting_ack = False  # a subscribe was sent: its snapshot supersedes the first

    def resume_params(self) -> dict[str, str]:
        if self.seq is None or self.epoch is None:
            return {}
        return {"lastSeq": str(self.seq), "epoch": self.epoch}

    def feed(self, msg: Mapping[str, Any]) -> Fed:
        out = Fed()
        type_ = str(msg.get("type"))
        raw = msg.get("data")
        data: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if type_ == "welcome":
            self._welcome(data, out)
        elif type_ == "error":
            out.notices.append(f"daemon says: {data.get('message')} ({data.get('code')})")
        elif type_ == "subscribed":
            self.awaiting_ack = False
        if type_ != "welcome" and not self._position(type_, msg):
            return out  # an event we already showed
        if data.get("snapshot"):
            self._snapshot_notices(data, out)
            if self.awaiting_ack:
                return out
        out.show = self._filter(type_, dict(msg), data)
        return out

    # -- internals ------------------------------------------------------------------------

    def _welcome(self, data: dict[str, Any], out: Fed) -> None:
        epoch = data.get("epoch")
        if self.epoch is not None and epoch != self.epoch:
            out.notices.append(
                f"the daemon's epoch changed ({self.epoch} -> {epoch}): its database was "
                "replaced; earlier events cannot be replayed"
            )
            self.seq = self.last_event_seq = None
        self.epoch = epoch if isinstance(epoch, str) else None

    def _position(self, type_: str, msg: Mapping[str, Any]) -> bool:
        seq, epoch = msg.get("seq"), msg.get("epoch")
        if not isinstance(seq, int) or isinstance(seq, bool):
            return True
        if isinstance(epoch, str) and epoch != self.epoch:
            self.epoch, self.seq, self.last_event_seq = epoch, None, None
        if type_ not in STATE and type_ not in CONTROL:
            if self.last_event_seq is not None and seq <= self.last_event_seq:
                return False
            self.last_event_seq = seq
        self.seq = seq if self.seq is None else max(self.seq, seq)
        return True

    @staticmethod
    def _snapshot_notices(data: dict[str, Any], out: Fed) -> None:
        if data.get("recovered") is False:
            gap = data.get("gap") or {}
            out.notices.append(
                f"gap: events {gap.get('fromSeq')}..{gap.get('toSeq')} could not be replayed "
                f"({gap.get('reason', 'unknown')}); showing a fresh snapshot"
            )
        elif data.get("recovered") is True:
            out.notices.append(
                f"resumed after seq {data.get('fromSeq')}: "
                f"{data.get('missedEvents', 0)} missed event(s) replayed"
            )

    def _filter(
        self, type_: str, msg: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any] | None:
        if self.events is None and type_ in CONTROL:
            return None
        if self.events is not None and type_ not in self.events:
            return None
        if self.pairs is None:
            return msg
        for key in ("rates", "quotes"):
            if isinstance(data.get(key), list):
                kept = [r for r in data[key] if r.get("currencyPair") in self.pairs]
                return {**msg, "data": {**data, key: kept}} if kept else None
        pair = data.get("currencyPair")
        return msg if pair is None or pair in self.pairs else None


def backoff(
    initial: float = 0.2, factor: float = 2.0, cap: float = 5.0, rng: random.Random | None = None
) -> Iterator[float]:
    """Delays before each reconnect: exponential, capped, with "equal jitter"."""
    rng = rng or random.Random()
    delay = initial
    while True:
        yield delay / 2 + rng.random() * delay / 2
        delay = min(cap, delay * factor)


def ws_url(http_url: str, store: str | None, resume: Mapping[str, str]) -> str:
    base = "ws" + http_url[4:] if http_url.startswith("http") else http_url
    query: dict[str, str] = {"clientType": "store_os"}
    if store:
        query["storeId"] = store
    query.update(resume)
    return f"{base}{WS_PATH}?{urlencode(query)}"


@dataclass
class Follow:
    """What to follow and where to report. ``on_message`` returns True to stop."""

    url: str
    token: str | None
    timeout: float
    store: str | None
    tracker: Tracker
    on_message: Callable[[dict[str, Any]], bool]
    on_notice: Callable[[str], None]
    subscribe: dict[str, Any] | None = None
    delays: Callable[[], Iterator[float]] = backoff
    on_open: Callable[[Any], None] | None = None  # each new connection (the TUI pings on it)


async def follow(f: Follow) -> None:
    """Stream until ``on_message`` says stop; reconnect and resume on any disconnect.

    Only connecting and receiving are guarded: an error raised while writing the
    output (a closed pipe) is not a network error and ends the stream."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidHandshake, InvalidStatus

    delays = f.delays()
    connected_once = False
    said = ""  # what was said about this outage: a reason is told once, not per attempt
    headers = {"Authorization": f"Bearer {f.token}"} if f.token else {}
    while True:
        url = ws_url(f.url, f.store, f.tracker.resume_params())
        try:
            ws = await connect(
                url, additional_headers=headers, open_timeout=f.timeout, max_size=2**24
            )
        except InvalidStatus as exc:
            reason = _refused(exc.response.status_code, exc.response.body, f.url)
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            reason = unreachable(exc, f.url, f.timeout)
            if not connected_once:
                raise Unreachable(
                    f"cannot reach the ratehubd hub: {reason}; is it running? "
                    "Start it with `ratehubd`, or point --url / RATECTL_URL at it"
                ) from None
        else:
            connected_once, delays = True, f.delays()
            try:
                if f.on_open is not None:
                    f.on_open(ws)
                said = ""
                ended = await _session(f, ws)
            finally:
                await ws.close()
            if ended is None:
                return
            reason = ended
        delay = next(delays)
        if reason != said:
            later = "" if not said else ", then with backoff until it is back"
            f.on_notice(f"{reason}; reconnecting in {delay:.1f} s{later}")
            said = reason
        await asyncio.sleep(delay)


def unreachable(exc: BaseException, url: str, timeout: float) -> str:
    """Why a connection attempt failed, in words (not ``[Errno 111] Connect call failed``)."""
    from websockets.exceptions import InvalidHandshake

    if isinstance(exc, ConnectionRefusedError):
        return f"daemon unreachable at {url} (nothing listens there)"
    if isinstance(exc, TimeoutError):
        return f"daemon unreachable at {url} (no answer within {timeout:g} s)"
    if isinstance(exc, InvalidHandshake):
        return f"{url} did not answer as a ratehub hub ({exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"daemon unreachable at {url} ({exc.strerror.lower()})"
    return f"daemon unreachable at {url} ({exc or type(exc).__name__})"


async def _session(f: Follow, ws: Any) -> str | None:
    """Read one connection; None when ``on_message`` said stop, else why it ended."""
    from websockets.exceptions import ConnectionClosed

    try:
        if f.subscribe is not None:
            f.tracker.awaiting_ack = True
            await ws.send(json.dumps(f.subscribe))
        while True:
            text = await ws.recv()
            if _handle(f, text):
                return None
    except ConnectionClosed as exc:
        rcvd = exc.rcvd
        return _closed(rcvd.code, rcvd.reason) if rcvd else "connection lost"


def _handle(f: Follow, text: str | bytes) -> bool:
    from pydantic import ValidationError

    from ratehubd import wire

    try:
        msg = json.loads(text)
        wire.WsMessage.model_validate(msg)
    except (ValueError, ValidationError):
        f.on_notice("ignored a frame that is not a ratehub message")
        return False
    out = f.tracker.feed(msg)
    for note in out.notices:
        f.on_notice(note)
    return out.show is not None and f.on_message(out.show)


def _refused(status: int, body: bytes | bytearray | None, url: str) -> str:
    try:
        detail = str(json.loads(body or b"{}").get("error") or "")
    except (ValueError, AttributeError):
        detail = ""
    if status in (401, 403):
        raise AuthError(f"the hub refused the key: {detail or f'HTTP {status}'}")
    if status == 503:
        return "the daemon is restarting"
    if 400 <= status < 500:
        raise CtlError(f"the hub at {url} refused the connection: {detail or f'HTTP {status}'}")
    return f"the hub answered HTTP {status}"


def _closed(code: int, reason: str) -> str:
    why = {1012: "the daemon is restarting", 4008: "fell behind (slow consumer)"}
    if code in why:
        return why[code]
    return f"the daemon closed the connection ({code}{' ' + reason if reason else ''})"

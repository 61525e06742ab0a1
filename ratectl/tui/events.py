"""Event log lines: one short, coloured line per hub event or notice. Pure.

Overrides are yellow, locks blue, breaches red (green when they clear), and what
happened to the connection (reconnects, resumes, gaps) magenta. Times are the event's
own (``timestamp``, epoch ms) in ``tz`` (None: local time).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from rich.text import Text

from ratectl.render import num

LOCK_EVENTS = {
    "rate_lock_created": "lock created",
    "rate_lock_consumed": "lock consumed",
    "rate_lock_released": "lock released",
    "rate_lock_expired": "lock expired",
}
OVERRIDE_EVENTS = {
    "rate_override_set": "override set",
    "rate_override_cleared": "override cleared",
    "rate_override_expired": "override expired",
}
EVENT_TYPES = frozenset({*LOCK_EVENTS, *OVERRIDE_EVENTS, "rate_threshold_breach"})


def clock(ts_ms: int | None, tz: tzinfo | None) -> str:
    if ts_ms is None:
        return "--:--:--"
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(tz).strftime("%H:%M:%S")


def line(ts_ms: int | None, tz: tzinfo | None, what: str, style: str, detail: str) -> Text:
    return Text.assemble((clock(ts_ms, tz), "dim"), "  ", (f"{what:<17}", style), " ", detail)


def describe(msg: Mapping[str, Any], tz: tzinfo | None) -> Text:
    """A hub event (store_os shape: ``{type, data, timestamp, seq}``) as one line."""
    type_ = str(msg.get("type"))
    raw = msg.get("data")
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    ts = msg.get("timestamp") if isinstance(msg.get("timestamp"), int) else None
    if type_ in OVERRIDE_EVENTS:
        return line(ts, tz, OVERRIDE_EVENTS[type_], "yellow", _override(type_, data))
    if type_ in LOCK_EVENTS:
        return line(ts, tz, LOCK_EVENTS[type_], "blue", _lock(type_, data))
    if type_ == "rate_threshold_breach":
        cleared = data.get("state") == "cleared"
        what = "breach cleared" if cleared else "BREACH"
        return line(ts, tz, what, "green" if cleared else "bold red", _breach(data))
    return line(ts, tz, type_, "dim", "")


def notice(ts_ms: int, tz: tzinfo | None, text: str) -> Text:
    """What happened to the connection (reconnect, resume, gap) or the dashboard."""
    return line(ts_ms, tz, "connection", "magenta", text)


def _where(data: Mapping[str, Any]) -> str:
    store = data.get("storeId")
    return f"{data.get('currencyPair', '?')} @{store}" if store else f"{data.get('currencyPair')}"


def _override(type_: str, data: Mapping[str, Any]) -> str:
    text = _where(data)
    if type_ != "rate_override_set":
        return text
    if data.get("buyRate") is not None:
        text += f"  buy {num(data['buyRate'])} sell {num(data.get('sellRate'))}"
    elif data.get("spread") is not None:
        text += f"  spread {num(data['spread'])}"
    if data.get("reason"):
        text += f"  {data['reason']!r}"
    if data.get("author"):
        text += f"  by {data['author']}"
    return text


def _lock(type_: str, data: Mapping[str, Any]) -> str:
    text = f"{_where(data)}  {data.get('lockId', '?')}"
    if type_ == "rate_lock_created":
        text += f"  buy {num(data.get('buyRate'))} sell {num(data.get('sellRate'))}"
        if data.get("ttlSeconds"):
            text += f"  for {data['ttlSeconds']}s"
        if data.get("reference"):
            text += f"  {data['reference']!r}"
    return text


def _breach(data: Mapping[str, Any]) -> str:
    return f"{_where(data)}  {data.get('kind', '?')}: {data.get('detail', '')}"

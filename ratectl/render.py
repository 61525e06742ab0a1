"""Wire objects -> Rich renderables. Pure: no I/O, time passed in (``now_ms``).

Tables follow kubectl's look: upper-case headers, no borders, two spaces between
columns, so ``awk`` and ``grep`` keep working on piped table output. ``wide`` adds the
provenance columns. Tested as text through ``Console(file=StringIO(), width=80)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from ratectl.models import OverrideRow
    from ratehubd import wire


def table(*headers: str) -> Table:
    t = Table(box=None, pad_edge=False, padding=(0, 2, 0, 0), header_style="bold")
    for h in headers:
        numeric = h in ("BUY", "SELL", "MID", "SPREAD", "MARKET MID", "TICK", "VERSION", "AGE")
        t.add_column(h, justify="right" if numeric else "left", no_wrap=True)
    return t


def num(value: Decimal | float | None) -> str:
    if value is None:
        return "-"
    d = value if isinstance(value, Decimal) else Decimal(repr(value))
    return format(d.normalize() if d == d.to_integral() else d, "f")


def on_tick(value: Decimal, tick: Decimal | None) -> str:
    """A price with as many decimals as its tick (``0.0001`` -> ``1.3700``)."""
    exponent = tick.normalize().as_tuple().exponent if tick else 0
    if isinstance(exponent, int) and exponent < 0:
        return format(value.quantize(Decimal(1).scaleb(exponent)), "f")
    return num(value)


def percent(value: Decimal | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def age(now_ms: int, ts_ms: int) -> str:
    ms = max(0, now_ms - ts_ms)
    if ms < 1000:
        return f"{ms}ms"
    s = ms // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def until(now_ms: int, iso_time: str | None) -> str:
    """``2026-01-05T13:00:00.000Z`` -> ``in 1h``; ``-`` when None."""
    if not iso_time:
        return "-"
    from ratehubd.wire import parse_time

    ts = int(parse_time(iso_time).timestamp() * 1000)
    return f"in {age(ts, now_ms)}" if ts >= now_ms else f"{age(now_ms, ts)} ago"


# -- rates, market, overrides ----------------------------------------------------------------


def rates_table(rates: Sequence[wire.Rate], *, now_ms: int, wide: bool = False) -> Table:
    headers = ["PAIR", "BUY", "SELL", "MID", "SPREAD", "SOURCE", "AGE"]
    if wide:
        headers += ["STORE", "MARKET MID", "TICK", "VALID", "OVERRIDE"]
    t = table(*headers)
    for r in sorted(rates, key=lambda r: r.currencyPair):
        p = r.provenance
        ov = p.override if p else None
        tick = p.tick if p else None
        source = Text(r.source, style="yellow" if ov else "")
        when = Text(age(now_ms, p.marketTimestamp if p else r.timestamp))
        if r.stale:
            when = Text(f"{when} stale", style="bold red")
        row: list[str | Text] = [
            Text(r.currencyPair, style="bold"),
            Text(on_tick(r.buyRate, tick), style="green"),
            Text(on_tick(r.sellRate, tick), style="cyan"),
            num(r.rate),
            percent(r.spread),
            source,
            when,
        ]
        if wide:
            row += [
                r.storeId or "(global)",
                num(p.marketMid) if p else "-",
                num(p.tick) if p else "-",
                until(now_ms, r.validUntil),
                f"{ov.author}: {ov.reason} (v{ov.version})" if ov else "-",
            ]
        t.add_row(*row)
    return t


def market_table(quotes: Sequence[wire.MarketData], *, now_ms: int, wide: bool = False) -> Table:
    t = table("PAIR", "MID", "SOURCES", "AGE", *(["BASE", "QUOTE"] if wide else []))
    for q in sorted(quotes, key=lambda q: q.currencyPair):
        row: list[str | Text] = [Text(q.currencyPair, style="bold"), num(q.rate)]
        row.append(", ".join(q.sources))
        row.append(age(now_ms, q.timestamp))
        if wide:
            row += [q.baseCurrency, q.targetCurrency]
        t.add_row(*row)
    return t


def overrides_table(rows: Sequence[OverrideRow], *, now_ms: int, wide: bool = False) -> Table:
    headers = ["PAIR", "STORE", "BUY", "SELL", "SPREAD", "VALID", "AUTHOR", "REASON"]
    if wide:
        headers += ["VERSION", "ID", "SOURCE", "CREATED"]
    t = table(*headers)
    for o in sorted(rows, key=lambda o: (o.currencyPair, o.storeId or "")):
        row: list[str | Text] = [
            Text(o.currencyPair, style="bold"),
            o.storeId or "(global)",
            num(o.buyRate),
            num(o.sellRate),
            percent(o.spread),
            until(now_ms, o.validUntil),
            o.author,
            o.reason,
        ]
        if wide:
            row += [str(o.version), o.id, o.source, o.createdAt or "-"]
        t.add_row(*row)
    return t


STATE_STYLE = {"stale": "bold red", "confirming": "yellow", "current": "green"}


def terminals_table(rows: Sequence[wire.Terminal], *, wide: bool = False) -> Table:
    """A store's terminals, stale first (the daemon's order), the stale ones in red."""
    headers = ["STATE", "SESSION", "CLIENT", "KEY", "REMOTE", "ACK SEQ", "ACKS"]
    if wide:
        headers += ["NODE", "CONNECTED", "EXPECTED", "ACKED"]
    t = table(*headers)
    for term in rows:
        row: list[str | Text] = [
            Text(term.state, style=STATE_STYLE.get(term.state, "dim")),
            str(term.sessionId),
            term.clientType,
            term.keyName or "-",
            term.remoteAddr or "-",
            "-" if term.ackSeq is None else str(term.ackSeq),
            str(term.acks),
        ]
        if wide:
            row += [
                term.node or "-",
                term.connectedAt,
                term.expectedChecksum or "-",
                term.ackChecksum or "-",
            ]
        t.add_row(*row)
    return t


def stores_table(rows: Sequence[wire.StoreScreens]) -> Table:
    """Every store with connections, stale ones first and highlighted."""
    t = table("STORE", "TERMINALS", "CONFIRMING", "CURRENT", "STALE", "UNCONFIRMED")
    for r in rows:
        style = "bold red" if r.stale else ""
        t.add_row(
            Text(r.storeId, style=style or "bold"),
            str(r.terminals),
            str(r.confirming),
            str(r.current),
            Text(str(r.stale), style=style),
            str(r.unconfirmed),
        )
    return t


# -- status ------------------------------------------------------------------------------------


def status_view(status: Mapping[str, Any]) -> RenderableType:
    """The guide's system status: one block per section, nested tables where they nest."""
    parts: list[RenderableType] = []
    for section, body in status.items():
        parts.append(Text(section, style="bold underline"))
        parts.append(_kv(body) if isinstance(body, Mapping) else Text(_field(section, body)))
        parts.append(Text(""))
    return Group(*parts[:-1])


def _kv(body: Mapping[str, Any]) -> Table:
    t = Table(box=None, pad_edge=False, padding=(0, 2, 0, 2), show_header=False)
    t.add_column(style="dim", no_wrap=True)
    t.add_column()
    for key, value in body.items():
        t.add_row(key, _value(key, value))
    return t


def _value(key: str, value: Any) -> RenderableType:
    if isinstance(value, Mapping) and value and all(isinstance(v, Mapping) for v in value.values()):
        cols = list(dict.fromkeys(k for v in value.values() for k in v))
        t = table("", *(_header(c) for c in cols))
        for name, row in value.items():
            t.add_row(name, *(_field(c, row.get(c)) for c in cols))
        return t
    return Text(_field(key, value))


# Epoch milliseconds between 2001 and 2286: a time, when the key names one.
_EPOCH_MS = range(10**12, 10**13)


def _field(key: str, value: Any) -> str:
    """A value as people read it: the wire's epoch-millisecond times (``timestamp``,
    ``...At``) in ISO 8601, UTC, said so."""
    timed = key == "timestamp" or key.endswith(("At", "Time"))
    if timed and isinstance(value, int) and not isinstance(value, bool) and value in _EPOCH_MS:
        when = datetime.fromtimestamp(value / 1000, UTC).isoformat(timespec="milliseconds")
        return when.replace("+00:00", "Z") + " (UTC)"
    return _scalar(value)


def _header(key: str) -> str:
    """``ageSeconds`` -> ``AGE SECONDS``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", key).upper()


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "-"
    if isinstance(value, float):
        return num(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_scalar(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(_scalar(v) for v in value) or "-"
    return str(value)


# -- tail ------------------------------------------------------------------------------------


def event_lines(msg: Mapping[str, Any], tz: tzinfo | None = None) -> Text:
    """One line per rate (``rate_update``) or per event, for ``tail -o table``."""
    type_ = str(msg.get("type"))
    raw = msg.get("data")
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    stamp = _clock(msg.get("timestamp"), tz)
    seq = f"#{msg['seq']}" if isinstance(msg.get("seq"), int) else ""
    head = Text.assemble((stamp, "dim"), "  ", (f"{type_:<22}", _style(type_)))
    out = Text()
    items: Iterable[Mapping[str, Any]] = data.get("rates") or data.get("quotes") or [data]
    for i, item in enumerate(items):
        if i:
            out.append("\n")
        out.append_text(head.copy())
        out.append(f"  {_describe(type_, item)}")
        if seq:
            out.append(f"  {seq}", style="dim")
        if data.get("snapshot"):
            out.append("  snapshot", style="dim")
    return out


def _clock(ts: Any, tz: tzinfo | None) -> str:
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return "--:--:--.---"
    dt = datetime.fromtimestamp(ts / 1000, tz=UTC).astimezone(tz)
    return dt.strftime("%H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def _style(type_: str) -> str:
    if type_ == "rate_update":
        return "green"
    if type_.startswith("rate_override") or type_.startswith("rate_lock"):
        return "yellow"
    return "red" if "breach" in type_ or type_ == "error" else "blue"


def _describe(type_: str, item: Mapping[str, Any]) -> str:
    pair = item.get("currencyPair", "")
    store = item.get("storeId")
    where = f" @{store}" if store else ""
    if "buyRate" in item or "sellRate" in item:
        text = f"{pair}{where}  buy {num(item.get('buyRate'))}  sell {num(item.get('sellRate'))}"
        if "rate" in item and type_ == "rate_update":
            text += f"  mid {num(item['rate'])}"
        if item.get("reason"):
            text += f"  {item['reason']!r}"
        return text
    if "rate" in item:
        return f"{pair}  mid {num(item['rate'])}"
    return " ".join(f"{k}={_scalar(v)}" for k, v in item.items() if k != "currencyPair") or pair


# -- settings ------------------------------------------------------------------------------


def settings_table(rows: Iterable[tuple[str, str, str]], *, show_source: bool) -> Table:
    t = table("KEY", "VALUE", *(["SOURCE"] if show_source else []))
    for key, value, source in rows:
        t.add_row(key, value, *([source] if show_source else []))
    return t


def contexts_table(contexts: Mapping[str, Mapping[str, Any]], current: str | None) -> Table:
    t = table("CURRENT", "NAME", "URL", "STORE", "TOKEN FILE")
    for name, ctx in sorted(contexts.items()):
        t.add_row(
            "*" if name == current else "",
            Text(name, style="bold" if name == current else ""),
            str(ctx.get("url", "-")),
            str(ctx.get("store") or "-"),
            str(ctx.get("token_file") or "-"),
        )
    return t

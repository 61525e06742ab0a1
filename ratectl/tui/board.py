"""The dashboard's state of the pairs, and how each row reads. Pure: no Textual, no I/O.

:class:`Board` is fed rate dicts as the hub sends them (``apply``) and remembers, per
pair, the latest buy/sell/mid, where it came from, whether it is stale, the mid it opened
with (CHANGE is relative to it), the direction of the last tick and a short history of
mids for the sparkline. ``apply`` returns the pairs whose row changed, so the table
touches only those. Money stays Decimal: the JSON numbers are read back through
``repr`` into the decimals the daemon sent (the history is float: it only draws).

:func:`cells` turns a row into the table's cells for a given ``now_ms`` (the age ticks
by itself); :data:`COLUMNS` names them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from rich.text import Text

from ratectl.render import on_tick

COLUMNS: tuple[tuple[str, str, int], ...] = (  # key, header, width: 80 columns in all
    ("pair", "PAIR", 7),
    ("buy", "BUY", 9),
    ("sell", "SELL", 9),
    ("mid", "MID", 9),
    ("change", "CHG", 7),
    ("source", "SOURCE", 9),
    ("ovr", "OVR", 5),
    ("age", "AGE", 8),  # and the stale marker: "3m STALE"
)
COLUMN_KEYS = tuple(key for key, _, _ in COLUMNS)
AGE = COLUMN_KEYS.index("age")  # the one column that moves with time alone
MID_WIDTH = COLUMNS[COLUMN_KEYS.index("mid")][2]


@dataclass(slots=True)
class PairRow:
    pair: str
    buy: Decimal
    sell: Decimal
    mid: Decimal
    tick: Decimal | None
    source: str
    override: str | None  # "store" (this store's own), "all" (a global one) or None
    stale: bool
    market_ms: int
    opened_mid: Decimal
    direction: int = 0  # the last tick: -1 down, 0 flat, +1 up
    history: deque[float] = field(default_factory=deque)

    @property
    def change(self) -> Decimal:
        """Relative change of the mid since the dashboard first saw this pair."""
        return (self.mid - self.opened_mid) / self.opened_mid if self.opened_mid else Decimal(0)


class Board:
    def __init__(self, history: int = 120) -> None:
        self.rows: dict[str, PairRow] = {}
        self.history = history
        self.ignored = 0  # rate dicts that could not be read
        # The last rate dict per pair: lean frames leave out what did not change
        # (provenance, stale, ...), so each rate is read merged into the one before.
        self._held: dict[str, dict[str, Any]] = {}

    def reset(self) -> None:
        self.rows.clear()
        self._held.clear()

    def apply(self, rates: Iterable[Mapping[str, Any]]) -> set[str]:
        """Take the latest rates; the pairs whose rows changed (new ones included)."""
        changed: set[str] = set()
        for partial in rates:
            pair = str(partial.get("currencyPair"))
            rate = self._held[pair] = {**self._held.get(pair, {}), **partial}
            parsed = _read(rate)
            if parsed is None:
                self.ignored += 1
                continue
            if self._merge(parsed):
                changed.add(parsed.pair)
        return changed

    def visible(self, needle: str = "") -> list[str]:
        """Pairs to show, sorted; ``needle`` keeps those containing it (``usd``, ``/cad``)."""
        wanted = needle.strip().upper().replace("-", "/")
        return sorted(p for p in self.rows if wanted in p or wanted in p.replace("/", ""))

    def _merge(self, new: PairRow) -> bool:
        old = self.rows.get(new.pair)
        if old is None:
            new.history = deque([float(new.mid)], maxlen=self.history)
            self.rows[new.pair] = new
            return True
        same = (old.buy, old.sell, old.mid, old.source, old.override, old.stale, old.market_ms)
        if same == (new.buy, new.sell, new.mid, new.source, new.override, new.stale, new.market_ms):
            return False
        if new.mid != old.mid:
            old.direction = 1 if new.mid > old.mid else -1
            old.history.append(float(new.mid))
        old.buy, old.sell, old.mid, old.tick = new.buy, new.sell, new.mid, new.tick
        old.source, old.override, old.stale = new.source, new.override, new.stale
        old.market_ms = new.market_ms
        return True


def _dec(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"not a number: {value!r}")
    return Decimal(repr(value) if isinstance(value, float) else value)


def _read(rate: Mapping[str, Any]) -> PairRow | None:
    """A wire rate dict as a row (its opened mid is its own mid); None if unreadable."""
    try:
        prov = rate.get("provenance") or {}
        ov = prov.get("override")
        mid = _dec(rate["rate"])
        return PairRow(
            pair=str(rate["currencyPair"]),
            buy=_dec(rate["buyRate"]),
            sell=_dec(rate["sellRate"]),
            mid=mid,
            tick=_dec(prov["tick"]) if prov.get("tick") else None,
            source=str(rate.get("source", "")),
            override=None if not ov else ("store" if ov.get("storeId") else "all"),
            stale=bool(rate.get("stale", False)),
            market_ms=int(prov.get("marketTimestamp") or rate["timestamp"]),
            opened_mid=mid,
        )
    except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError):
        return None


# -- cells --------------------------------------------------------------------------------


def cells(row: PairRow, now_ms: int) -> tuple[Text, ...]:
    """The row's cells in :data:`COLUMNS` order."""
    return (
        Text(row.pair, style="bold"),
        Text(on_tick(row.buy, row.tick), style="green", justify="right"),
        Text(on_tick(row.sell, row.tick), style="cyan", justify="right"),
        Text(_mid(row), style=TICK_STYLE[row.direction], justify="right"),
        _change(row),
        Text(row.source, style="yellow" if row.override else "", overflow="ellipsis"),
        Text(row.override or "", style="bold yellow"),
        age_cell(row, now_ms),
    )


def age_cell(row: PairRow, now_ms: int) -> Text:
    """How old the market data is (to the second); ``STALE`` when the daemon says so."""
    text = Text(age(now_ms, row.market_ms), style="dim", justify="right")
    if row.stale:
        text = Text.assemble((text.plain, "red"), (" STALE", "bold red"), justify="right")
    return text


def age(now_ms: int, ts_ms: int) -> str:
    s = max(0, now_ms - ts_ms) // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def _mid(row: PairRow) -> str:
    """The mid with one digit more than the tick (it sits between two ticks), if it fits."""
    if row.tick is None:
        return format(row.mid.normalize(), "f")
    finer = on_tick(row.mid, row.tick / 10)
    return finer if len(finer) <= MID_WIDTH else on_tick(row.mid, row.tick)


# The last tick's direction colours the mid; the arrow and sign in CHG are the change since
# the dashboard opened, so they always agree (an arrow for the last tick next to the change
# since opening read as "▲-0.01%").
TICK_STYLE = {1: "green", -1: "red", 0: ""}


def _change(row: PairRow) -> Text:
    pct = row.change * 100
    arrow, style = ("▲", "green") if pct > 0 else ("▼", "red") if pct < 0 else (" ", "dim")
    return Text(f"{arrow}{pct:+.2f}%", style=style, justify="right")

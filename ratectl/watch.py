"""``tail`` and ``rates --watch``: where the stream meets the terminal.

The stream (:mod:`ratectl.stream`) decides what to show; this module only writes it:
table lines through Rich, data formats straight to stdout, flushed per message so a
pipe sees each one at once. Notices (reconnects, gaps) go to stderr.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TYPE_CHECKING, Any

from ratectl import params
from ratectl.output import console, dump, dump_stream, message, print_renderable
from ratectl.stream import KNOWN_EVENTS, Follow, Tracker, follow, normalize_pair

if TYPE_CHECKING:
    from ratectl.settings import Settings


def notice(text: str) -> None:
    message(f"ratectl: {text}", style="yellow")


def tail_messages(
    s: Settings, *, pairs: list[str] | None, events: list[str] | None, count: int | None
) -> None:
    from ratectl import render

    pair_set = frozenset(normalize_pair(p) for p in params.csv(pairs)) or None
    event_set = frozenset(params.csv(events)) or None
    for name in sorted(event_set or ()):
        if name not in KNOWN_EVENTS:
            notice(f"{name!r} is not a type this ratectl knows ({', '.join(KNOWN_EVENTS)})")
    subscribe = None
    if event_set and "market_data_update" in event_set:
        subscribe = {
            "type": "rate_subscribe",
            "data": {"includeMarketData": True, "currencies": sorted(pair_set or ())},
        }
    fmt = s.output.value
    shown = 0

    def on_message(msg: dict[str, Any]) -> bool:
        nonlocal shown
        if fmt in ("table", "wide"):
            print_renderable(render.event_lines(msg), sys.stdout)
        else:
            sys.stdout.write(dump_stream(msg, fmt))
            sys.stdout.flush()
        shown += 1
        return count is not None and shown >= count

    run(s, Tracker(events=event_set, pairs=pair_set), on_message, subscribe)


def watch_rates(s: Settings) -> None:
    """``rates -w``: a live table on a terminal; elsewhere each update's changed rates."""
    from rich.live import Live

    from ratectl import models, render

    fmt = s.output.value
    wide = fmt == "wide"
    rows: dict[str, dict[str, Any]] = {}
    con = console()

    def table(rates: list[dict[str, Any]]) -> Any:
        now = int(time.time() * 1000)
        return render.rates_table(models.rates(rates), now_ms=now, wide=wide)

    live = None
    if fmt in ("table", "wide") and con.is_terminal:
        # redrawn from the latest rows 4 times a second, so the ages tick between updates
        live = Live(
            console=con, get_renderable=lambda: table(list(rows.values())), refresh_per_second=4
        )

    def on_message(msg: dict[str, Any]) -> bool:
        # Lean frames carry provenance, storeId, validUntil and stale only when they change:
        # each rate is merged into the last one held for its pair.
        pairs = [r["currencyPair"] for r in msg.get("data", {}).get("rates", [])]
        for r in msg.get("data", {}).get("rates", []):
            rows[r["currencyPair"]] = {**rows.get(r["currencyPair"], {}), **r}
        changed = [rows[p] for p in pairs]
        if live is not None:
            live.refresh()
        elif fmt in ("table", "wide"):
            print_renderable(table(changed), sys.stdout)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(
                dump(changed, "jsonl") if fmt == "jsonl" else dump_stream(changed, fmt)
            )
            sys.stdout.flush()
        return False

    tracker = Tracker(events=frozenset({"rate_update"}))
    if live is None:
        run(s, tracker, on_message, None)
        return
    with live:
        run(s, tracker, on_message, None)


def run(
    s: Settings,
    tracker: Tracker,
    on_message: Any,
    subscribe: dict[str, Any] | None,
) -> None:
    f = Follow(
        url=s.url.value,
        token=s.token.value,
        timeout=s.timeout.value,
        store=s.store.value,
        tracker=tracker,
        on_message=on_message,
        on_notice=notice,
        subscribe=subscribe,
    )
    asyncio.run(follow(f))

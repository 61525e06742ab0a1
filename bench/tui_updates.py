"""``ratectl tui`` under load: N pairs updated R times a second, as the hub would send them.

Target (issue 6): smooth at 20 updates/s across 50 pairs. The app runs headless (Textual's
``run_test``) at a size where every row is visible; a feeder posts one frame of rates
every 1/R s, each moving every pair (the worst case: the hub conflates, so a frame holds
at most one rate per pair). Measured:

- batches: how often the app applied pending rates to the table, and how long each took
  (``RatehubApp.flush``: board update plus ``update_cell`` for the cells that changed);
- frames: how often the screen was recomposed, and how long each took (Textual's
  compositor rendering the dirty regions, plus encoding the update to terminal text as
  the driver would write it; headless skips only the write itself);
- loop lag: how late a 5 ms timer fires (what a key press would wait);
- CPU: process time over wall time.

Run from the repository root::

    .venv/bin/python bench/tui_updates.py                 # 50 pairs, 20/s, 10 s
    .venv/bin/python bench/tui_updates.py --pairs 200 --rate 50 --seconds 5

Exit status 1 when a row does not show the last value fed, or the p99 frame time goes
over ``--budget-ms`` (default 50: one batch interval).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import random
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ratectl.tui.app import RatehubApp  # noqa: E402
from ratectl.tui.hub_link import HubLink  # noqa: E402
from ratectl.tui.options import TuiOptions  # noqa: E402


def pairs(n: int) -> list[str]:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return [f"{letters[i // 26 % 26]}{letters[i % 26]}X/CAD" for i in range(n)]


def rate(pair: str, mid: Decimal, now_ms: int) -> dict[str, Any]:
    half = (mid * Decimal("0.01")).quantize(Decimal("0.0001"))
    return {
        "currencyPair": pair,
        "rate": float(mid),
        "buyRate": float(mid + half),
        "sellRate": float(mid - half),
        "source": "bench",
        "storeId": None,
        "timestamp": now_ms,
        "stale": False,
        "provenance": {"marketTimestamp": now_ms, "tick": 0.0001, "override": None},
    }


def pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    names = pairs(args.pairs)
    mids = {p: Decimal("1.3500") + Decimal(i) / 100 for i, p in enumerate(names)}
    options = TuiOptions(
        url="http://bench.invalid", store=None, connect=False, freeze_gc=not args.no_freeze
    )
    app = RatehubApp(options)
    batches: list[float] = []
    frames: list[float] = []
    encoded_bytes = 0
    flush = app.flush

    def timed_flush() -> None:
        started = time.perf_counter()
        flush()
        batches.append(time.perf_counter() - started)

    app.flush = timed_flush  # type: ignore[method-assign]  # before mount: the timer takes it
    width, height = args.size
    async with app.run_test(size=(width, height)) as pilot:
        screen = app.screen
        refresh = screen._compositor_refresh
        terminal = Console(
            file=io.StringIO(), force_terminal=True, color_system="truecolor", width=width
        )
        display = app._display

        def timed_display(target: Any, renderable: Any) -> None:
            nonlocal encoded_bytes
            display(target, renderable)
            if renderable is not None and hasattr(renderable, "render_segments"):
                encoded_bytes += len(renderable.render_segments(terminal))

        def timed_refresh() -> None:
            started = time.perf_counter()
            refresh()
            frames.append(time.perf_counter() - started)

        app._display = timed_display  # type: ignore[method-assign]
        screen._compositor_refresh = timed_refresh  # type: ignore[method-assign]
        lags: list[float] = []
        running = True

        async def lag_probe() -> None:
            while running:
                started = time.perf_counter()
                await asyncio.sleep(0.005)
                lags.append(time.perf_counter() - started - 0.005)

        probe = asyncio.create_task(lag_probe())
        gc_pauses: list[float] = []
        gc_started = [0.0]

        def on_gc(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                gc_started[0] = time.perf_counter()
            elif info["generation"] == 2:
                gc_pauses.append(time.perf_counter() - gc_started[0])

        gc.callbacks.append(on_gc)
        total = int(args.rate * args.seconds)
        interval = 1 / args.rate
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for i in range(total):
            now_ms = int(time.time() * 1000)
            frame = []
            for p in names:
                mids[p] += Decimal(rng.choice((-1, 1))) / 10000
                frame.append(rate(p, mids[p], now_ms))
            app.post_message(HubLink.Rates(None, frame, snapshot=i == 0))
            delay = wall0 + (i + 1) * interval - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))
        await pilot.pause(0.2)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        running = False
        gc.callbacks.remove(on_gc)
        await probe
        table = app.rates_table
        shown = {row[0]: row[3] for row in table.rows_text()}
        expected = {p: format(mids[p].quantize(Decimal("0.00001")), "f") for p in names}
        return {
            "pairs": args.pairs,
            "rate": args.rate,
            "frames_fed": total,
            "rates_fed": total * args.pairs,
            "seconds": round(wall, 2),
            "batches": len(batches),
            "batches_per_s": round(len(batches) / wall, 1),
            "batch_ms_p50": round(pct(batches, 0.5) * 1000, 2),
            "batch_ms_p99": round(pct(batches, 0.99) * 1000, 2),
            "batch_ms_max": round(max(batches, default=0) * 1000, 2),
            "cells_updated_per_s": round(table.cell_updates / wall),
            "frames": len(frames),
            "frames_per_s": round(len(frames) / wall, 1),
            "frame_ms_p50": round(pct(frames, 0.5) * 1000, 2),
            "frame_ms_p99": round(pct(frames, 0.99) * 1000, 2),
            "frame_ms_max": round(max(frames, default=0) * 1000, 2),
            "terminal_kib_per_s": round(encoded_bytes / 1024 / wall, 1),
            "loop_lag_ms_p50": round(pct(lags, 0.5) * 1000, 2),
            "loop_lag_ms_p99": round(pct(lags, 0.99) * 1000, 2),
            "cpu_percent": round(100 * cpu / wall, 1),
            "full_gc": len(gc_pauses),
            "full_gc_ms_max": round(max(gc_pauses, default=0) * 1000, 1),
            "rows_shown": len(shown),
            "rows_current": sum(shown.get(p) == expected[p] for p in names),
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="frames per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--size", type=lambda s: tuple(int(x) for x in s.split("x")), default=(100, 70)
    )
    parser.add_argument("--budget-ms", type=float, default=50.0, help="p99 frame budget")
    parser.add_argument(
        "--no-freeze", action="store_true", help="leave the GC alone (ratectl tui freezes it)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    r = asyncio.run(measure(args))
    if args.json:
        print(json.dumps(r, indent=2))
    else:
        print(
            f"fed      {r['frames_fed']} frames x {r['pairs']} pairs at {r['rate']:g}/s "
            f"over {r['seconds']} s ({r['rates_fed']:,} rates)\n"
            f"batches  {r['batches']} ({r['batches_per_s']}/s), apply p50 {r['batch_ms_p50']} ms"
            f" p99 {r['batch_ms_p99']} ms max {r['batch_ms_max']} ms; "
            f"{r['cells_updated_per_s']:,} cells/s\n"
            f"frames   {r['frames']} ({r['frames_per_s']}/s), render p50 {r['frame_ms_p50']} ms"
            f" p99 {r['frame_ms_p99']} ms max {r['frame_ms_max']} ms; "
            f"{r['terminal_kib_per_s']} KiB/s to the terminal\n"
            f"loop     lag p50 {r['loop_lag_ms_p50']} ms p99 {r['loop_lag_ms_p99']} ms; "
            f"CPU {r['cpu_percent']}% of one core; {r['full_gc']} full GC passes, "
            f"longest {r['full_gc_ms_max']} ms\n"
            f"rows     {r['rows_current']}/{r['pairs']} show the last value fed"
        )
    ok = r["rows_current"] == args.pairs and r["frame_ms_p99"] <= args.budget_ms
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

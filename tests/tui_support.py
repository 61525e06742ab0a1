"""Shared by the TUI tests: frozen rates, the screen as plain text, text snapshots, waiting.

Snapshots are plain text (``tests/tui_snapshots/*.txt``), readable in a diff; rewrite them
after a deliberate change with ``RATEHUB_UPDATE_SNAPSHOTS=1 pytest tests/test_tui_app.py``.
"""

from __future__ import annotations

import asyncio
import io
import os
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

from rich.console import Console
from textual.app import App
from textual.pilot import Pilot

from ratectl.tui.app import RatehubApp
from ratectl.tui.hub_link import HubLink
from ratectl.tui.options import TuiOptions
from tests.conftest import timeout

SNAPSHOTS = Path(__file__).parent / "tui_snapshots"
# Read at import: the tests' clean environment (conftest) drops it before a test runs.
UPDATE = bool(os.environ.get("RATEHUB_UPDATE_SNAPSHOTS"))
NOW = 1767614400.0  # 2026-01-05T12:00:00Z, the frozen clock
NOW_MS = int(NOW * 1000)


def rate(
    pair: str,
    buy: float,
    sell: float,
    mid: float,
    *,
    tick: float = 0.0001,
    age_s: float = 2,
    stale: bool = False,
    override: str | None = None,
    source: str = "simulated",
    store: str | None = None,
) -> dict[str, Any]:
    """A wire rate dict as the hub sends it (``override``: the override's storeId or "")."""
    ov = None
    if override is not None:
        ov = {"id": "ov1", "storeId": override or None, "author": "env", "reason": "test"}
    return {
        "currencyPair": pair,
        "baseCurrency": pair[:3],
        "targetCurrency": pair[4:],
        "rate": mid,
        "buyRate": buy,
        "sellRate": sell,
        "spread": 0.02,
        "source": "manual" if ov else source,
        "storeId": store,
        "validUntil": None,
        "timestamp": NOW_MS,
        "stale": stale,
        "provenance": {
            "marketMid": mid,
            "marketSources": [source],
            "marketTimestamp": NOW_MS - int(age_s * 1000),
            "spreadApplied": 0.02,
            "tick": tick,
            "override": ov,
        },
    }


FROZEN = [
    rate("USD/CAD", 1.37, 1.33, 1.35, override="s1"),
    rate("EUR/CAD", 1.5045, 1.4746, 1.48957),
    rate("GBP/CAD", 1.7753, 1.7401, 1.75768, age_s=125, stale=True),
    rate("BTC/CAD", 136034.41, 133340.65, 134687.53, tick=0.01),
    rate("ETH/CAD", 4549.14, 4459.05, 4504.097, tick=0.01, override=""),
]


def frozen_options(**kw: Any) -> TuiOptions:
    base: dict[str, Any] = dict(
        url="http://127.0.0.1:3000", store="s1", connect=False, clock=lambda: NOW, tz=UTC
    )
    base.update(kw)
    return TuiOptions(**base)


async def feed(pilot: Pilot[Any], rates: list[dict[str, Any]], store: str | None = "s1") -> None:
    """Deliver one frame of rates as the hub link would, and let one batch apply."""
    app = pilot.app
    assert isinstance(app, RatehubApp)
    app.post_message(HubLink.Rates(store, rates, snapshot=False))
    await pilot.pause()
    app.flush()
    await pilot.pause()


def screen_text(app: App[Any]) -> str:
    """The screen as plain text, as export_screenshot renders it, without the SVG."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        record=True,
        color_system=None,
        legacy_windows=False,
    )
    update = app.screen._compositor.render_update(  # as export_screenshot does
        full=True, screen_stack=app._background_screens
    )
    console.print(update)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


def assert_snapshot(app: App[Any], name: str) -> None:
    text = screen_text(app)
    path = SNAPSHOTS / f"{name}.txt"
    if UPDATE or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        if not UPDATE:
            raise AssertionError(f"new snapshot {path}: check it, then run again")
    assert text == path.read_text(encoding="utf-8"), (
        f"the screen differs from {path}; if the change is meant, rerun with "
        "RATEHUB_UPDATE_SNAPSHOTS=1"
    )


async def until(pilot: Pilot[Any], predicate: Callable[[], bool], limit: float = 10) -> None:
    """Let the app run until ``predicate()`` holds, or fail after ``limit`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout(limit)
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout(limit)} s: {predicate.__doc__ or predicate}")
        await pilot.pause(0.02)

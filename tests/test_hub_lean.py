"""Lean rate frames: a rate carries what the guide's clients read in every frame, and its
extras (provenance, storeId, validUntil, stale) in the snapshot and when they change;
``"provenance": "always"`` asks for complete rates every time. The checksum keeps its
meaning: it covers the table the client holds once each rate is merged in.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from ratehubd.hub.hub import LEAN_FIELDS, checksum
from ratehubd.hub.session import DASHBOARD, STORE_OS
from tests.conftest import ADMIN_KEY, start_daemon, timeout
from tests.hub_fakes import (
    EURCAD,
    T0,
    USDCAD,
    FakeRates,
    drain,
    kind,
    make_hub,
    payload,
    rates_of,
    send,
)

WINDOW = 0.05
# What the guide's clients read: in every rate of every frame (DESIGN.md).
CORE = (
    "currencyPair",
    "baseCurrency",
    "targetCurrency",
    "rate",
    "buyRate",
    "sellRate",
    "spread",
    "source",
    "timestamp",
)


def with_provenance(r: dict[str, Any], override: str | None = None) -> dict[str, Any]:
    r["provenance"] = {
        "marketMid": r["rate"],
        "marketSources": ["sim"],
        "marketTimestamp": r["timestamp"],
        "spreadApplied": 0.02,
        "tick": 0.0001,
        "override": None if override is None else {"id": override, "reason": "x"},
        "legs": [],
    }
    r["stale"] = False
    return r


def tick(rates: FakeRates, buy: float, override: str | None = None) -> None:
    rates.set(USDCAD, buy, buy - 0.027)
    with_provenance(rates.table[USDCAD], override)
    rates.table[USDCAD]["provenance"]["marketMid"] = buy - 0.0135  # moves with every tick


def test_extras_go_out_in_the_snapshot_and_when_they_change() -> None:
    rates = FakeRates()
    for r in rates.table.values():
        with_provenance(r)
    hub = make_hub(rates)
    s = hub.open(1, STORE_OS, "s1", "admin", T0)
    snap = drain(hub, s)[-1]
    assert kind(snap) == "rate_update" and payload(snap)["snapshot"] is True
    assert all(set(LEAN_FIELDS) <= set(r) for r in payload(snap)["rates"])  # complete

    t = T0
    frames = []
    for i, override in enumerate([None, None, "ov-1", "ov-1", None]):
        t += WINDOW
        tick(rates, 1.37 + i / 1000, override)
        hub.mark_rates([USDCAD])
        hub.flush(t)
        frames.append(rates_of(drain(hub, s)[-1])["USD/CAD"])
    for r in frames:
        assert all(k in r for k in CORE)
    # The market mid moved in each: not a reason to resend. The first frame after the
    # snapshot resends (the snapshot is newer than anything the group's frames carried);
    # then only the override's arrival (2) and departure (4).
    carried = ["provenance" in r for r in frames]
    assert carried == [True, False, True, False, True]
    assert frames[2]["provenance"]["override"]["id"] == "ov-1"
    assert frames[4]["provenance"]["override"] is None
    assert frames[1] == {k: v for k, v in rates_of_table(rates, frames[1]).items()}


def rates_of_table(rates: FakeRates, r: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in r.items() if k not in LEAN_FIELDS}


def test_stale_goes_out_when_it_changes_and_merged_the_checksum_holds() -> None:
    rates = FakeRates()
    for r in rates.table.values():
        with_provenance(r)
    hub = make_hub(rates)
    s = hub.open(1, DASHBOARD, None, "admin", T0)
    held = {r["currencyPair"]: r for r in payload(drain(hub, s)[-1])["rates"]}
    t = T0
    for i, stale in enumerate([False, True, True, False]):
        t += WINDOW
        tick(rates, 1.40 + i / 1000)
        rates.table[USDCAD]["stale"] = stale
        rates.set(EURCAD, 1.50 + i / 1000, 1.47)
        with_provenance(rates.table[EURCAD])
        hub.mark_rates([USDCAD, EURCAD])
        hub.flush(t)
        frame = drain(hub, s)[-1]
        for r in payload(frame)["rates"]:
            held[r["currencyPair"]] = {**held[r["currencyPair"]], **r}
        assert held["USD/CAD"]["stale"] is stale
        # The checksum is the merged table's, as before lean frames.
        assert payload(frame)["checksum"] == checksum(held.values())


def test_provenance_always_gets_complete_rates_and_is_acknowledged() -> None:
    rates = FakeRates()
    for r in rates.table.values():
        with_provenance(r)
    hub = make_hub(rates)
    full = hub.open(1, STORE_OS, "s1", "admin", T0)
    lean = hub.open(2, STORE_OS, "s1", "admin", T0)
    send(hub, full, "rate_subscribe", {"currencies": ["USD"], "provenance": "always"})
    send(hub, lean, "rate_subscribe", {"currencies": ["USD"]})
    ack = [m for m in drain(hub, full) if kind(m) == "subscribed"][-1]
    assert payload(ack)["provenance"] == "always"
    drain(hub, lean)
    t = T0
    for i in range(3):
        t += WINDOW
        tick(rates, 1.37 + i / 1000)
        hub.mark_rates([USDCAD])
        hub.flush(t)
        got_full = rates_of(drain(hub, full)[-1])["USD/CAD"]
        got_lean = rates_of(drain(hub, lean)[-1])["USD/CAD"]
        assert set(LEAN_FIELDS) <= set(got_full)
        if i:
            assert not set(LEAN_FIELDS) & set(got_lean)
    # A later subscribe that does not say keeps the choice; a bad value is refused.
    send(hub, full, "subscribe", {"symbols": ["USD"]})
    assert (
        payload([m for m in drain(hub, full) if kind(m) == "subscribed"][-1])["provenance"]
        == "always"
    )
    send(hub, full, "subscribe", {"symbols": ["USD"], "provenance": "sometimes"})
    err = [m for m in drain(hub, full) if kind(m) == "error"][-1]
    assert payload(err)["code"] == "invalid_data" and "provenance" in payload(err)["message"]


def test_a_real_daemons_frames_are_lean_and_carry_what_the_guides_clients_read(
    tmp_path: Path,
) -> None:
    """Five pairs on a store channel, from a real ratehubd: every rate has the fields the
    guide's dashboard and calculator read; after the snapshot, frames are under half its
    size (sizes printed for the record)."""
    d = start_daemon(tmp_path / "state", env={"RATE_UPDATE_FREQUENCY": "100"})
    try:
        url = f"{d.ws_url}?clientType=store_os&storeId=store123&token={ADMIN_KEY}"
        with connect(url) as ws:
            snapshot, full_sizes, lean_sizes = None, [], []
            held: dict[str, dict[str, Any]] = {}
            while len(lean_sizes) < 4:
                text = ws.recv(timeout=timeout(10))
                msg = json.loads(text)
                if msg["type"] != "rate_update":
                    continue
                rates = msg["data"]["rates"]
                for r in rates:
                    assert all(k in r for k in CORE), r  # the guide's calculator and board
                    held[r["currencyPair"]] = {**held.get(r["currencyPair"], {}), **r}
                assert msg["data"]["checksum"] == checksum(held.values())
                if snapshot is None:
                    snapshot = msg
                    full_sizes.append(len(text.encode()))
                elif len(rates) == 5:
                    lean_sizes.append(len(text.encode()))
        print(f"5-pair rate frame: snapshot {full_sizes[0]} B, then {lean_sizes} B")
        # The first frame after a snapshot carries the extras again; the rest are lean.
        assert max(lean_sizes[1:]) < 0.5 * full_sizes[0]
    finally:
        d.finish()

"""``ack``: a terminal confirms the rate table it applied, by the frame's checksum.

The guide's clients never acknowledge and keep working; a client that does is counted as
confirming, and as current while its last ack is its group's newest table. Bad acks get
the usual ``error`` and change nothing."""

from __future__ import annotations

from typing import Any

import pytest

from ratehubd.hub.session import STORE_OS
from tests.hub_fakes import T0, USDCAD, FakeRates, drain, kind, make_hub, payload, send

WINDOW = 0.05


def errors(msgs: list[dict[str, Any]]) -> list[str]:
    return [payload(m)["message"] for m in msgs if kind(m) == "error"]


def test_an_acknowledged_table_makes_the_terminal_current_until_a_newer_one_is_sent() -> None:
    rates = FakeRates()
    hub = make_hub(rates)
    s = hub.open(1, STORE_OS, "s1", "admin", T0)
    snap = drain(hub, s)[-1]
    # Never acked: unconfirmed, not counted.
    assert hub.confirmations(T0) == {
        "confirming": 0,
        "current": 0,
        "stale": 0,
    }  # never acked: unconfirmed
    send(hub, s, "ack", {"checksum": payload(snap)["checksum"], "seq": snap["seq"]})
    assert errors(drain(hub, s)) == []  # no reply to an ack
    assert hub.confirmations(T0) == {"confirming": 1, "current": 1, "stale": 0}
    assert s.acks == 1 and s.ack_at == T0

    rates.set(USDCAD, 1.40, 1.36, "s1")
    hub.mark_rates([USDCAD], "s1")
    hub.flush(T0 + WINDOW)
    frame = drain(hub, s)[-1]
    assert hub.terminal_state(s, T0 + WINDOW) == "confirming"  # sent, not yet confirmed
    assert hub.terminal_state(s, T0 + WINDOW + 3.0) == "stale"  # hub.confirm_timeout_ms
    [t] = hub.terminals("s1", T0 + WINDOW + 3.0)
    assert t["state"] == "stale" and t["ackChecksum"] == payload(snap)["checksum"]
    assert t["expectedChecksum"] == payload(frame)["checksum"] and t["acks"] == 1
    assert t["current"] is False and t["staleSinceMs"] == int((T0 + WINDOW) * 1000)
    send(hub, s, "ack", {"checksum": payload(frame)["checksum"]}, T0 + 2 * WINDOW)
    assert hub.confirmations(T0 + 9) == {"confirming": 1, "current": 1, "stale": 0}
    # An older table it was sent may still be acknowledged (acks cross frames in flight).
    send(hub, s, "ack", {"checksum": payload(snap)["checksum"]}, T0 + 3 * WINDOW)
    assert errors(drain(hub, s)) == []
    assert hub.confirmations(T0 + 9) == {"confirming": 1, "current": 0, "stale": 1}


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"checksum": 1234}, "checksum must be the 8 hex digits"),
        ({"checksum": "XYZ"}, "checksum must be the 8 hex digits"),
        ({}, "checksum must be the 8 hex digits"),
        ({"checksum": "00000000"}, "was not sent to this connection"),
        ({"checksum": "CHECK", "seq": -1}, "checksum must be"),
    ],
)
def test_a_bad_ack_gets_an_error_and_changes_nothing(data: dict[str, Any], says: str) -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "s1", "admin", T0)
    good = payload(drain(hub, s)[-1])["checksum"]
    send(hub, s, "ack", {"checksum": good})
    send(hub, s, "ack", data)
    [said] = errors(drain(hub, s))
    assert says in said
    assert s.ack_checksum == good and s.acks == 1


def test_a_bad_seq_is_refused() -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "s1", "admin", T0)
    good = payload(drain(hub, s)[-1])["checksum"]
    send(hub, s, "ack", {"checksum": good, "seq": "7"})
    [said] = errors(drain(hub, s))
    assert "seq must be a non-negative integer" in said and s.acks == 0

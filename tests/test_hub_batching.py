"""The sans-I/O hub: batching and conflation, shared frames, frequency throttling,
events, sequence numbers, checksums, market data and heartbeats."""

from __future__ import annotations

import json
import zlib
from typing import Any

from ratehubd.hub.hub import checksum
from ratehubd.hub.session import DASHBOARD, STORE_OS
from tests.hub_fakes import (
    BTCCAD,
    EURCAD,
    T0,
    USDCAD,
    FakeRates,
    core,
    drain,
    kind,
    make_hub,
    payload,
    rates_of,
    send,
)

WINDOW = 0.05


def crc(text: str) -> str:
    return f"{zlib.crc32(text.encode()):08x}"


# -- batching and conflation ----------------------------------------------------------------


def test_many_marks_in_a_window_leave_as_one_frame_with_the_latest_values() -> None:
    rates = FakeRates()
    hub = make_hub(rates)
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    for i in range(10):
        rates.set(USDCAD, round(1.3635 + i / 10000, 4), 1.3365)
        hub.mark_rates([USDCAD])
    for i in range(5):
        rates.set(EURCAD, round(1.51 + i / 100, 2), 1.47, "store123")
        hub.mark_rates([EURCAD], "store123")
    assert drain(hub, s) == []  # nothing leaves before the window closes
    hub.flush(T0 + WINDOW)
    [msg] = drain(hub, s)
    got = rates_of(msg)
    assert sorted(got) == ["EUR/CAD", "USD/CAD"]
    assert got["USD/CAD"]["buyRate"] == 1.3644
    assert got["EUR/CAD"]["buyRate"] == 1.55
    assert "snapshot" not in payload(msg)
    # 15 marks of 2 distinct (store, pair) values: 13 superseded.
    assert hub.stats.conflated == 13
    # The next window is empty: nothing is sent again.
    hub.flush(T0 + 2 * WINDOW)
    assert drain(hub, s) == []
    assert hub.stats.conflated == 13


def test_conflated_counts_values_not_groups() -> None:
    hub = make_hub()
    sessions = [hub.open(i, STORE_OS, f"store{i % 3}", "admin", T0) for i in range(9)]
    sessions += [hub.open(10 + i, DASHBOARD, None, "admin", T0) for i in range(3)]
    for _ in range(4):
        hub.mark_rates([USDCAD, EURCAD])
    hub.flush(T0 + WINDOW)
    assert hub.stats.conflated == 6  # 8 marks, 2 distinct values
    assert all(len(s.outbox) == 3 for s in sessions)  # welcome, snapshot, one update


def test_a_group_shares_one_frame_encoded_once() -> None:
    rates = FakeRates()
    hub = make_hub(rates)
    a = [hub.open(i, STORE_OS, "store123", "admin", T0) for i in range(1, 4)]
    b = hub.open(4, STORE_OS, "store999", "admin", T0)
    c = hub.open(5, DASHBOARD, "store123", "admin", T0)
    d = hub.open(6, STORE_OS, "store123", "admin", T0)
    send(hub, d, "subscribe", {"symbols": ["USDCAD"]})
    for s in [*a, b, c, d]:
        drain(hub, s)
    rates.calls.clear()
    hub.mark_rates([USDCAD])
    hub.flush(T0 + WINDOW)
    frames = [s.outbox[0] for s in a]
    assert frames[0] is frames[1] is frames[2]
    assert frames[0].data is frames[1].data  # UTF-8 encoded once, cached
    assert frames[0].data == frames[0].text.encode()
    # Another store, another dialect, another subscription shape: another frame.
    others = [b.outbox[0], c.outbox[0], d.outbox[0]]
    assert all(f is not frames[0] for f in others)
    assert len({id(f) for f in others}) == 3
    # The store tables were read once per store, not once per session or group.
    assert sorted(rates.calls, key=str) == ["store123", "store999"]


def test_frequency_is_a_minimum_interval_per_client() -> None:
    rates = FakeRates()
    hub = make_hub(rates)
    slow = hub.open(1, DASHBOARD, None, "admin", T0)
    fast = hub.open(2, DASHBOARD, None, "admin", T0)
    send(hub, slow, "subscribe", {"symbols": ["USD", "EUR"], "frequency": 1000})
    send(hub, fast, "subscribe", {"symbols": ["USD", "EUR"]})
    drain(hub, slow)
    drain(hub, fast)
    got_slow: list[dict[str, Any]] = []
    got_fast: list[dict[str, Any]] = []
    t = T0
    for i in range(40):  # 2 s of windows, a change in each
        t += WINDOW
        rates.set(USDCAD if i % 2 else EURCAD, 1.40 + i / 1000, 1.30)
        hub.mark_rates([USDCAD if i % 2 else EURCAD])
        hub.flush(t)
        got_slow += drain(hub, slow)
        got_fast += drain(hub, fast)
    assert len(got_fast) == 40
    assert 2 <= len(got_slow) <= 3
    stamps = [m["timestamp"] for m in got_slow]
    assert all(b - a >= 999 for a, b in zip(stamps, stamps[1:], strict=False))
    # After a quiet second the throttled client gets what it was owed, latest values only.
    hub.flush(t + 1.0)
    got_slow += drain(hub, slow)
    assert rates_of(got_slow[-1]) == {  # lean: the extras went out in earlier frames
        "USD/CAD": core(rates.table[USDCAD]),
        "EUR/CAD": core(rates.table[EURCAD]),
    }


def test_events_are_never_conflated_and_keep_their_order() -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    for i in range(5):
        hub.publish_event("rate_override_set", {"currencyPair": "USD/CAD", "n": i}, "store123", T0)
        hub.mark_rates([USDCAD], "store123")
    hub.publish_event("rate_lock_created", {"currencyPair": "USD/CAD"}, "store123", T0)
    hub.flush(T0 + WINDOW)
    msgs = drain(hub, s)
    assert [kind(m) for m in msgs] == ["rate_override_set"] * 5 + [
        "rate_lock_created",
        "rate_update",
    ]
    assert [payload(m).get("n") for m in msgs[:5]] == [0, 1, 2, 3, 4]
    assert [m["seq"] for m in msgs] == [1, 2, 3, 4, 5, 6, 6]


# -- seq and epoch --------------------------------------------------------------------------


def test_every_frame_carries_seq_and_epoch() -> None:
    hub = make_hub(epoch="db-7", first_seq=41)
    s = hub.open(1, DASHBOARD, "store123", "admin", T0)
    o = hub.open(2, STORE_OS, "store123", "admin", T0)
    hub.publish_event("rate_override_set", {"currencyPair": "USD/CAD"}, "store123", T0)
    hub.mark_rates([USDCAD])
    hub.publish_market([{"currencyPair": "USD/CAD", "rate": 1.35}], T0)
    hub.flush(T0 + WINDOW)
    hub.heartbeat(T0 + 1)
    for sess in (s, o):
        send(hub, sess, "ping", {}, now=T0 + 1)
        send(hub, sess, "subscribe", {"subscriptionType": "market_data"}, now=T0 + 1)
        send(hub, sess, "bogus", {}, now=T0 + 1)
    for sess in (s, o):
        msgs = drain(hub, sess)
        assert {kind(m) for m in msgs} >= {
            "welcome",
            "rate_update",
            "rate_override_set",
            "heartbeat",
            "pong",
            "subscribed",
            "error",
        }
        for m in msgs:
            assert m["epoch"] == "db-7", m
            assert m["seq"] in (40, 41), m
        assert msgs[0]["seq"] == 40  # welcome: nothing published yet
        assert msgs[-1]["seq"] == 41
    assert hub.seq == 41


def test_seq_is_allocated_in_order_and_published_with_its_number() -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    a, b = hub.allocate_seq(), hub.allocate_seq()
    assert (a, b) == (1, 2)
    hub.publish_event("rate_override_set", {}, "store123", T0, seq=a)
    hub.publish_event("rate_override_cleared", {}, "store123", T0, seq=b)
    assert hub.publish_event("rate_lock_created", {}, "store123", T0).seq == 3
    assert [m["seq"] for m in drain(hub, s)] == [1, 2, 3]
    assert [ev.seq for ev in hub.log] == [1, 2, 3]


def test_sent_moves_the_resume_position() -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    hub.publish_event("rate_override_set", {}, "store123", T0)
    hub.publish_event("rate_override_set", {}, "store123", T0)
    assert s.last_seq == 0  # queued, not written
    drain(hub, s)
    assert s.last_seq == 2


# -- checksum -------------------------------------------------------------------------------


def test_checksum_matches_a_recomputation() -> None:
    rates = FakeRates()
    rates.set(USDCAD, 1.37, 1.33, "store123")
    hub = make_hub(rates)
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    _, snap = drain(hub, s)
    expected = crc("BTC/CAD=136350/133650;EUR/CAD=1.5049/1.4751;USD/CAD=1.37/1.33;")
    assert payload(snap)["checksum"] == expected
    # A delta frame carries the checksum of the whole subscribed table, not of the delta.
    hub.mark_rates([EURCAD])
    hub.flush(T0 + WINDOW)
    [msg] = drain(hub, s)
    assert list(rates_of(msg)) == ["EUR/CAD"]
    assert payload(msg)["checksum"] == expected


def test_checksum_covers_what_the_client_subscribed_to() -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    send(hub, s, "rate_subscribe", {"currencies": ["USD"], "rateType": "buy"})
    _, snap = drain(hub, s)
    [r] = rates_of(snap).values()
    assert "sellRate" not in r
    # The client can recompute it from what it holds: the buy side only.
    assert payload(snap)["checksum"] == crc("USD/CAD=1.3635/undefined;")


def test_checksum_prints_numbers_as_javascript_does() -> None:
    def one(buy: float, sell: float) -> str:
        return checksum([{"currencyPair": "X/Y", "buyRate": buy, "sellRate": sell}])

    assert one(135000.0, 1.5) == crc("X/Y=135000/1.5;")
    assert one(0.00005, 0.000001) == crc("X/Y=0.00005/0.000001;")
    assert one(1.5e-7, 1e-7) == crc("X/Y=1.5e-7/1e-7;")
    assert one(1.5e16, 1e20) == crc("X/Y=15000000000000000/100000000000000000000;")
    assert one(1e21, 2.5e22) == crc("X/Y=1e+21/2.5e+22;")
    assert one(0.1 + 0.2, 3.0) == crc("X/Y=0.30000000000000004/3;")


def test_checksum_is_order_independent() -> None:
    rows = [
        {"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33},
        {"currencyPair": "EUR/CAD", "buyRate": 1.5, "sellRate": 1.4},
    ]
    assert checksum(rows) == checksum(rows[::-1]) == crc("EUR/CAD=1.5/1.4;USD/CAD=1.37/1.33;")


# -- market data and heartbeats -------------------------------------------------------------


def test_market_data_is_batched_filtered_and_only_for_who_asked() -> None:
    hub = make_hub()
    every = hub.open(1, DASHBOARD, None, "admin", T0)
    usd = hub.open(2, DASHBOARD, None, "admin", T0)
    plain = hub.open(3, DASHBOARD, None, "admin", T0)
    send(hub, every, "subscribe", {"subscriptionType": "market_data"})
    send(hub, usd, "subscribe", {"symbols": ["USD"], "subscriptionType": "market_data"})
    for s in (every, usd, plain):
        drain(hub, s)
    for i in range(20):
        hub.publish_market([{"currencyPair": "USD/CAD", "rate": 1.35 + i / 10000}], T0)
        hub.publish_market([{"currencyPair": "BTC/CAD", "rate": 135000 + i}], T0)
    assert drain(hub, every) == []  # waits for the window
    hub.flush(T0 + WINDOW)
    [m] = drain(hub, every)
    assert kind(m) == "market_data_update"
    assert payload(m)["quotes"] == [
        {"currencyPair": "BTC/CAD", "rate": 135019},
        {"currencyPair": "USD/CAD", "rate": 1.3519},
    ]
    [m] = drain(hub, usd)
    assert payload(m)["quotes"] == [{"currencyPair": "USD/CAD", "rate": 1.3519}]
    assert drain(hub, plain) == []


def test_heartbeat_reaches_everyone() -> None:
    hub = make_hub()
    sessions = [hub.open(1, DASHBOARD, None, "a", T0), hub.open(2, STORE_OS, "s", "a", T0)]
    for s in sessions:
        drain(hub, s)
    hub.publish_event("rate_override_set", {}, None, T0)
    hub.heartbeat(T0 + 30)
    for s in sessions:
        beat = drain(hub, s)[-1]
        assert beat["type"] == "heartbeat"
        assert payload(beat) == {"serverTime": int((T0 + 30) * 1000), "epoch": "epoch-1", "seq": 1}


def test_ready_lists_sessions_with_something_to_send() -> None:
    hub = make_hub()
    a = hub.open(1, STORE_OS, "store123", "admin", T0)
    b = hub.open(2, STORE_OS, "store999", "admin", T0)
    assert set(hub.take_ready()) == {a, b}
    assert hub.take_ready() == []
    drain(hub, a)
    drain(hub, b)
    hub.mark_rates([BTCCAD], "store999")
    hub.flush(T0 + WINDOW)
    assert hub.take_ready() == [b]
    assert json.loads(b.outbox[0].text)["data"]["rates"][0]["currencyPair"] == "BTC/CAD"


# -- the adapter's alarms -------------------------------------------------------------------


def test_wake_rings_once_per_window_at_the_first_change() -> None:
    hub = make_hub()
    rings: list[str] = []
    hub.wake = lambda: rings.append("wake")
    hub.queued = lambda: rings.append("queued")
    s = hub.open(1, STORE_OS, "s1", "admin", T0)  # (its snapshot rings ``queued``)
    drain(hub, s)
    s.write = lambda frame: True  # a draining socket
    rings.clear()
    hub.mark_rates([USDCAD])
    hub.mark_rates([EURCAD], "s1")
    hub.publish_market([{"currencyPair": "USD/CAD"}], T0)
    assert rings == ["wake"]  # one flush owed, however many changes
    hub.flush(T0 + WINDOW)
    hub.mark_rates([USDCAD])
    assert rings == ["wake", "wake"]


def test_a_frame_left_in_an_outbox_rings_queued_not_wake() -> None:
    """A socket that does not drain must not set when the hub flushes: its frames ring
    ``queued`` (write when you can), never ``wake`` (flush)."""
    hub = make_hub()
    rings: list[str] = []
    hub.wake = lambda: rings.append("wake")
    hub.queued = lambda: rings.append("queued")
    s = hub.open(1, STORE_OS, "s1", "admin", T0)
    drain(hub, s)  # (the welcome and snapshot), so the event tries the socket first
    declined: list[str] = []
    s.write = lambda frame: declined.append(frame.text) is not None  # not draining
    rings.clear()
    hub.publish_event("rate_lock_created", {"lockId": "L1"}, "s1", T0)
    assert len(declined) == 1
    assert rings == ["queued"]
    assert kind(json.loads(s.outbox[-1].text)) == "rate_lock_created"


def test_a_draining_session_is_written_at_once() -> None:
    hub = make_hub()
    written: list[str] = []
    s = hub.open(1, STORE_OS, "s1", "admin", T0)
    drain(hub, s)
    s.write = lambda frame: written.append(frame.text) is None
    hub.mark_rates([USDCAD])
    hub.flush(T0 + WINDOW)
    assert not s.outbox
    assert [kind(json.loads(t)) for t in written] == ["rate_update"]
    assert s.last_seq == json.loads(written[0])["seq"]


def test_owes_a_flush_while_a_frequency_holds_a_group_back() -> None:
    rates = FakeRates()
    hub = make_hub(rates)
    slow = hub.open(1, DASHBOARD, None, "admin", T0)
    send(hub, slow, "subscribe", {"symbols": ["USD"], "frequency": 1000})
    drain(hub, slow)
    hub.mark_rates([USDCAD])
    hub.flush(T0 + WINDOW)
    drain(hub, slow)
    hub.mark_rates([USDCAD])
    hub.flush(T0 + 2 * WINDOW)  # within the client's second: held back
    assert hub.owes()
    hub.flush(T0 + 1.2)
    assert rates_of(drain(hub, slow)[-1])
    assert not hub.owes()

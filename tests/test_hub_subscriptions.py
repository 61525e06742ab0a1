"""The sans-I/O hub: sessions, the two dialects, subscriptions, store isolation and bad
input. Time is a float passed in; the rates provider is a dict the test mutates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ratehubd.errors import Forbidden, ProtocolError
from ratehubd.hub.session import DASHBOARD, STORE_OS
from tests.hub_fakes import (
    BTCCAD,
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

ALL = ["BTC/CAD", "EUR/CAD", "USD/CAD"]


# -- open -----------------------------------------------------------------------------------


@pytest.mark.parametrize("ctype", [DASHBOARD, STORE_OS])
def test_open_sends_welcome_then_snapshot(ctype: str) -> None:
    hub = make_hub(heartbeat_interval_ms=15000)
    s = hub.open(1, ctype, "store123", "admin", T0)
    welcome, snap = drain(hub, s)
    assert welcome["type"] == "welcome"
    assert welcome["timestamp"] == int(T0 * 1000)
    assert payload(welcome) == {
        "sessionId": 1,
        "clientType": ctype,
        "storeId": "store123",
        "epoch": "epoch-1",
        "seq": 0,
        "heartbeatIntervalMs": 15000,
        "protocol": 1,
        "accepts": [
            "subscribe",
            "rate_subscribe",
            "unsubscribe",
            "resume",
            "ping",
            "push_rate",
            "ack",
        ],
    }
    assert kind(snap) == "rate_update"
    assert payload(snap)["snapshot"] is True
    assert sorted(rates_of(snap)) == ALL
    assert rates_of(snap)["USD/CAD"]["storeId"] == "store123"
    assert (snap["seq"], snap["epoch"]) == (0, "epoch-1")


def test_unknown_client_type_is_refused() -> None:
    hub = make_hub()
    with pytest.raises(ProtocolError, match="clientType must be one of dashboard, store_os"):
        hub.open(1, "terminal", None, "admin", T0)
    assert hub.sessions == {}


def test_close_forgets_the_session() -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    hub.close(1)
    hub.close(1)  # twice is harmless
    assert hub.sessions == {}
    hub.mark_rates([USDCAD])
    hub.flush(T0 + 1)
    hub.publish_event("rate_override_set", {"currencyPair": "USD/CAD"}, None, T0 + 1)
    assert len(s.outbox) == 2  # only what was queued before the close
    assert s not in hub.take_ready()


# -- dialects -------------------------------------------------------------------------------


def test_dashboard_dialect_is_data_wrapping_rate_update() -> None:
    """The guide's dashboard reads message.data.rates under type "data"."""
    rates = FakeRates()
    hub = make_hub(rates)
    s = hub.open(1, DASHBOARD, None, "admin", T0)
    drain(hub, s)
    rates.set(USDCAD, 1.37, 1.33)
    hub.mark_rates([USDCAD])
    hub.flush(T0 + 0.05)
    [msg] = drain(hub, s)
    assert msg["type"] == "data"
    assert msg["data"]["type"] == "rate_update"
    assert [r["buyRate"] for r in msg["data"]["rates"]] == [1.37]
    assert msg["timestamp"] == int((T0 + 0.05) * 1000)
    assert msg["epoch"] == "epoch-1"


def test_store_os_dialect_is_a_rate_update_event() -> None:
    """The guide's store terminal service reads {type: "rate_update", data: {rates}}."""
    rates = FakeRates()
    hub = make_hub(rates)
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    rates.set(USDCAD, 1.37, 1.33, "store123")
    hub.mark_rates([USDCAD], "store123")
    hub.flush(T0 + 0.05)
    [msg] = drain(hub, s)
    assert msg["type"] == "rate_update"
    assert [(r["buyRate"], r["sellRate"]) for r in msg["data"]["rates"]] == [(1.37, 1.33)]
    assert "checksum" in msg["data"]


# -- subscribe ------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["USD/CAD", "USDCAD", "usd-cad", "USD"])
def test_subscribe_by_any_symbol_form(symbol: str) -> None:
    hub = make_hub()
    s = hub.open(1, DASHBOARD, None, "admin", T0)
    drain(hub, s)
    send(hub, s, "subscribe", {"symbols": [symbol], "subscriptionType": "rates"})
    ack, snap = drain(hub, s)
    assert ack["type"] == "subscribed"
    assert payload(ack)["pairs"] == ["USD/CAD"]
    assert payload(ack)["unknownSymbols"] == []
    assert sorted(rates_of(snap)) == ["USD/CAD"]
    # Changes to other pairs no longer reach it; USD/CAD does.
    hub.mark_rates([EURCAD, BTCCAD])
    hub.flush(T0 + 0.05)
    assert drain(hub, s) == []
    hub.mark_rates([USDCAD, EURCAD])
    hub.flush(T0 + 0.1)
    [msg] = drain(hub, s)
    assert sorted(rates_of(msg)) == ["USD/CAD"]


def test_guide_store_subscribe_reports_unknown_symbols() -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    data = {"symbols": ["USDCAD", "EURCAD", "BTCUSD"], "subscriptionType": "rates"}
    send(hub, s, "subscribe", {**data, "storeId": "store123"})
    ack, snap = drain(hub, s)
    assert payload(ack)["pairs"] == ["EUR/CAD", "USD/CAD"]
    assert payload(ack)["unknownSymbols"] == ["BTCUSD"]
    assert payload(ack)["storeId"] == "store123"
    assert sorted(rates_of(snap)) == ["EUR/CAD", "USD/CAD"]


def test_guide_dashboard_subscribe_to_market_data() -> None:
    hub = make_hub()
    s = hub.open(1, DASHBOARD, None, "admin", T0)
    drain(hub, s)
    symbols = ["USD/CAD", "EUR/CAD", "GBP/CAD", "BTC/CAD", "ETH/CAD"]
    send(
        hub,
        s,
        "subscribe",
        {"symbols": symbols, "subscriptionType": "market_data", "frequency": 30000},
    )
    ack, snap = drain(hub, s)
    assert payload(ack)["marketData"] is True
    assert payload(ack)["frequency"] == 30000
    assert payload(ack)["unknownSymbols"] == ["GBP/CAD", "ETH/CAD"]
    assert sorted(rates_of(snap)) == ALL


def test_rate_subscribe_by_currency_both_sides() -> None:
    """The guide's SmartCalculator: subscribeToRates(['USD', 'EUR'])."""
    hub = make_hub()
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    data = {"currencies": ["USD", "EUR"], "storeId": "store123", "includeMarketData": False}
    send(hub, s, "rate_subscribe", {**data, "rateType": "both"})
    ack, snap = drain(hub, s)
    assert ack["type"] == "subscribed"
    assert payload(ack)["request"] == "rate_subscribe"
    assert payload(ack)["pairs"] == ["EUR/CAD", "USD/CAD"]
    got = rates_of(snap)
    assert sorted(got) == ["EUR/CAD", "USD/CAD"]
    for r in got.values():
        assert {"baseCurrency", "targetCurrency", "rate", "buyRate", "sellRate"} <= set(r)


@pytest.mark.parametrize(("rate_type", "gone"), [("buy", "sellRate"), ("sell", "buyRate")])
def test_rate_type_keeps_one_side(rate_type: str, gone: str) -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    send(hub, s, "rate_subscribe", {"currencies": ["USD"], "rateType": rate_type})
    _, snap = drain(hub, s)
    [r] = rates_of(snap).values()
    assert gone not in r
    assert {"buyRate", "sellRate"} - {gone} <= set(r)
    hub.mark_rates([USDCAD])
    hub.flush(T0 + 0.05)
    [msg] = drain(hub, s)
    assert gone not in rates_of(msg)["USD/CAD"]


def test_unsubscribe() -> None:
    hub = make_hub()
    s = hub.open(1, DASHBOARD, None, "admin", T0)
    drain(hub, s)
    send(hub, s, "unsubscribe", {"symbols": ["USDCAD"]})
    [ack] = drain(hub, s)
    assert payload(ack)["pairs"] == ["BTC/CAD", "EUR/CAD"]
    hub.mark_rates([USDCAD])
    hub.flush(T0 + 0.05)
    assert drain(hub, s) == []
    send(hub, s, "unsubscribe", {})
    [ack] = drain(hub, s)
    assert payload(ack)["pairs"] == []
    hub.mark_rates([EURCAD, BTCCAD])
    hub.flush(T0 + 0.1)
    assert drain(hub, s) == []


def test_subscribe_to_another_store_is_authorized() -> None:
    calls: list[tuple[str, str | None]] = []

    def authorize(key_id: str, store_id: str | None) -> None:
        calls.append((key_id, store_id))
        if store_id != "store123":
            raise Forbidden(f"key {key_id} may not read {store_id}; it is bound to store123")

    rates = FakeRates()
    rates.set(USDCAD, 1.37, 1.33, "store123")
    hub = make_hub(rates, authorize=authorize)
    s = hub.open(1, STORE_OS, None, "clerk", T0)
    drain(hub, s)
    send(hub, s, "subscribe", {"symbols": ["USDCAD"], "storeId": "store999"})
    [err] = drain(hub, s)
    assert err["type"] == "error"
    assert payload(err) == {
        "code": "forbidden",
        "message": "key clerk may not read store999; it is bound to store123",
    }
    assert s.store_id is None  # unchanged
    send(hub, s, "subscribe", {"symbols": ["USDCAD"], "storeId": "store123"})
    _, snap = drain(hub, s)
    assert rates_of(snap)["USD/CAD"]["buyRate"] == 1.37
    assert calls == [("clerk", "store999"), ("clerk", "store123")]


# -- store isolation ------------------------------------------------------------------------


def _three_sessions() -> tuple[Any, FakeRates, list[Any]]:
    rates = FakeRates()
    hub = make_hub(rates)
    sessions = [
        hub.open(1, STORE_OS, "store123", "admin", T0),
        hub.open(2, STORE_OS, "store999", "admin", T0),
        hub.open(3, DASHBOARD, None, "admin", T0),
        hub.open(4, DASHBOARD, "store123", "admin", T0),
    ]
    for s in sessions:
        drain(hub, s)
    return hub, rates, sessions


def test_a_store_mark_reaches_only_that_store() -> None:
    hub, rates, (mine, other, dash, mine_dash) = _three_sessions()
    rates.set(USDCAD, 1.37, 1.33, "store123")
    hub.mark_rates([USDCAD], "store123")
    hub.flush(T0 + 0.05)
    assert rates_of(drain(hub, mine)[0])["USD/CAD"]["buyRate"] == 1.37
    assert rates_of(drain(hub, mine_dash)[0])["USD/CAD"]["buyRate"] == 1.37
    assert drain(hub, other) == []
    assert drain(hub, dash) == []


def test_a_global_mark_reaches_every_store_with_its_own_rates() -> None:
    hub, rates, (mine, other, dash, _) = _three_sessions()
    rates.set(USDCAD, 1.37, 1.33, "store123")  # store123's override stays in force
    rates.set(USDCAD, 1.3640, 1.3360)  # the market moved
    hub.mark_rates([USDCAD])
    hub.flush(T0 + 0.05)
    assert rates_of(drain(hub, mine)[0])["USD/CAD"]["buyRate"] == 1.37
    assert rates_of(drain(hub, other)[0])["USD/CAD"]["buyRate"] == 1.364
    assert rates_of(drain(hub, dash)[0])["USD/CAD"]["storeId"] is None


def test_events_reach_their_store_and_dashboards() -> None:
    hub, _, (mine, other, dash, mine_dash) = _three_sessions()
    noglobal = hub.open(5, STORE_OS, None, "admin", T0)
    drain(hub, noglobal)
    hub.publish_event("rate_override_set", {"currencyPair": "USD/CAD"}, "store123", T0)
    assert kind(drain(hub, mine)[0]) == "rate_override_set"
    assert kind(drain(hub, mine_dash)[0]) == "rate_override_set"
    assert kind(drain(hub, dash)[0]) == "rate_override_set"  # head office sees every store
    assert drain(hub, other) == []
    assert drain(hub, noglobal) == []
    hub.publish_event("rate_override_set", {"currencyPair": "USD/CAD"}, None, T0)
    for s in (mine, other, dash, mine_dash, noglobal):
        [msg] = drain(hub, s)
        assert kind(msg) == "rate_override_set"


def test_events_respect_the_pair_subscription() -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    send(hub, s, "subscribe", {"symbols": ["EURCAD"]})
    drain(hub, s)
    hub.publish_event("rate_override_set", {"currencyPair": "USD/CAD"}, "store123", T0)
    assert drain(hub, s) == []
    hub.publish_event("rate_override_set", {"currencyPair": "EUR/CAD"}, "store123", T0)
    hub.publish_event("system_status", {"healthy": True}, None, T0)  # no pair: everyone
    assert [kind(m) for m in drain(hub, s)] == ["rate_override_set", "system_status"]


# -- ping and bad input ---------------------------------------------------------------------


def test_ping_gets_pong_with_server_time() -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    send(hub, s, "ping", {"timestamp": 1234}, now=T0 + 2.5)
    [pong] = drain(hub, s)
    assert pong["type"] == "pong"
    assert payload(pong) == {"serverTime": int((T0 + 2.5) * 1000), "clientTimestamp": 1234}
    send(hub, s, "ping", None, now=T0 + 3)
    [pong] = drain(hub, s)
    assert payload(pong)["clientTimestamp"] is None


BAD: list[tuple[str, str, str]] = [
    ("not json at all", "invalid_message", "accepted types: subscribe, rate_subscribe"),
    ("[1, 2]", "invalid_message", 'expected JSON {"type": ..., "data": {...}}'),
    ('{"data": {}}', "invalid_message", "expected JSON"),
    ('{"type": 5}', "invalid_message", "expected JSON"),
    ('{"type": "explode"}', "unknown_type", "unknown message type 'explode'; accepted: subscribe"),
    ('{"type": "heartbeat"}', "unknown_type", "unknown message type 'heartbeat'"),
    ('{"type": "subscribe", "data": {"symbols": "USD"}}', "invalid_data", "subscribe: symbols"),
    ('{"type": "subscribe", "data": {"frequency": "often"}}', "invalid_data", "frequency"),
    ('{"type": "subscribe", "data": {"frequency": -50}}', "invalid_data", "frequency"),
    ('{"type": "subscribe", "data": {"frequency": 86400000}}', "invalid_data", "frequency"),
    ('{"type": "subscribe", "data": "USD/CAD"}', "invalid_data", "data must be an object"),
    ('{"type": "rate_subscribe", "data": {"rateType": "mid"}}', "invalid_data", "rateType"),
    ('{"type": "rate_subscribe", "data": [1]}', "invalid_data", "data must be an object"),
    ('{"type": "unsubscribe", "data": {"symbols": "USD"}}', "protocol_error", "must be a list"),
    ('{"type": "resume", "data": {"lastSeq": -1}}', "protocol_error", "non-negative integer"),
    ('{"type": "resume", "data": {"lastSeq": "5"}}', "protocol_error", "non-negative integer"),
    ('{"type": "resume"}', "protocol_error", "lastSeq must be"),
]


@pytest.mark.parametrize(("text", "code", "message"), BAD)
def test_bad_input_gets_an_error_and_the_session_keeps_working(
    text: str, code: str, message: str
) -> None:
    hub = make_hub()
    s = hub.open(1, STORE_OS, "store123", "admin", T0)
    other = hub.open(2, STORE_OS, "store123", "admin", T0)
    drain(hub, s)
    drain(hub, other)
    before = (s.store_id, s.sub)
    hub.receive(s.id, text, T0)
    [err] = drain(hub, s)
    assert err["type"] == "error"
    assert payload(err)["code"] == code
    assert message in payload(err)["message"]
    assert (s.store_id, s.sub) == before  # nothing changed
    assert s.closing is None
    # It keeps working, and so does everyone else.
    send(hub, s, "ping", {})
    assert [m["type"] for m in drain(hub, s)] == ["pong"]
    hub.mark_rates([USDCAD])
    hub.flush(T0 + 0.05)
    assert len(drain(hub, s)) == len(drain(hub, other)) == 1


def test_error_messages_are_json_the_client_can_parse() -> None:
    hub = make_hub()
    s = hub.open(1, DASHBOARD, None, "admin", T0)
    drain(hub, s)
    hub.receive(s.id, '{"type": "subscribe", "data": {"symbols": [1, {"x": "\u2603"}]}}', T0)
    [err] = [json.loads(f.text) for f in s.outbox]
    assert err["type"] == "error" and err["data"]["code"] == "invalid_data"

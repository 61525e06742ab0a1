"""A harness for driving ratehubd.hub.hub.Hub directly: float time, a rates provider
that is a plain dict the test mutates, and helpers that play the adapter's part
(drain a session's outbox and report it sent)."""

from __future__ import annotations

import json
from typing import Any

from ratehubd.engine.pairs import Pair, parse_pair
from ratehubd.hub.hub import LEAN_FIELDS, Hub
from ratehubd.hub.session import Session

USDCAD, EURCAD, BTCCAD = parse_pair("USD/CAD"), parse_pair("EUR/CAD"), parse_pair("BTC/CAD")
PAIRS = [USDCAD, EURCAD, BTCCAD]
T0 = 1_767_614_400.0  # 2026-01-05T12:00:00Z


def rate(pair: Pair, buy: float, sell: float, store_id: str | None = None) -> dict[str, Any]:
    """A wire rate object, as ``ratehubd.wire.rate_dict`` would give it."""
    return {
        "currencyPair": str(pair),
        "baseCurrency": pair.base,
        "targetCurrency": pair.quote,
        "rate": round((buy + sell) / 2, 10),
        "buyRate": buy,
        "sellRate": sell,
        "spread": round((buy - sell) / ((buy + sell) / 2), 8),
        "source": "sim",
        "storeId": store_id,
        "validUntil": None,
        "timestamp": int(T0 * 1000),
    }


class FakeRates:
    """The hub's rates provider: global rates, and per-store overrides on top of them.
    Counts calls, so a test can see that a table is read once per store per window."""

    def __init__(self) -> None:
        self.table: dict[Pair, dict[str, Any]] = {
            USDCAD: rate(USDCAD, 1.3635, 1.3365),
            EURCAD: rate(EURCAD, 1.5049, 1.4751),
            BTCCAD: rate(BTCCAD, 136350.0, 133650.0),
        }
        self.stores: dict[str, dict[Pair, dict[str, Any]]] = {}
        self.calls: list[str | None] = []

    def __call__(self, store_id: str | None) -> dict[Pair, dict[str, Any]]:
        self.calls.append(store_id)
        out = {p: {**r, "storeId": store_id} for p, r in self.table.items()}
        if store_id is not None:
            out.update(self.stores.get(store_id, {}))
        return out

    def set(self, pair: Pair, buy: float, sell: float, store_id: str | None = None) -> None:
        if store_id is None:
            self.table[pair] = rate(pair, buy, sell)
        else:
            self.stores.setdefault(store_id, {})[pair] = rate(pair, buy, sell, store_id)


def make_hub(rates: FakeRates | None = None, **kw: Any) -> Hub:
    kw.setdefault("epoch", "epoch-1")
    return Hub(pairs=PAIRS, rates=rates if rates is not None else FakeRates(), **kw)


def drain(hub: Hub, s: Session) -> list[dict[str, Any]]:
    """What the adapter does for a draining socket: take the outbox, write it, report it."""
    frames = list(s.outbox)
    s.outbox.clear()
    hub.sent(s, frames)
    return [json.loads(f.text) for f in frames]


def kind(msg: dict[str, Any]) -> str:
    """The message type a client reads, in either dialect."""
    if msg["type"] == "data":
        return str(msg["data"]["type"])
    return str(msg["type"])


def payload(msg: dict[str, Any]) -> dict[str, Any]:
    """The payload of a hub message, in either dialect."""
    data = msg["data"]
    assert isinstance(data, dict)
    return data


def core(rate: dict[str, Any]) -> dict[str, Any]:
    """A rate as a lean frame carries it once its extras have gone out."""
    return {k: v for k, v in rate.items() if k not in LEAN_FIELDS}


def rates_of(msg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert kind(msg) == "rate_update", msg
    return {r["currencyPair"]: r for r in payload(msg)["rates"]}


def send(hub: Hub, s: Session, type_: str, data: Any = None, now: float = T0) -> None:
    hub.receive(s.id, json.dumps({"type": type_, "data": data}), now)

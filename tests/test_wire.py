"""The wire schema: the fast ``*_dict`` encoders agree with the pydantic models, money
keeps its exact decimal text as a JSON number, and times parse in every accepted form."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from ratehubd import wire
from ratehubd.config import Config
from ratehubd.engine.engine import RateEngine
from ratehubd.engine.locks import Lock
from ratehubd.engine.model import StoreRate
from ratehubd.engine.overrides import OverrideRequest
from ratehubd.engine.pairs import Pair
from tests.conftest import FakeClock

D = Decimal
USDCAD, BTCCAD = Pair("USD", "CAD"), Pair("BTC", "CAD")


@pytest.fixture
def engine(clock: FakeClock) -> RateEngine:
    cfg = Config()
    engine = RateEngine(cfg.pair_policies(), cfg.override_policy())
    for name, pc in cfg.pairs.items():
        engine.on_market_tick(engine.pair(name), pc.start, "sim", clock.now())
    return engine


def _override(engine: RateEngine, clock: FakeClock, **kw: Any) -> None:
    req = OverrideRequest(pair=USDCAD, store_id="store123", reason="High demand period", **kw)
    ov = engine.plan_override(req, override_id="ov1", author="alice", now=clock.now())
    engine.commit_override(ov)


def published(engine: RateEngine, clock: FakeClock) -> list[StoreRate]:
    """A market rate, a fixed override and a spread-only override."""
    market = engine.rate(BTCCAD, "store123", clock.now())
    _override(engine, clock, buy=D("1.37"), sell=D("1.33"), spread=D("0.03"))
    fixed = engine.rate(USDCAD, "store123", clock.now())
    _override(engine, clock, spread=D("0.05"))
    floating = engine.rate(USDCAD, "store123", clock.now())
    return [market, fixed, floating]


def same_as_model(model: type[BaseModel], d: dict[str, Any]) -> None:
    """``d`` holds every field of ``model`` and says what the model, validated from it,
    would serialize to JSON (keys beyond the model's are extra information)."""
    missing = set(model.model_fields) - set(d)
    assert not missing, f"{model.__name__} fields the encoder leaves out: {missing}"
    dumped = json.loads(model.model_validate(d).model_dump_json())
    assert_projection(dumped, d)


def assert_projection(dumped: Any, original: Any) -> None:
    if isinstance(dumped, dict):
        assert isinstance(original, dict)
        for key, value in dumped.items():
            assert key in original, key
            assert_projection(value, original[key])
    else:
        assert dumped == original


# -- encoders against models ----------------------------------------------------------------


def test_rate_dict_matches_the_rate_model(engine: RateEngine, clock: FakeClock) -> None:
    for r in published(engine, clock):
        d = wire.rate_dict(r)
        same_as_model(wire.Rate, d)
        same_as_model(wire.Provenance, d["provenance"])
        assert d["timestamp"] == int(clock.now().timestamp() * 1000)
        assert d["rate"] < d["buyRate"] and d["sellRate"] < d["rate"]


def test_rate_dict_provenance(engine: RateEngine, clock: FakeClock) -> None:
    market, fixed, floating = (wire.rate_dict(r) for r in published(engine, clock))
    assert market["provenance"]["override"] is None
    assert market["source"] == "sim"
    assert market["provenance"]["marketSources"] == ["sim"]
    assert market["provenance"]["tick"] == 0.01
    assert market["validUntil"] is None
    assert (fixed["buyRate"], fixed["sellRate"], fixed["rate"]) == (1.37, 1.33, 1.35)
    assert fixed["spread"] == 0.02962963  # (1.37 - 1.33) / 1.35, 8 places
    assert fixed["provenance"]["spreadApplied"] == 0.02962963
    assert fixed["validUntil"] == "2026-01-05T13:00:00.000Z"
    assert floating["provenance"]["spreadApplied"] == 0.05


def test_override_dict_matches_the_override_model(engine: RateEngine, clock: FakeClock) -> None:
    _, fixed, floating = published(engine, clock)
    for r in (fixed, floating):
        assert r.override is not None
        d = wire.override_dict(r.override)
        same_as_model(wire.OverrideInfo, d)
        assert d["reason"] == "High demand period"
        assert d["createdAt"] == "2026-01-05T12:00:00.000Z"
    assert fixed.override is not None
    assert wire.override_dict(fixed.override)["spread"] == 0.03


def test_market_dict_matches_the_market_model(engine: RateEngine) -> None:
    for q in engine.market_quotes():
        d = wire.market_dict(q)
        same_as_model(wire.MarketData, d)
        assert d["currencyPair"] == f"{d['baseCurrency']}/{d['targetCurrency']}"


def test_lock_dict_matches_the_lock_model(clock: FakeClock) -> None:
    lock = Lock(
        id="lk1",
        pair=USDCAD,
        store_id="store123",
        buy=D("1.3635"),
        sell=D("1.3365"),
        mid=D("1.35"),
        reference="Customer transaction #TX123",
        author="alice",
        created_at=clock.now(),
        expires_at=clock.now() + timedelta(seconds=300),
    )
    d = wire.lock_dict(lock)
    same_as_model(wire.RateLock, d)
    assert (d["ttlSeconds"], d["state"], d["buyRate"]) == (300, "active", 1.3635)


# -- money ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1.37", "1.37"),
        ("1.33", "1.33"),
        ("1.3635", "1.3635"),
        ("0.0001", "0.0001"),
        ("135000.01", "135000.01"),
        ("136350", "136350.0"),
        ("0.02962963", "0.02962963"),
    ],
)
def test_decimal_becomes_a_json_number_with_the_same_text(value: str, text: str) -> None:
    class M(BaseModel):
        x: wire.Money

    encoded = M(x=D(value)).model_dump_json()
    assert encoded == f'{{"x":{text}}}'
    assert wire.encode({"x": float(D(value))}) == f'{{"x":{text}}}'
    assert M.model_validate_json(encoded).x == D(value)


def test_a_published_rate_keeps_its_decimal_text_on_the_wire(
    engine: RateEngine, clock: FakeClock
) -> None:
    _, fixed, _ = published(engine, clock)
    text = wire.encode(wire.rate_dict(fixed))
    assert '"buyRate":1.37,' in text
    assert '"sellRate":1.33,' in text
    assert '"rate":1.35,' in text


@settings(max_examples=200, deadline=None)
@given(
    st.decimals(
        min_value="0.000001", max_value="999999999", places=6, allow_nan=False, allow_infinity=False
    )
)
def test_any_rate_of_at_most_15_digits_round_trips_through_json(value: Decimal) -> None:
    text = wire.encode({"r": float(value)})
    assert D(json.loads(text, parse_float=str)["r"]) == value


def test_json_floats_arrive_as_the_decimal_the_user_typed() -> None:
    body = '{"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33, "spread": 0.1}'
    req = wire.SetRateRequest.model_validate_json(body)
    assert (req.buyRate, req.sellRate, req.spread) == (D("1.37"), D("1.33"), D("0.1"))
    assert str(req.buyRate) == "1.37"
    assert wire.SetRateRequest.model_validate({"currencyPair": "x", "buyRate": "1.37"}).buyRate == (
        D("1.37")
    )


def test_set_rate_request_takes_the_guide_body_and_refuses_unknown_keys() -> None:
    guide = {
        "currencyPair": "USD/CAD",
        "buyRate": 1.37,
        "sellRate": 1.33,
        "source": "manual",
        "storeId": "store123",
    }
    req = wire.SetRateRequest.model_validate(guide)
    assert (req.validUntil, req.reason, req.expectedVersion) == (None, None, None)
    with pytest.raises(ValidationError, match="buyrate"):
        wire.SetRateRequest.model_validate({**guide, "buyrate": 1.4})


# -- time -----------------------------------------------------------------------------------

NOON = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-05T12:00:00Z",
        "2026-01-05T12:00:00.000Z",
        "2026-01-05T12:00:00+00:00",
        "2026-01-05T14:00:00+02:00",
        "2026-01-05T07:00:00-05:00",
        "2026-01-05T12:00:00",  # naive: UTC
        " 2026-01-05T12:00:00Z ",
        1767614400000,
        1767614400000.0,
    ],
)
def test_parse_time_accepts_iso_and_epoch_ms(value: str | int | float) -> None:
    got = wire.parse_time(value)
    assert got == NOON
    assert got.tzinfo is not None
    assert got.utcoffset() == timedelta(0) or got.astimezone(UTC) == NOON


def test_parse_time_keeps_milliseconds() -> None:
    assert wire.parse_time(1767614400123) == NOON + timedelta(milliseconds=123)
    assert wire.parse_time("2026-01-05T12:00:00.123Z") == NOON + timedelta(milliseconds=123)


@pytest.mark.parametrize("value", ["tomorrow", "", "2026-13-01T00:00:00Z", True, None, [1]])
def test_parse_time_rejects_anything_else(value: Any) -> None:
    with pytest.raises(ValueError):
        wire.parse_time(value)


def test_iso_is_what_javascript_date_tojson_writes() -> None:
    assert wire.iso(NOON) == "2026-01-05T12:00:00.000Z"
    assert wire.iso(NOON + timedelta(microseconds=123456)) == "2026-01-05T12:00:00.123Z"
    est = timezone(timedelta(hours=-5))
    assert wire.iso(datetime(2026, 1, 5, 7, 0, tzinfo=est)) == "2026-01-05T12:00:00.000Z"
    assert wire.parse_time(wire.iso(NOON)) == NOON
    assert wire.now_ms(NOON) == 1767614400000


# -- messages -------------------------------------------------------------------------------


def test_message_and_encode() -> None:
    msg = wire.message("pong", {"serverTime": 1}, 5, seq=3, epoch="e")
    assert msg == {
        "type": "pong",
        "data": {"serverTime": 1},
        "timestamp": 5,
        "seq": 3,
        "epoch": "e",
    }
    text = wire.encode({"reason": "Période de forte demande"})
    assert text == '{"reason":"Période de forte demande"}'  # compact, UTF-8 kept
    assert wire.WsMessage.model_validate_json(text.replace("reason", "type")).type == (
        "Période de forte demande"
    )


def test_client_message_models() -> None:
    sub = wire.SubscribeData.model_validate({"symbols": ["USDCAD"], "frequency": 30000})
    assert (sub.symbols, sub.subscriptionType, sub.storeId) == (["USDCAD"], "rates", None)
    rs = wire.RateSubscribeData.model_validate({"currencies": ["USD", "EUR"]})
    assert (rs.rateType, rs.includeMarketData) == ("both", False)
    with pytest.raises(ValidationError):
        wire.RateSubscribeData.model_validate({"rateType": "mid"})


def test_a_quote_crosses_the_fleet_exactly() -> None:
    from ratehubd.engine.cross import Quote
    from ratehubd.engine.pairs import parse_pair
    from ratehubd.hub.backplane import QuotesMessage, decode, encode

    quotes = [
        Quote(
            pair=parse_pair("BTC/CAD"),
            mid=Decimal("135012.123456789"),
            source="coinbase",
            timestamp=datetime(2026, 1, 5, 12, 0, 0, 123456, tzinfo=UTC),
            kind="exchange",
            bid=Decimal("135011.5"),
            ask=Decimal("135012.75"),
        ),
        Quote(
            pair=parse_pair("USD/CAD"),
            mid=Decimal("1.3500"),
            source="boc",
            timestamp=datetime(2026, 1, 5, tzinfo=UTC),
            kind="reference",
        ),
    ]
    msg = decode(encode(QuotesMessage([wire.quote_wire(q) for q in quotes], "node-a")))
    assert isinstance(msg, QuotesMessage) and msg.node == "node-a"
    assert [wire.quote_from_wire(d) for d in msg.quotes] == quotes
    with pytest.raises(ValueError, match="unknown quote kind"):
        wire.quote_from_wire({**msg.quotes[0], "kind": "rumour"})

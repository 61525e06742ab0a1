"""Overrides in the rate engine, with a fake clock: validation, precedence, expiry,
compare-and-set and the plan -> reserve -> commit order. No I/O."""

from __future__ import annotations

import itertools
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from ratehubd.config import Config
from ratehubd.engine.engine import RateEngine
from ratehubd.engine.events import OverrideCleared, OverrideExpired, OverrideSet, RatesChanged
from ratehubd.engine.model import NO_REASON, Override, StoreRate
from ratehubd.engine.overrides import OverrideRequest
from ratehubd.engine.pairs import Pair
from ratehubd.engine.pricing import quote_from_mid
from ratehubd.errors import (
    Conflict,
    InvalidRates,
    InvalidRequest,
    NotFound,
    RatehubError,
    Unavailable,
    UnknownPair,
)
from tests.conftest import FakeClock

D = Decimal
USDCAD = Pair("USD", "CAD")
EURCAD = Pair("EUR", "CAD")
BTCCAD = Pair("BTC", "CAD")
STORES = [None, "store123", "store999"]
_ids = itertools.count(1)


def make_engine(clock: FakeClock, **overrides: Any) -> RateEngine:
    """The default configuration's engine, with every pair ticked once at its start level."""
    cfg = Config.model_validate({"overrides": overrides})
    engine = RateEngine(cfg.pair_policies(), cfg.override_policy())
    for name, pc in cfg.pairs.items():
        engine.on_market_tick(engine.pair(name), pc.start, "sim", clock.now())
    return engine


@pytest.fixture
def engine(clock: FakeClock) -> RateEngine:
    return make_engine(clock)


def request(clock: FakeClock, **kw: Any) -> OverrideRequest:
    """The guide's override (USD/CAD 1.37 / 1.33, spread 0.03, one hour, a reason)."""
    fields: dict[str, Any] = {
        "pair": USDCAD,
        "store_id": "store123",
        "buy": D("1.37"),
        "sell": D("1.33"),
        "spread": D("0.03"),
        "valid_until": clock.now() + timedelta(hours=1),
        "reason": "High demand period",
    }
    fields.update(kw)
    return OverrideRequest(**fields)


def plan(engine: RateEngine, clock: FakeClock, req: OverrideRequest) -> Override:
    return engine.plan_override(req, override_id=f"ov{next(_ids)}", author="alice", now=clock.now())


def set_override(engine: RateEngine, clock: FakeClock, **kw: Any) -> Override:
    """What the service does: plan, reserve the version, (write), commit."""
    ov = plan(engine, clock, request(clock, **kw))
    engine.overrides.reserve(ov)
    assert engine.commit_override(ov) == [
        OverrideSet(ov),
        RatesChanged(frozenset({ov.pair}), ov.store_id),
    ]
    return ov


def snapshot(engine: RateEngine, clock: FakeClock) -> list[StoreRate]:
    return [r for store in STORES for r in engine.rates(store, clock.now())]


def usd(engine: RateEngine, clock: FakeClock, store: str | None) -> StoreRate:
    return engine.rate(USDCAD, store, clock.now())


def is_market(rate: StoreRate) -> bool:
    return rate.override is None and rate.source == "sim"


# -- the guide's example --------------------------------------------------------------------


def test_guide_example_is_accepted_for_that_store(engine: RateEngine, clock: FakeClock) -> None:
    ov = set_override(engine, clock)
    assert (ov.version, ov.reason, ov.author) == (1, "High demand period", "alice")
    assert ov.valid_until == clock.now() + timedelta(hours=1)
    rate = usd(engine, clock, "store123")
    assert (rate.buy, rate.sell, rate.mid) == (D("1.37"), D("1.33"), D("1.35"))
    assert rate.override == ov
    assert rate.valid_until == ov.valid_until
    assert rate.source == "manual"
    assert rate.spread == D("0.04") / D("1.35")
    assert rate.spread_applied == rate.spread  # provenance: the spread the override imposes
    assert rate.market.mid == D("1.35")
    # Only that store: other stores and the global channel keep the market rate.
    assert is_market(usd(engine, clock, "store999"))
    assert is_market(usd(engine, clock, None))


def test_guide_curl_body_gets_the_defaults(engine: RateEngine, clock: FakeClock) -> None:
    """No storeId, validUntil or reason: a global override, the default lifetime, no reason."""
    ov = set_override(engine, clock, store_id=None, spread=None, valid_until=None, reason=None)
    assert ov.store_id is None
    assert ov.valid_until == clock.now() + timedelta(seconds=3600)
    assert ov.reason == NO_REASON == "no reason given"
    for store in STORES:
        assert usd(engine, clock, store).buy == D("1.37")


def test_default_lifetime_follows_the_configuration(clock: FakeClock) -> None:
    engine = make_engine(clock, default_lifetime_s=600)
    ov = set_override(engine, clock, valid_until=None)
    assert ov.valid_until == clock.now() + timedelta(seconds=600)


# -- precedence and expiry ------------------------------------------------------------------


def test_store_override_beats_global(engine: RateEngine, clock: FakeClock) -> None:
    glob = set_override(engine, clock, store_id=None, buy=D("1.38"), sell=D("1.34"))
    mine = set_override(engine, clock)
    assert usd(engine, clock, "store123").override == mine
    assert usd(engine, clock, "store999").override == glob
    assert usd(engine, clock, None).override == glob
    # The store override only touches its pair.
    assert is_market(engine.rate(EURCAD, "store123", clock.now()))


def test_store_override_expiry_falls_back_to_global_then_market(
    engine: RateEngine, clock: FakeClock
) -> None:
    set_override(engine, clock, store_id=None, valid_until=clock.now() + timedelta(hours=2))
    set_override(engine, clock, buy=D("1.36"), sell=D("1.34"))
    assert usd(engine, clock, "store123").buy == D("1.36")
    clock.advance(3600)
    assert usd(engine, clock, "store123").buy == D("1.37")  # the global one
    clock.advance(3600)
    assert is_market(usd(engine, clock, "store123"))


def test_expiry_falls_back_to_market_exactly_at_valid_until(
    engine: RateEngine, clock: FakeClock
) -> None:
    ov = set_override(engine, clock, valid_until=clock.now() + timedelta(seconds=90))
    market = usd(engine, clock, "store999")
    clock.advance(89.999999)
    assert usd(engine, clock, "store123").override == ov
    assert engine.due_expiries(clock.now()) == []
    clock.advance(0.000001)
    assert clock.now() == ov.valid_until
    rate = usd(engine, clock, "store123")
    assert is_market(rate)
    assert (rate.buy, rate.sell) == (market.buy, market.sell)
    assert rate.valid_until is None
    # The override is due for its expiry event, exactly once.
    assert engine.due_expiries(clock.now()) == [ov]
    assert engine.commit_expiry(ov) == [
        OverrideExpired(ov),
        RatesChanged(frozenset({USDCAD}), "store123"),
    ]
    assert engine.commit_expiry(ov) == []
    assert engine.due_expiries(clock.now()) == []


def test_next_expiry_is_the_earliest(engine: RateEngine, clock: FakeClock) -> None:
    assert engine.overrides.next_expiry() is None
    set_override(engine, clock, valid_until=clock.now() + timedelta(minutes=30))
    set_override(engine, clock, store_id=None, valid_until=clock.now() + timedelta(minutes=10))
    assert engine.overrides.next_expiry() == clock.now() + timedelta(minutes=10)


def test_clear_falls_back_and_fires_once(engine: RateEngine, clock: FakeClock) -> None:
    ov = set_override(engine, clock)
    planned = engine.plan_clear(USDCAD, "store123", clock.now())
    assert planned == ov
    assert engine.commit_clear(planned, "bob") == [
        OverrideCleared(ov, "bob"),
        RatesChanged(frozenset({USDCAD}), "store123"),
    ]
    assert engine.commit_clear(planned, "bob") == []
    assert is_market(usd(engine, clock, "store123"))
    assert engine.overrides.version(USDCAD, "store123") == 2
    with pytest.raises(NotFound, match="no active override for USD/CAD at store123"):
        engine.plan_clear(USDCAD, "store123", clock.now())


# -- lifetime -------------------------------------------------------------------------------


def test_max_lifetime_is_a_cap(clock: FakeClock) -> None:
    engine = make_engine(clock, max_lifetime_s=7200)
    at_cap = set_override(engine, clock, valid_until=clock.now() + timedelta(seconds=7200))
    assert at_cap.valid_until == clock.now() + timedelta(seconds=7200)
    with pytest.raises(InvalidRequest, match="more than 7200 s ahead.*configured maximum"):
        plan(engine, clock, request(clock, valid_until=clock.now() + timedelta(seconds=7201)))


@pytest.mark.parametrize("seconds", [-3600, -1, 0])
def test_valid_until_not_in_the_future_is_rejected(
    engine: RateEngine, clock: FakeClock, seconds: int
) -> None:
    with pytest.raises(InvalidRequest, match="is in the past; give a future time or omit it"):
        plan(engine, clock, request(clock, valid_until=clock.now() + timedelta(seconds=seconds)))


# -- rates validation -----------------------------------------------------------------------


@pytest.mark.parametrize(("buy", "sell"), [("1.33", "1.37"), ("1.35", "1.35"), ("1.33", "1.3301")])
def test_inverted_rates_are_rejected_with_the_convention(
    engine: RateEngine, clock: FakeClock, buy: str, sell: str
) -> None:
    with pytest.raises(InvalidRates) as err:
        plan(engine, clock, request(clock, buy=D(buy), sell=D(sell)))
    assert "sellRate < mid < buyRate" in err.value.message
    assert "buyRate is what a customer pays" in err.value.message


@pytest.mark.parametrize(("buy", "sell"), [("0", "0"), ("1.37", "0"), ("1.37", "-1.33")])
def test_zero_or_negative_rates_are_rejected(
    engine: RateEngine, clock: FakeClock, buy: str, sell: str
) -> None:
    with pytest.raises(InvalidRates, match="rates must be positive"):
        plan(engine, clock, request(clock, buy=D(buy), sell=D(sell)))


def test_one_side_alone_is_rejected(engine: RateEngine, clock: FakeClock) -> None:
    with pytest.raises(InvalidRates, match="give both buyRate and sellRate, or spread alone"):
        plan(engine, clock, request(clock, sell=None))


def test_nothing_to_override_is_rejected(engine: RateEngine, clock: FakeClock) -> None:
    with pytest.raises(InvalidRates, match="needs buyRate and sellRate, or a spread"):
        plan(engine, clock, request(clock, buy=None, sell=None, spread=None))


@pytest.mark.parametrize("spread", ["0", "-0.01", "2", "3"])
def test_spread_must_be_a_fraction(engine: RateEngine, clock: FakeClock, spread: str) -> None:
    with pytest.raises(InvalidRates, match="a fraction: 0.02 = 2 %"):
        plan(engine, clock, request(clock, buy=None, sell=None, spread=D(spread)))


@pytest.mark.parametrize("spread", ["0.0005", "0.11"])
def test_spread_only_override_outside_bounds(
    engine: RateEngine, clock: FakeClock, spread: str
) -> None:
    with pytest.raises(InvalidRates, match=r"outside its bounds \[0.001, 0.10\]"):
        plan(engine, clock, request(clock, buy=None, sell=None, spread=D(spread)))


def test_fixed_rates_outside_spread_bounds(engine: RateEngine, clock: FakeClock) -> None:
    with pytest.raises(InvalidRates, match="outside its bounds"):  # 0.9 % ... fine; 14.8 %: not
        plan(engine, clock, request(clock, buy=D("1.45"), sell=D("1.25")))
    with pytest.raises(InvalidRates, match="outside its bounds"):
        plan(engine, clock, request(clock, buy=D("1.3501"), sell=D("1.3500")))


def test_spread_bounds_hold_before_the_market_has_ticked(clock: FakeClock) -> None:
    cfg = Config()
    engine = RateEngine(cfg.pair_policies(), cfg.override_policy())
    with pytest.raises(InvalidRates, match="outside its bounds"):
        plan(engine, clock, request(clock, buy=D("1.45"), sell=D("1.25")))


def test_fixed_rates_off_the_tick_are_rejected_with_the_rounded_values(
    engine: RateEngine, clock: FakeClock
) -> None:
    with pytest.raises(InvalidRates, match=r"buyRate 1.37004 .* tick 0.0001.*1.3701"):
        plan(engine, clock, request(clock, buy=D("1.37004")))
    with pytest.raises(InvalidRates, match=r"sellRate 1.32996 .* tick 0.0001.*1.3299"):
        plan(engine, clock, request(clock, sell=D("1.32996")))
    # Trailing zeros are on the tick.
    plan(engine, clock, request(clock, buy=D("1.370000"), sell=D("1.3300")))


def test_deviation_from_market_mid_is_bounded(engine: RateEngine, clock: FakeClock) -> None:
    # Market mid 1.35, limit 5 %: mid 1.4175 is exactly 5 % away, 1.42 is beyond.
    plan(engine, clock, request(clock, buy=D("1.4375"), sell=D("1.3975")))
    with pytest.raises(InvalidRates) as err:
        plan(engine, clock, request(clock, buy=D("1.44"), sell=D("1.40")))
    assert "away from the market mid 1.35" in err.value.message
    assert "the limit is 5.00%" in err.value.message
    assert err.value.details == {"marketMid": "1.35"}
    with pytest.raises(InvalidRates, match="away from the market mid"):
        plan(engine, clock, request(clock, buy=D("1.30"), sell=D("1.26")))


def test_deviation_follows_the_market(engine: RateEngine, clock: FakeClock) -> None:
    """1.44 / 1.40 is refused at mid 1.35 and accepted once the market moves to 1.40."""
    for mid in ("1.37", "1.39", "1.40"):
        engine.on_market_tick(USDCAD, D(mid), "sim", clock.now())
    plan(engine, clock, request(clock, buy=D("1.44"), sell=D("1.40")))


def test_unknown_pair_is_an_error_not_a_crash(engine: RateEngine, clock: FakeClock) -> None:
    with pytest.raises(UnknownPair, match="configured pairs are"):
        plan(engine, clock, request(clock, pair=Pair("CHF", "CAD")))


# -- spread-only overrides ------------------------------------------------------------------


def test_spread_only_override_floats_with_the_market(engine: RateEngine, clock: FakeClock) -> None:
    ov = set_override(engine, clock, buy=None, sell=None, spread=D("0.05"))
    tick = D("0.0001")
    for mid in ("1.35", "1.3612", "1.35437"):
        engine.on_market_tick(USDCAD, D(mid), "sim", clock.now())
        rate = usd(engine, clock, "store123")
        assert rate.mid == D(mid)
        assert (rate.buy, rate.sell) == quote_from_mid(D(mid), D("0.05"), tick)
        assert rate.spread_applied == D("0.05")
        assert rate.override == ov
        assert rate.source == "manual"
        # The other stores keep the default spread.
        other = usd(engine, clock, "store999")
        assert (other.buy, other.sell) == quote_from_mid(D(mid), D("0.02"), tick)


# -- compare-and-set ------------------------------------------------------------------------


def test_expected_version_compare_and_set(engine: RateEngine, clock: FakeClock) -> None:
    first = set_override(engine, clock, expected_version=0)
    assert first.version == 1
    before = snapshot(engine, clock)
    with pytest.raises(Conflict) as err:
        plan(engine, clock, request(clock, buy=D("1.38"), expected_version=0))
    assert err.value.status == 409
    assert err.value.details == {"currentVersion": 1}
    assert "is at version 1, not 0; reload and retry" in err.value.message
    # Nothing changed.
    assert snapshot(engine, clock) == before
    assert engine.overrides.version(USDCAD, "store123") == 1
    second = set_override(engine, clock, buy=D("1.38"), expected_version=1)
    assert second.version == 2
    assert usd(engine, clock, "store123").buy == D("1.38")


def test_versions_are_per_key(engine: RateEngine, clock: FakeClock) -> None:
    set_override(engine, clock)
    assert set_override(engine, clock, store_id="store999", expected_version=0).version == 1
    assert set_override(engine, clock, store_id=None, expected_version=0).version == 1
    assert engine.overrides.version(USDCAD, "store123") == 1


def test_reserved_version_makes_a_concurrent_plan_conflict(
    engine: RateEngine, clock: FakeClock
) -> None:
    """Planned and reserved but not yet durable: a second CAS at the same base loses."""
    a = plan(engine, clock, request(clock, expected_version=0))
    engine.overrides.reserve(a)
    with pytest.raises(Conflict):
        plan(engine, clock, request(clock, buy=D("1.38"), expected_version=0))
    assert is_market(usd(engine, clock, "store123"))  # a is not committed yet


# -- reserve / commit ordering --------------------------------------------------------------


def _two_planned(engine: RateEngine, clock: FakeClock) -> tuple[Override, Override]:
    older = plan(engine, clock, request(clock, buy=D("1.36"), sell=D("1.34")))
    engine.overrides.reserve(older)
    newer = plan(engine, clock, request(clock, buy=D("1.38"), sell=D("1.34")))
    engine.overrides.reserve(newer)
    assert (older.version, newer.version) == (1, 2)
    return older, newer


def test_commits_in_version_order(engine: RateEngine, clock: FakeClock) -> None:
    older, newer = _two_planned(engine, clock)
    assert engine.commit_override(older)
    assert usd(engine, clock, "store123").override == older
    assert engine.commit_override(newer)
    assert usd(engine, clock, "store123").override == newer


def test_an_older_commit_never_replaces_a_newer_one(engine: RateEngine, clock: FakeClock) -> None:
    older, newer = _two_planned(engine, clock)
    assert engine.commit_override(newer)
    assert engine.commit_override(older) == []
    assert usd(engine, clock, "store123").override == newer
    assert engine.overrides.version(USDCAD, "store123") == 2


def test_an_older_commit_does_not_resurrect_after_the_newer_is_cleared(
    engine: RateEngine, clock: FakeClock
) -> None:
    older, newer = _two_planned(engine, clock)
    assert engine.commit_override(newer)
    assert engine.commit_clear(engine.plan_clear(USDCAD, "store123", clock.now()), "bob")
    assert engine.commit_override(older) == []
    assert is_market(usd(engine, clock, "store123"))


def test_a_stale_clear_does_not_remove_a_newer_override(
    engine: RateEngine, clock: FakeClock
) -> None:
    first = set_override(engine, clock)
    clearing = engine.plan_clear(USDCAD, "store123", clock.now())
    second = set_override(engine, clock, buy=D("1.38"))
    assert engine.commit_clear(clearing, "bob") == []
    assert usd(engine, clock, "store123").override == second != first


def test_an_expired_override_is_not_committed_over_a_newer_one(
    engine: RateEngine, clock: FakeClock
) -> None:
    short = set_override(engine, clock, valid_until=clock.now() + timedelta(seconds=10))
    clock.advance(10)
    longer = set_override(engine, clock, buy=D("1.38"))
    assert engine.commit_expiry(short) == []  # replaced meanwhile: no expiry event
    assert usd(engine, clock, "store123").override == longer


# -- policy switches ------------------------------------------------------------------------


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_require_reason(clock: FakeClock, reason: str | None) -> None:
    engine = make_engine(clock, require_reason=True)
    with pytest.raises(InvalidRequest, match=r"reason is required by policy \(overrides.require"):
        plan(engine, clock, request(clock, reason=reason))
    assert set_override(engine, clock).reason == "High demand period"


def test_require_store(clock: FakeClock) -> None:
    engine = make_engine(clock, require_store=True)
    with pytest.raises(InvalidRequest, match=r"storeId is required by policy \(overrides.require"):
        plan(engine, clock, request(clock, store_id=None))
    assert set_override(engine, clock).store_id == "store123"


def test_policy_switches_are_off_by_default(engine: RateEngine, clock: FakeClock) -> None:
    ov = set_override(engine, clock, store_id=None, reason=None)
    assert (ov.store_id, ov.reason) == (None, NO_REASON)


# -- errors change nothing ------------------------------------------------------------------


BAD_REQUESTS: list[dict[str, Any]] = [
    {"buy": D("1.33"), "sell": D("1.37")},
    {"buy": D("0"), "sell": D("0")},
    {"sell": None},
    {"buy": D("1.50"), "sell": D("1.46")},
    {"buy": None, "sell": None, "spread": D("0.5")},
    {"valid_until": None, "expected_version": 7},
    {"pair": Pair("CHF", "CAD")},
]


def test_every_rejection_changes_nothing(engine: RateEngine, clock: FakeClock) -> None:
    existing = set_override(engine, clock, store_id=None)
    before = snapshot(engine, clock)
    versions = {s: engine.overrides.version(USDCAD, s) for s in STORES}
    for bad in BAD_REQUESTS:
        with pytest.raises(RatehubError):
            plan(engine, clock, request(clock, **bad))
    past = {"valid_until": clock.now() - timedelta(seconds=1)}
    with pytest.raises(InvalidRequest):
        plan(engine, clock, request(clock, **past))
    assert snapshot(engine, clock) == before
    assert {s: engine.overrides.version(USDCAD, s) for s in STORES} == versions
    assert engine.overrides.all() == [existing]


def test_no_market_data_is_unavailable(clock: FakeClock) -> None:
    cfg = Config()
    engine = RateEngine(cfg.pair_policies(), cfg.override_policy())
    with pytest.raises(Unavailable, match="the feed has not ticked"):
        engine.rate(USDCAD, None, clock.now())
    assert engine.rates("store123", clock.now()) == []
    engine.on_market_tick(BTCCAD, D("135000"), "sim", clock.now())
    assert [r.pair for r in engine.rates("store123", clock.now())] == [BTCCAD]

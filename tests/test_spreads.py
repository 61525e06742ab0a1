"""Spreads: global, per pair, per store, per store and pair; asymmetric; overrides beyond
the deviation bound rejected or accepted with a breach, as configured."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ratehubd.config import Config
from ratehubd.engine.engine import RateEngine
from ratehubd.engine.overrides import OverrideRequest
from ratehubd.engine.pairs import Pair
from ratehubd.errors import ConfigError, InvalidRates

USD, EUR = Pair("USD", "CAD"), Pair("EUR", "CAD")
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def engine(cfg: Config) -> RateEngine:
    eng = RateEngine(
        cfg.pair_policies(),
        cfg.override_policy(),
        cfg.threshold_policies(),
        store_spreads=cfg.store_spreads(),
    )
    eng.on_market_tick(USD, Decimal("1.35"), "test", T0)
    if EUR in eng.policies:
        eng.on_market_tick(EUR, Decimal("1.50"), "test", T0)
    return eng


def test_spread_precedence(make_config: Callable[..., Config]) -> None:
    cfg = make_config(
        env={"DEFAULT_SPREAD": "0.02"},
        stores={"s1": {"spread": "0.03", "pairs": {"USDCAD": "0.04"}}},
    )
    eng = engine(cfg)
    assert eng.rate(USD, None, T0).spread_applied == Decimal("0.02")  # global
    assert eng.rate(EUR, "s1", T0).spread_applied == Decimal("0.03")  # the store's
    assert eng.rate(USD, "s1", T0).spread_applied == Decimal("0.04")  # the store's, this pair
    assert eng.rate(USD, "s2", T0).spread_applied == Decimal("0.02")  # another store
    r = eng.rate(USD, "s1", T0)
    assert (r.buy, r.sell) == (Decimal("1.3770"), Decimal("1.3230"))


def test_asymmetric_spread(make_config: Callable[..., Config]) -> None:
    cfg = make_config(pairs={"USD/CAD": {"start": "1.35", "tick": "0.0001", "buy_share": "0.75"}})
    r = engine(cfg).rate(USD, None, T0)
    # 2 % of 1.35 = 0.027: 0.02025 above the mid, 0.00675 below
    assert (r.buy, r.sell) == (Decimal("1.3703"), Decimal("1.3432"))
    assert r.sell < r.mid < r.buy


def test_store_spreads_are_validated(make_config: Callable[..., Config]) -> None:
    with pytest.raises(ConfigError) as info:
        make_config(stores={"s1": {"spread": "0.5", "pairs": {"XAU/CAD": "0.02"}}})
    text = "\n".join(info.value.problems)
    assert "stores.s1.spread" in text and "XAU/CAD is not a configured pair" in text


@pytest.mark.parametrize("action", ["reject", "warn"])
def test_deviation_action(make_config: Callable[..., Config], action: str) -> None:
    eng = engine(make_config(overrides={"deviation_action": action}))
    far = OverrideRequest(pair=USD, buy=Decimal("1.48"), sell=Decimal("1.44"), store_id="s1")
    if action == "reject":
        with pytest.raises(InvalidRates, match="away from the market mid"):
            eng.plan_override(far, override_id="o", author="k", now=T0)
        return
    ov = eng.plan_override(far, override_id="o", author="k", now=T0)
    eng.commit_override(ov)
    breaches = eng.check_thresholds(T0)
    deviation = [b for b in breaches if b.key.kind == "override_deviation"]
    assert [(b.key.store_id, b.state) for b in deviation] == [("s1", "begun")]

"""Property tests of the rate engine (hypothesis): whatever happens, every published rate
keeps ``0 < sellRate < mid < buyRate``, sits on its pair's tick, and has a spread within the
policy's bounds. No I/O; time is a fake clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ratehubd.config import Config
from ratehubd.engine.engine import RateEngine
from ratehubd.engine.market import TickRejected
from ratehubd.engine.model import StoreRate
from ratehubd.engine.money import round_down, round_up, spread_of
from ratehubd.engine.overrides import OverrideRequest
from ratehubd.engine.pairs import Pair, parse_pair
from ratehubd.engine.pricing import quote_from_mid
from ratehubd.errors import RatehubError
from tests.conftest import FakeClock

D = Decimal
SETTINGS = settings(max_examples=200, deadline=None)
STORES = [None, "s1", "s2"]
MIN_SPREAD, MAX_SPREAD = D("0.001"), D("0.10")

# Pairs with very different levels and ticks, so rounding matters somewhere.
PAIRS: dict[str, dict[str, str]] = {
    "USD/CAD": {"start": "1.35", "tick": "0.0001"},
    "BTC/CAD": {"start": "135000", "tick": "0.01", "kind": "crypto"},
    "XAU/CAD": {"start": "3500", "tick": "0.5"},
    "JPY/CAD": {"start": "0.0093", "tick": "0.000001"},
}
PAIR_LIST = [parse_pair(p) for p in PAIRS]


def make_engine(default_spread: Decimal, pair_spread: Decimal | None) -> RateEngine:
    pairs: dict[str, dict[str, Any]] = {name: dict(pc) for name, pc in PAIRS.items()}
    if pair_spread is not None:
        pairs["USD/CAD"]["spread"] = str(pair_spread)
    cfg = Config.model_validate(
        {
            "engine": {
                "default_spread": str(default_spread),
                "min_spread": str(MIN_SPREAD),
                "max_spread": str(MAX_SPREAD),
            },
            "overrides": {"default_lifetime_s": 600, "max_lifetime_s": 7200},
            "pairs": pairs,
        }
    )
    return RateEngine(cfg.pair_policies(), cfg.override_policy())


# -- operations -----------------------------------------------------------------------------

spreads = st.decimals(min_value=MIN_SPREAD, max_value=MAX_SPREAD, places=4)
pair_ix = st.integers(0, len(PAIR_LIST) - 1)
store = st.sampled_from(STORES)
lifetime = st.one_of(st.none(), st.integers(1, 7200))


@dataclass(frozen=True)
class Tick:
    pair: int
    move: Decimal  # relative, within the 5 % jump limit (sometimes beyond: rejected)


@dataclass(frozen=True)
class SetFixed:
    pair: int
    store: str | None
    spread: Decimal
    deviation: Decimal  # of the override's mid from the market mid, relative
    lifetime: int | None


@dataclass(frozen=True)
class SetSpread:
    pair: int
    store: str | None
    spread: Decimal
    lifetime: int | None


@dataclass(frozen=True)
class Clear:
    pair: int
    store: str | None


@dataclass(frozen=True)
class Advance:
    seconds: float


@dataclass(frozen=True)
class Expire:
    pass


Op = Tick | SetFixed | SetSpread | Clear | Advance | Expire

ops = st.one_of(
    st.builds(Tick, pair_ix, st.decimals(min_value="-0.06", max_value="0.06", places=5)),
    st.builds(
        SetFixed,
        pair_ix,
        store,
        spreads,
        st.decimals(min_value="-0.06", max_value="0.06", places=4),
        lifetime,
    ),
    st.builds(
        SetSpread, pair_ix, store, spreads | st.sampled_from([D("0.0005"), D("0.2")]), lifetime
    ),
    st.builds(Clear, pair_ix, store),
    st.builds(Advance, st.floats(0, 3000, allow_nan=False)),
    st.just(Expire()),
)


class Model:
    """Drives a RateEngine the way the service does (plan, reserve, commit)."""

    def __init__(self, engine: RateEngine, clock: FakeClock) -> None:
        self.engine = engine
        self.clock = clock
        self.n = 0
        for name, pc in PAIRS.items():
            engine.on_market_tick(parse_pair(name), D(pc["start"]), "sim", clock.now())

    def apply(self, op: Op) -> None:
        before = self.published()
        try:
            self._apply(op)
        except (RatehubError, TickRejected):
            assert self.published() == before, f"{op} was rejected but changed the rates"

    def _apply(self, op: Op) -> None:
        now = self.clock.now()
        if isinstance(op, Tick):
            pair = PAIR_LIST[op.pair]
            quote = self.engine.market.quote(pair)
            assert quote is not None
            tick = self.engine.policies[pair].tick
            mid = (quote.mid * (1 + op.move)).quantize(tick / 1000)
            self.engine.on_market_tick(pair, mid, "sim", now)
        elif isinstance(op, SetFixed):
            pair = PAIR_LIST[op.pair]
            quote = self.engine.market.quote(pair)
            assert quote is not None
            tick = self.engine.policies[pair].tick
            mid = quote.mid * (1 + op.deviation)
            buy = round_up(mid * (1 + op.spread / 2), tick)
            sell = round_down(mid * (1 - op.spread / 2), tick)
            self._set(pair, op.store, op.lifetime, buy=buy, sell=sell)
        elif isinstance(op, SetSpread):
            self._set(PAIR_LIST[op.pair], op.store, op.lifetime, spread=op.spread)
        elif isinstance(op, Clear):
            ov = self.engine.plan_clear(PAIR_LIST[op.pair], op.store, now)
            self.engine.commit_clear(ov, "prop")
        elif isinstance(op, Advance):
            self.clock.advance(op.seconds)
        else:
            for ov in self.engine.due_expiries(now):
                assert not ov.active(now)
                self.engine.commit_expiry(ov)

    def _set(self, pair: Pair, store_id: str | None, life: int | None, **rates: Any) -> None:
        now = self.clock.now()
        valid_until = None if life is None else now + timedelta(seconds=life)
        req = OverrideRequest(pair=pair, store_id=store_id, valid_until=valid_until, **rates)
        self.n += 1
        ov = self.engine.plan_override(req, override_id=f"o{self.n}", author="p", now=now)
        self.engine.overrides.reserve(ov)
        self.engine.commit_override(ov)

    def published(self) -> list[StoreRate]:
        now = self.clock.now()
        return [r for s in STORES for r in self.engine.rates(s, now)]

    def check(self) -> None:
        now = self.clock.now()
        for store_id in STORES:
            rates = self.engine.rates(store_id, now)
            assert [r.pair for r in rates] == sorted(PAIR_LIST)
            for r in rates:
                check_rate(self.engine, r, store_id, now)


def check_rate(engine: RateEngine, r: StoreRate, store_id: str | None, now: Any) -> None:
    policy = engine.policies[r.pair]
    tick = policy.tick
    assert 0 < r.sell < r.mid < r.buy, r
    assert r.buy % tick == 0 and r.sell % tick == 0, f"{r.pair} off its tick {tick}: {r}"
    assert r.spread == spread_of(r.buy, r.sell, r.mid)
    # Rounding outward widens by less than one tick per side; it never narrows.
    slack = 2 * tick / r.mid
    assert MIN_SPREAD <= r.spread_applied <= MAX_SPREAD
    assert r.spread_applied <= r.spread < r.spread_applied + slack or r.spread == r.spread_applied
    assert MIN_SPREAD <= r.spread <= MAX_SPREAD + slack, r
    ov = r.override
    if ov is None:
        assert r.mid == r.market.mid
        assert r.spread_applied == policy.spread
        # No active override applies to this store.
        assert engine.overrides.effective(r.pair, store_id, now) is None
    else:
        assert ov.active(now), "an expired override is still published"
        assert ov.store_id in (store_id, None)
        if store_id is not None and engine.overrides.get(r.pair, store_id, now) is not None:
            assert ov.store_id == store_id, "a global override beat the store's own"
        if ov.buy is not None:
            assert (r.buy, r.sell) == (ov.buy, ov.sell)
            assert r.spread_applied == r.spread
        else:
            assert r.mid == r.market.mid
            assert r.spread_applied == ov.spread


@SETTINGS
@given(
    default_spread=st.sampled_from([D("0.001"), D("0.02"), D("0.0999"), D("0.1")]),
    pair_spread=st.one_of(st.none(), spreads),
    program=st.lists(ops, min_size=1, max_size=40),
)
def test_every_published_rate_keeps_the_invariant(
    default_spread: Decimal, pair_spread: Decimal | None, program: list[Op]
) -> None:
    model = Model(make_engine(default_spread, pair_spread), FakeClock())
    model.check()
    for op in program:
        model.apply(op)
        model.check()


@SETTINGS
@given(
    mid=st.decimals(min_value="0.001", max_value="1000000", places=6),
    spread=st.decimals(min_value="0.0000001", max_value="0.5", places=7),
    tick=st.sampled_from([D("0.000001"), D("0.0001"), D("0.01"), D("0.05"), D("0.5")]),
)
def test_quote_from_mid_rounds_outward_to_the_tick(
    mid: Decimal, spread: Decimal, tick: Decimal
) -> None:
    if mid * (1 - spread / 2) <= 2 * tick:
        return  # a tick this coarse cannot quote this mid (a configuration error)
    buy, sell = quote_from_mid(mid, spread, tick)
    half = mid * spread / 2
    assert 0 < sell < mid < buy
    assert buy % tick == 0 and sell % tick == 0
    assert buy >= mid + half and sell <= mid - half  # never narrower than asked
    assert buy - (mid + half) < tick  # ... by less than a tick on each side
    assert (mid - half) - sell < tick


codes = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=3, max_size=3)


@SETTINGS
@given(base=codes, quote=codes, sep=st.sampled_from(["/", "-", "_", ""]), lower=st.booleans())
def test_any_spelling_parses_to_the_canonical_pair(
    base: str, quote: str, sep: str, lower: bool
) -> None:
    if base == quote:
        return
    text = f"{base}{sep}{quote}"
    pair = parse_pair(text.lower() if lower else text)
    assert str(pair) == f"{base}/{quote}"
    assert parse_pair(str(pair)) == pair == parse_pair(pair.compact)

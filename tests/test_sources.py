"""SourceBook: aggregation, failover, staleness by kind, rejection counting, circuit breaker,
cross routes and reference bands. Pure: a fake clock, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

import pytest

from ratehubd.engine.cross import Kind, Quote
from ratehubd.engine.model import MarketQuote
from ratehubd.engine.pairs import Pair
from ratehubd.engine.policy import PairPolicy
from ratehubd.engine.sources import (
    BookConfig,
    BreakerClosed,
    BreakerOpened,
    Budget,
    MarketMoved,
    PairRouting,
    QuoteRejected,
    SourceBook,
    SourceEvent,
    StalenessBegan,
    StalenessEnded,
    weekday_seconds,
)
from ratehubd.errors import ConfigError
from tests.conftest import FakeClock

D = Decimal
E = TypeVar("E")
USDCAD, EURCAD, GBPCAD = Pair("USD", "CAD"), Pair("EUR", "CAD"), Pair("GBP", "CAD")
BTCCAD = Pair("BTC", "CAD")
MONDAY = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def policy(pair: Pair, start: str, max_jump: str = "0.05") -> PairPolicy:
    s = D(start)
    return PairPolicy(
        pair=pair, tick=D("0.0001"), spread=D("0.02"), min_spread=D("0.001"),
        max_spread=D("0.1"), max_override_deviation=D("0.05"), sanity_min=s / 3,
        sanity_max=s * 3, max_jump=D(max_jump), staleness_seconds=300, max_lock_seconds=1800,
    )  # fmt: skip


POLICIES = {
    USDCAD: policy(USDCAD, "1.35"),
    EURCAD: policy(EURCAD, "1.49"),
    GBPCAD: policy(GBPCAD, "1.76"),
    BTCCAD: policy(BTCCAD, "135000", max_jump="0.10"),
}


def book(**routing: PairRouting | int) -> SourceBook:
    pairs = {
        "usd": USDCAD, "eur": EURCAD, "gbp": GBPCAD, "btc": BTCCAD,
    }  # fmt: skip
    config = BookConfig(
        routing={pairs[k]: v for k, v in routing.items() if isinstance(v, PairRouting)},
        breaker_rejections=3,
        breaker_recovery=2,
    )
    return SourceBook(POLICIES, config)


def quote(
    pair: Pair,
    mid: str,
    source: str,
    at: datetime,
    kind: Kind = "intraday",
    bid: str | None = None,
    ask: str | None = None,
) -> Quote:
    return Quote(pair=pair, mid=D(mid), source=source, timestamp=at, kind=kind,
                 bid=D(bid) if bid else None, ask=D(ask) if ask else None)  # fmt: skip


def of(events: list[SourceEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY)


# -- priority, failover, median ---------------------------------------------------------------


def test_priority_uses_the_first_healthy_source_and_fails_over(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr", "simulated")))
    now = clock.now()
    events = b.offer([quote(USDCAD, "1.3612", "oxr", now)], now)
    (moved,) = of(events, MarketMoved)
    assert moved.quote.mid == D("1.3612") and moved.quote.sources == ("oxr",)
    assert b.offer(quote(USDCAD, "1.3500", "simulated", now, "simulated"), now) == []
    agg = b.mid(USDCAD, now)
    assert agg is not None and agg.sources == ("oxr",) and not agg.stale

    # two hours later OXR is stale (intraday budget); the simulated feed still ticks
    clock.advance(2 * 3600 + 1)
    now = clock.now()
    events = b.offer(quote(USDCAD, "1.3501", "simulated", now, "simulated"), now)
    assert StalenessBegan(USDCAD, "oxr", MONDAY, now) in events
    (moved,) = of(events, MarketMoved)
    assert moved.quote.sources == ("simulated",) and moved.quote.mid == D("1.3501")

    # OXR comes back: it has priority again
    events = b.offer(quote(USDCAD, "1.3620", "oxr", now), now)
    assert StalenessEnded(USDCAD, "oxr", now) in events
    assert b.mid(USDCAD, now).sources == ("oxr",)  # type: ignore[union-attr]


def test_median_of_the_live_sources(clock: FakeClock) -> None:
    b = book(btc=PairRouting(sources=("kraken", "a", "b", "c"), mode="median"))
    now = clock.now()
    b.offer(quote(BTCCAD, "139500", "kraken", now, "exchange", "139490", "139510"), now)
    b.offer(quote(BTCCAD, "139400", "a", now, "exchange", "139300", "139500"), now)
    b.offer(quote(BTCCAD, "139700", "b", now, "exchange", "139650", "139750"), now)
    agg = b.mid(BTCCAD, now)
    assert agg is not None
    assert (agg.mid, agg.bid, agg.ask) == (D("139500"), D("139490"), D("139510"))
    assert agg.sources == ("kraken", "a", "b") and agg.mode == "median"
    b.offer(quote(BTCCAD, "139600", "c", now, "exchange"), now)  # mid only
    agg = b.mid(BTCCAD, now)
    assert agg is not None and agg.mid == D("139550")  # even count: mean of the middle two
    assert agg.bid is None and agg.ask is None  # not every source has a book


# -- staleness by kind ------------------------------------------------------------------------


def test_weekday_seconds_skips_weekends() -> None:
    friday = datetime(2026, 1, 9, 21, 30, tzinfo=UTC)
    monday = datetime(2026, 1, 12, 21, 30, tzinfo=UTC)
    assert weekday_seconds(friday, monday) == 24 * 3600
    assert weekday_seconds(friday, friday + timedelta(hours=1)) == 3600
    assert weekday_seconds(friday, friday + timedelta(weeks=3)) == 15 * 24 * 3600
    assert weekday_seconds(monday, friday) < 0


def test_a_friday_reference_rate_is_fresh_over_the_weekend(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("boc",)))
    friday = datetime(2026, 1, 9, 21, 30, tzinfo=UTC)
    b.offer(quote(USDCAD, "1.3612", "boc", friday, "reference"), friday)
    monday_noon = datetime(2026, 1, 12, 12, 0, tzinfo=UTC)
    assert not b.mid(USDCAD, monday_noon).stale  # type: ignore[union-attr]
    assert b.refusal(USDCAD, monday_noon) is None
    wednesday = datetime(2026, 1, 14, 0, 0, tzinfo=UTC)  # > 2 business days
    assert b.mid(USDCAD, wednesday).stale  # type: ignore[union-attr]
    assert "no fresh market data from boc" in (b.refusal(USDCAD, wednesday) or "")


def test_an_exchange_book_is_stale_in_seconds(clock: FakeClock) -> None:
    b = book(btc=PairRouting(sources=("kraken",)))
    now = clock.now()
    b.offer(quote(BTCCAD, "139500", "kraken", now, "exchange"), now)
    assert b.check(now + timedelta(seconds=30)) == []
    events = b.check(now + timedelta(seconds=31))
    assert events == [
        StalenessBegan(BTCCAD, "kraken", now, now + timedelta(seconds=31)),
        StalenessBegan(BTCCAD, None, now, now + timedelta(seconds=31)),
    ]
    assert b.check(now + timedelta(seconds=60)) == []  # once per transition, never per tick
    later = now + timedelta(seconds=90)
    events = b.offer(quote(BTCCAD, "139600", "kraken", later, "exchange"), later)
    assert of(events, StalenessEnded) == [
        StalenessEnded(BTCCAD, "kraken", later),
        StalenessEnded(BTCCAD, None, later),
    ]


def test_budgets_are_configurable_per_kind_and_per_source(clock: FakeClock) -> None:
    config = BookConfig(
        routing={USDCAD: PairRouting(sources=("frankfurter",))},
        budgets={**BookConfig().budgets, "intraday": Budget(60)},
        source_budgets={"frankfurter": Budget(3 * 86400, weekdays_only=True)},
    )
    b = SourceBook(POLICIES, config)
    assert b.budget("oxr", "intraday") == Budget(60)
    now = clock.now()
    b.offer(quote(USDCAD, "1.36", "frankfurter", now - timedelta(days=1)), now)
    assert not b.mid(USDCAD, now).stale  # type: ignore[union-attr]


def test_a_stale_mid_is_still_shown_but_marked(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr",)))
    assert b.mid(USDCAD, clock.now()) is None  # nothing yet
    now = clock.now()
    b.offer(quote(USDCAD, "1.36", "oxr", now), now)
    later = now + timedelta(hours=3)
    agg = b.mid(USDCAD, later)
    assert agg is not None and agg.stale and agg.mid == D("1.36") and not agg.frozen


# -- validation and rejection counting --------------------------------------------------------


@pytest.mark.parametrize(
    ("mid", "bid", "ask", "reason"),
    [
        ("0", None, None, "non-positive or non-finite mid 0"),
        ("-1.3", None, None, "non-positive"),
        ("NaN", None, None, "non-finite mid NaN"),
        ("Infinity", None, None, "non-finite"),
        ("1.35", "1.36", "1.34", "crossed book"),
        ("9.5", None, None, "outside sanity band"),
        ("0.1", None, None, "outside sanity band"),
    ],
)
def test_bad_ticks_are_rejected_and_counted_per_source(
    clock: FakeClock, mid: str, bid: str | None, ask: str | None, reason: str
) -> None:
    b = book(usd=PairRouting(sources=("oxr", "push")))
    now = clock.now()
    b.offer(quote(USDCAD, "1.35", "oxr", now), now)
    events = b.offer(quote(USDCAD, mid, "push", now, "push", bid, ask), now)
    (rejected,) = of(events, QuoteRejected)
    assert rejected.source == "push" and reason in rejected.reason
    assert b.rejected[("push", "USD/CAD")] == 1 and b.rejected[("oxr", "USD/CAD")] == 0
    assert b.mid(USDCAD, now).mid == D("1.35")  # type: ignore[union-attr]


def test_a_jump_beyond_the_limit_is_rejected(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr",)))
    now = clock.now()
    b.offer(quote(USDCAD, "1.35", "oxr", now), now)
    clock.advance(60)
    now = clock.now()
    events = b.offer(quote(USDCAD, "1.43", "oxr", now), now)  # +5.9 %
    (rejected,) = of(events, QuoteRejected)
    assert "jumps 5.93% from 1.35 (limit 5%)" in rejected.reason
    events = b.offer(quote(USDCAD, "1.40", "oxr", now + timedelta(seconds=1)), now)  # +3.7 %
    assert of(events, QuoteRejected) == [] and b.mid(USDCAD, now).mid == D("1.40")  # type: ignore[union-attr]


def test_each_source_is_held_to_its_own_last_value(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr", "sim"), mode="median"))
    t = clock.now()
    b.offer([quote(USDCAD, "1.35", "oxr", t), quote(USDCAD, "1.35", "sim", t)], t)
    steps = [("oxr", "1.38"), ("sim", "1.33"), ("oxr", "1.40")]  # 1.40 is 5.3 % above 1.33
    for i, (source, mid) in enumerate(steps, start=1):
        at = t + timedelta(seconds=i)
        assert not of(b.offer(quote(USDCAD, mid, source, at), at), QuoteRejected), source
    assert b.mid(USDCAD, at).mid == D("1.365")  # type: ignore[union-attr]


def test_a_new_source_is_held_to_the_pairs_last_value(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr", "sim")))
    t = clock.now()
    b.offer(quote(USDCAD, "1.44", "oxr", t), t)
    events = b.offer(quote(USDCAD, "1.35", "sim", t), t)  # no history of its own yet
    assert "jumps 6.25% from 1.44" in of(events, QuoteRejected)[0].reason


def test_the_jump_reference_expires_with_its_data(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr",)))
    now = clock.now()
    b.offer(quote(USDCAD, "1.35", "oxr", now), now)
    later = now + timedelta(hours=3)  # the 1.35 is stale: no jump check against it
    assert of(b.offer(quote(USDCAD, "1.43", "oxr", later), later), QuoteRejected) == []


def test_a_future_timestamp_is_rejected(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr",)))
    now = clock.now()
    events = b.offer(quote(USDCAD, "1.35", "oxr", now + timedelta(minutes=10)), now)
    assert "in the future" in of(events, QuoteRejected)[0].reason


def test_a_repeated_daily_quote_is_not_a_new_tick(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("boc",)))
    friday = datetime(2026, 1, 2, 21, 30, tzinfo=UTC)
    first = b.offer(quote(USDCAD, "1.3612", "boc", friday, "reference"), clock.now())
    assert of(first, MarketMoved)
    again = b.offer(quote(USDCAD, "1.3612", "boc", friday, "reference"), clock.now())
    older = b.offer(
        quote(USDCAD, "1.30", "boc", friday - timedelta(days=1), "reference"), clock.now()
    )
    assert again == older == []
    (pair,) = [p for p in b.health(clock.now()) if p.pair == USDCAD]
    assert pair.routes[0].accepted == 1


# -- circuit breaker ---------------------------------------------------------------------------


def test_breaker_opens_after_n_rejections_and_closes_after_m_healthy_ticks(
    clock: FakeClock,
) -> None:
    b = book(btc=PairRouting(sources=("kraken",)))
    t = clock.now()
    b.offer(quote(BTCCAD, "139500", "kraken", t, "exchange"), t)
    opened: list[BreakerOpened] = []
    for i in range(1, 6):
        t = MONDAY + timedelta(seconds=i)
        opened += of(b.offer(quote(BTCCAD, "200000", "kraken", t, "exchange"), t), BreakerOpened)
    assert len(opened) == 1  # once, at the third rejection
    assert opened[0].rejections == 3
    assert b.rejected[("kraken", "BTC/CAD")] == 5
    frozen = b.mid(BTCCAD, t)
    assert frozen is not None and frozen.frozen and frozen.stale and frozen.mid == D("139500")
    assert "circuit breaker is open" in (b.refusal(BTCCAD, t) or "")
    (health,) = [p for p in b.health(t) if p.pair == BTCCAD]
    assert health.status == "frozen" and health.routes[0].status == "rejecting"

    t += timedelta(seconds=1)
    first = b.offer(quote(BTCCAD, "139600", "kraken", t, "exchange"), t)
    assert not of(first, BreakerClosed) and b.mid(BTCCAD, t).frozen  # type: ignore[union-attr]
    t += timedelta(seconds=1)
    second = b.offer(quote(BTCCAD, "139700", "kraken", t, "exchange"), t)
    assert of(second, BreakerClosed) == [BreakerClosed(BTCCAD, "healthy ticks", t)]
    assert of(second, MarketMoved)[0].quote.mid == D("139700")
    assert b.refusal(BTCCAD, t) is None


def test_breaker_stays_closed_while_another_source_is_healthy(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr", "push")))
    now = clock.now()
    b.offer(quote(USDCAD, "1.35", "oxr", now), now)
    events: list[SourceEvent] = []
    for i in range(10):
        at = now + timedelta(seconds=i)
        events += b.offer(quote(USDCAD, "9", "push", at, "push"), now)
    assert not of(events, BreakerOpened) and b.rejected[("push", "USD/CAD")] == 10
    assert b.mid(USDCAD, now).sources == ("oxr",)  # type: ignore[union-attr]


def test_operator_reset_closes_and_accepts_the_new_level(clock: FakeClock) -> None:
    b = book(btc=PairRouting(sources=("kraken",)))
    t = clock.now()
    b.offer(quote(BTCCAD, "100000", "kraken", t, "exchange"), t)
    for i in range(1, 4):  # a genuine 20 % move: rejected as a jump, over and over
        at = t + timedelta(seconds=i)
        b.offer(quote(BTCCAD, "120000", "kraken", at, "exchange"), at)
    assert b.mid(BTCCAD, at).frozen  # type: ignore[union-attr]
    events = b.reset(BTCCAD, at)
    assert events[0] == BreakerClosed(BTCCAD, "operator", at)
    at += timedelta(seconds=1)
    events = b.offer(quote(BTCCAD, "120100", "kraken", at, "exchange"), at)
    assert not of(events, QuoteRejected)
    assert b.mid(BTCCAD, at).mid == D("120100")  # type: ignore[union-attr]
    assert b.reset(BTCCAD, at) == []  # nothing to close


# -- cross routes ------------------------------------------------------------------------------


def test_ecb_builds_usd_and_gbp_cad_through_eur(clock: FakeClock) -> None:
    b = book(
        usd=PairRouting(sources=("ecb",)),
        gbp=PairRouting(sources=("ecb",)),
        eur=PairRouting(sources=("ecb",)),
    )
    day = datetime(2026, 1, 2, 15, 0, tzinfo=UTC)
    legs = [
        quote(Pair("EUR", "USD"), "1.0321", "ecb", day, "reference"),
        quote(Pair("EUR", "GBP"), "0.83015", "ecb", day, "reference"),
        quote(Pair("EUR", "CAD"), "1.4876", "ecb", day, "reference"),
    ]
    events = b.offer(legs, clock.now())
    assert {e.quote.pair for e in of(events, MarketMoved)} == {USDCAD, GBPCAD, EURCAD}
    usd = b.mid(USDCAD, clock.now())
    assert usd is not None and str(usd.mid).startswith("1.441333204")
    assert usd.describe_legs() == (
        "USD/CAD = 1/(EUR/USD 1.0321 from ecb) x EUR/CAD 1.4876 from ecb",
    )
    assert b.mid(EURCAD, clock.now()).mid == D("1.4876")  # type: ignore[union-attr]


def test_oxr_crosses_eur_cad_through_its_usd_base(clock: FakeClock) -> None:
    b = book(eur=PairRouting(sources=("oxr",)))
    now = clock.now()
    b.offer(
        [quote(USDCAD, "1.361275", "oxr", now), quote(Pair("USD", "EUR"), "0.968912", "oxr", now)],
        now,
    )
    eur = b.mid(EURCAD, now)
    assert eur is not None and abs(eur.mid - D("1.361275") / D("0.968912")) < D("1e-26")


def test_coinbase_btc_usd_is_crossed_with_the_books_usd_cad(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr",)), btc=PairRouting(sources=("coinbase",)))
    now = clock.now()
    btcusd = quote(
        Pair("BTC", "USD"), "97011.285", "coinbase", now, "exchange", "97010.12", "97012.45"
    )
    assert b.offer(btcusd, now) == []  # no USD/CAD yet: nothing to cross with
    b.offer(quote(USDCAD, "1.3612", "oxr", now), now)
    t = now + timedelta(seconds=1)
    events = b.offer(
        quote(Pair("BTC", "USD"), "97011.285", "coinbase", t, "exchange", "97010.12", "97012.45"), t
    )
    (moved,) = of(events, MarketMoved)
    agg = moved.quote
    assert agg.pair == BTCCAD and agg.sources == ("coinbase",)
    assert agg.bid == D("97010.12") * D("1.3612") and agg.ask == D("97012.45") * D("1.3612")
    assert agg.legs[0].sources == ("coinbase", "oxr")
    # the BTC/CAD route is only as healthy as the book's USD/CAD
    later = now + timedelta(hours=2, seconds=1)
    assert b.mid(BTCCAD, later).stale  # type: ignore[union-attr]


# -- reference bands ---------------------------------------------------------------------------


def test_a_fresh_reference_mid_defines_the_sanity_band(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr",), references=("boc", "ecb")))
    now = clock.now()
    b.offer(quote(USDCAD, "1.3612", "boc", now - timedelta(hours=20), "reference"), now)
    # inside the static band [0.45, 4.05] but 8 % away from the reference
    events = b.offer(quote(USDCAD, "1.47", "oxr", now), now)
    (rejected,) = of(events, QuoteRejected)
    assert "reference mid 1.3612 +/- 5%" in rejected.reason
    assert b.mid(USDCAD, now) is None  # references are context, never the dealing price
    assert of(b.offer(quote(USDCAD, "1.36", "oxr", now + timedelta(seconds=1)), now), MarketMoved)
    (h,) = [p for p in b.health(now) if p.pair == USDCAD]
    assert h.reference == D("1.3612")
    assert {r.source: r.role for r in h.routes} == {
        "oxr": "dealing",
        "boc": "reference",
        "ecb": "reference",
    }
    assert b.mid(USDCAD, now).reference == D("1.3612")  # type: ignore[union-attr]


def test_without_a_fresh_reference_the_static_band_applies(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr",), references=("boc",)))
    now = clock.now()
    b.offer(quote(USDCAD, "1.3612", "boc", now - timedelta(days=5), "reference"), now)
    assert not of(b.offer(quote(USDCAD, "1.47", "oxr", now), now), QuoteRejected)


# -- health, restore, config -------------------------------------------------------------------


def test_sources_for_lists_dealing_then_reference_sources() -> None:
    b = book(usd=PairRouting(sources=("push", "oxr"), references=("boc", "oxr")))
    assert b.sources_for(USDCAD) == ("push", "oxr", "boc")
    assert b.sources_for(EURCAD) == ("simulated",)


def test_health_reports_every_pair_and_route(clock: FakeClock) -> None:
    b = book(usd=PairRouting(sources=("oxr", "simulated")))
    now = clock.now()
    b.offer(quote(USDCAD, "1.36", "oxr", now - timedelta(seconds=5)), now)
    health = {h.pair: h for h in b.health(now)}
    assert set(health) == set(POLICIES)
    usd = health[USDCAD]
    assert usd.status == "live" and usd.sources_used == ("oxr",) and usd.mode == "priority"
    oxr, sim = usd.routes
    assert (oxr.status, oxr.age_s, oxr.accepted, oxr.mid) == ("live", 5.0, 1, D("1.36"))
    assert sim.status == "no_data"
    assert health[EURCAD].status == "no_data"


def test_restore_shows_the_persisted_market_as_stale(clock: FakeClock) -> None:
    b = book()
    now = clock.now()
    b.restore(MarketQuote(USDCAD, D("1.3555"), ("simulated",), now - timedelta(minutes=5)))
    agg = b.mid(USDCAD, now)
    assert agg is not None and agg.stale and agg.mid == D("1.3555")
    assert agg.market_quote() == MarketQuote(USDCAD, D("1.3555"), ("simulated",), agg.timestamp)
    events = b.offer(quote(USDCAD, "1.3556", "simulated", now, "simulated"), now)
    assert of(events, MarketMoved) and not b.mid(USDCAD, now).stale  # type: ignore[union-attr]


def test_bad_config_lists_every_problem() -> None:
    config = BookConfig(
        routing={USDCAD: PairRouting(sources=(), reference_band=D(2))},
        budgets={"reference": Budget(1)},
        breaker_rejections=0,
    )
    with pytest.raises(ConfigError) as info:
        SourceBook(POLICIES, config)
    problems = "\n".join(info.value.problems)
    assert "no budget for kind 'exchange'" in problems
    assert "breaker_rejections must be at least 1" in problems
    assert "USD/CAD.sources: name at least one source" in problems
    assert "reference_band must be a fraction" in problems

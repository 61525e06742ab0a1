"""The shared feed machinery: backoff, the poller, push validation, the simulated source."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ratehubd.adapters.feeds.base import Kind, Quote, RetryPolicy, Source, backoff, poll
from ratehubd.adapters.feeds.push import push_quote
from ratehubd.adapters.feeds.simulated import SimulatedFeed
from ratehubd.engine.pairs import Pair
from ratehubd.errors import InvalidRates, InvalidRequest, SourceError, UnknownPair
from tests.conftest import FakeClock
from tests.fixtures.sources import Sleeps

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
USDCAD = Pair("USD", "CAD")


def test_backoff_grows_and_caps() -> None:
    delays = list(itertools.islice(backoff(0.5, 2.0, 3.0), 6))
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_retry_policy_needs_one_attempt() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(attempts=0)


def test_quote_needs_an_aware_timestamp_and_both_sides() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Quote(pair=USDCAD, mid=Decimal(1), source="x", timestamp=datetime(2026, 1, 1),
              kind="push")  # fmt: skip
    with pytest.raises(ValueError, match="both bid and ask"):
        Quote(pair=USDCAD, mid=Decimal(1), bid=Decimal(1), source="x", timestamp=NOW,
              kind="push")  # fmt: skip


class Scripted:
    """A Source whose polls follow a script: a list of quotes or a SourceError."""

    name = "scripted"
    kind: Kind = "intraday"

    def __init__(self, *script: list[Quote] | SourceError) -> None:
        self.script = list(script)

    async def fetch(self) -> list[Quote]:
        step = self.script.pop(0)
        if isinstance(step, SourceError):
            raise step
        return step


class Stop(Exception):
    pass


async def test_poll_emits_backs_off_after_errors_and_resets_after_success() -> None:
    q = Quote(pair=USDCAD, mid=Decimal("1.35"), source="scripted", timestamp=NOW, kind="intraday")
    flaky = SourceError("scripted: down", source="scripted", retryable=True)
    bad_key = SourceError("scripted: bad key", source="scripted", retryable=False)
    src = Scripted([q], flaky, flaky, flaky, [q], flaky, bad_key, [q])
    assert isinstance(src, Source)
    emitted: list[list[Quote]] = []
    errors: list[SourceError] = []
    sleeps = Sleeps()

    async def sleep(delay: float) -> None:
        await sleeps(delay)
        if not src.script:
            raise Stop

    with pytest.raises(Stop):
        await poll(
            src, 60.0, emitted.append, sleep=sleep, on_error=errors.append, clock=lambda: 0.0
        )
    assert emitted == [[q], [q], [q]]
    assert errors == [flaky, flaky, flaky, flaky, bad_key]
    # success: the interval; retryable errors: growing backoff (reset after a success);
    # a permanent error: the normal interval
    assert sleeps.delays == [60.0, 0.5, 1.0, 2.0, 60.0, 0.5, 60.0, 60.0]


async def test_poll_never_waits_longer_than_the_interval_after_an_error() -> None:
    flaky = SourceError("down", source="scripted", retryable=True)
    src = Scripted(*[flaky] * 6)
    sleeps = Sleeps()

    async def sleep(delay: float) -> None:
        await sleeps(delay)
        if not src.script:
            raise Stop

    with pytest.raises(Stop):
        await poll(src, 3.0, lambda quotes: None, sleep=sleep)
    assert sleeps.delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]


# -- push ------------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["BTC", "btc", "BTC/CAD", "BTCCAD", "btc-cad", " BTC "])
def test_push_accepts_a_currency_or_a_cad_pair(symbol: str) -> None:
    q = push_quote(symbol, 135000.5, now=NOW)
    assert (q.pair, q.mid, q.kind, q.source, q.timestamp) == (
        Pair("BTC", "CAD"), Decimal("135000.5"), "push", "push", NOW)  # fmt: skip


def test_push_takes_numeric_strings_exactly_and_a_source_name() -> None:
    q = push_quote("USD", "1.3612", now=NOW, source="push:dashboard-1")
    assert q.mid == Decimal("1.3612") and q.source == "push:dashboard-1"


@pytest.mark.parametrize(
    ("symbol", "price", "error", "message"),
    [
        ("", 1, InvalidRequest, "currency like 'BTC'"),
        (None, 1, InvalidRequest, "currency like 'BTC'"),
        ("CAD", 1, UnknownPair, "home currency"),
        ("BTC/USD", 1, InvalidRequest, "prices are in CAD.*'BTC/CAD'"),
        ("not a pair!", 1, UnknownPair, "not a currency pair"),
        ("BTC", 0, InvalidRates, "must be positive"),
        ("BTC", -5, InvalidRates, "must be positive"),
        ("BTC", "abc", InvalidRates, "priceCAD must be a number"),
        ("BTC", float("nan"), InvalidRates, "finite"),
        ("BTC", True, InvalidRates, "must be a number"),
        ("XRP", 1, UnknownPair, "configured pairs are BTC/CAD, USD/CAD"),
    ],
)
def test_push_rejects_bad_input_clearly(
    symbol: object, price: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        push_quote(symbol, price, now=NOW, pairs={Pair("BTC", "CAD"), USDCAD})


def test_push_error_is_a_400() -> None:
    with pytest.raises(InvalidRequest) as info:
        push_quote("BTC/USD", 1, now=NOW)
    assert info.value.status == 400


# -- simulated ---------------------------------------------------------------------------------


async def test_simulated_feed_is_a_source_with_its_cadences() -> None:
    clock = FakeClock(NOW)
    levels = {
        USDCAD: (Decimal("1.35"), Decimal("0.0002"), Decimal("0.0001"), "fiat"),
        Pair("BTC", "CAD"): (Decimal("135000"), Decimal("0.001"), Decimal("0.01"), "crypto"),
    }
    feed = SimulatedFeed(levels, 5000, 5, seed=7, clock=clock.now)
    assert isinstance(feed, Source) and feed.interval_s == 1.0
    polls = [await feed.fetch() for _ in range(6)]
    assert [len(p) for p in polls] == [2, 1, 1, 1, 1, 2]  # fiat on every 5th poll
    assert polls[0][0].mid == Decimal("1.35")  # the first poll is the start levels
    assert {q.kind for p in polls for q in p} == {"simulated"}
    assert all(q.timestamp == NOW for p in polls for q in p)

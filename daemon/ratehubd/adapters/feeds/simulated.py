"""The simulated market feed: a mean-reverting random walk around realistic levels.

``walk`` is pure (the generator and the previous mid in, the next mid out);
``SimulatedFeed.run`` is the adapter that sleeps. Fiat ticks every
``update_frequency_ms`` (``RATE_UPDATE_FREQUENCY``); crypto ``crypto_speedup``
times as often.

``SimulatedFeed`` is also a :class:`~ratehubd.adapters.feeds.base.Source`: ``fetch`` is one
step as ``simulated`` quotes (every pair on the first call and every ``crypto_speedup``-th,
crypto only in between), to be polled every ``interval_s`` by ``base.poll``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from ratehubd.engine.cross import Kind, Quote
from ratehubd.engine.pairs import Pair

SOURCE = "simulated"
REVERSION = Decimal("0.05")  # pull 5 % of the distance back to the start level each tick

Emit = Callable[[Pair, Decimal, str], object]


def walk(
    rng: random.Random, mid: Decimal, start: Decimal, volatility: Decimal, tick: Decimal
) -> Decimal:
    """One step: a Gaussian move of ``volatility`` (relative), pulled back toward ``start``.
    The result is quantised to a tenth of the tick, so it stays a short, exact decimal."""
    shock = Decimal(repr(round(rng.gauss(0.0, 1.0), 6)))
    nxt = mid + mid * volatility * shock + (start - mid) * REVERSION
    return nxt.quantize(tick / 10)


class SimulatedFeed:
    name = SOURCE
    kind: Kind = "simulated"

    def __init__(
        self,
        levels: dict[Pair, tuple[Decimal, Decimal, Decimal, str]],
        update_frequency_ms: int,
        crypto_speedup: int,
        seed: int | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """``levels``: pair -> (start, volatility, tick, kind)."""
        self.levels = levels
        self.period_s = update_frequency_ms / 1000
        self.speedup = crypto_speedup
        self.rng = random.Random(seed)
        self.mids = {p: start for p, (start, _, _, _) in levels.items()}
        self.now = clock or (lambda: datetime.now(UTC))
        self._fetches = 0

    @property
    def interval_s(self) -> float:
        """How often to poll ``fetch`` so fiat and crypto keep their cadences."""
        return self.period_s / self.speedup

    async def fetch(self) -> list[Quote]:
        ticks: list[tuple[Pair, Decimal]] = []

        def collect(pair: Pair, mid: Decimal, source: str) -> None:
            ticks.append((pair, mid))

        if self._fetches == 0:
            self.seed_ticks(collect)
        else:
            self.step(collect, crypto_only=self._fetches % self.speedup != 0)
        self._fetches += 1
        now = self.now()
        return [
            Quote(pair=p, mid=m, source=self.name, timestamp=now, kind=self.kind) for p, m in ticks
        ]

    def seed_ticks(self, emit: Emit) -> None:
        """The first tick of every pair at its start level, so rates exist at once."""
        for pair, mid in self.mids.items():
            emit(pair, mid, SOURCE)

    def step(self, emit: Emit, crypto_only: bool) -> None:
        for pair, (start, vol, tick, kind) in self.levels.items():
            if crypto_only and kind != "crypto":
                continue
            self.mids[pair] = walk(self.rng, self.mids[pair], start, vol, tick)
            emit(pair, self.mids[pair], SOURCE)

    async def run(self, emit: Emit) -> None:
        n = 0
        while True:
            await asyncio.sleep(self.period_s / self.speedup)
            n += 1
            self.step(emit, crypto_only=n % self.speedup != 0)

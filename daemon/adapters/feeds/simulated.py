"""The simulated market feed: a mean-reverting random walk around realistic levels.

``walk`` is pure (the generator and the previous mid in, the next mid out);
``SimulatedFeed.run`` is the adapter that sleeps. Fiat ticks every
``update_frequency_ms`` (``RATE_UPDATE_FREQUENCY``); crypto ``crypto_speedup``
times as often.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from decimal import Decimal

from daemon.engine.pairs import Pair

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
    def __init__(
        self,
        levels: dict[Pair, tuple[Decimal, Decimal, Decimal, str]],
        update_frequency_ms: int,
        crypto_speedup: int,
        seed: int | None = None,
    ) -> None:
        """``levels``: pair -> (start, volatility, tick, kind)."""
        self.levels = levels
        self.period_s = update_frequency_ms / 1000
        self.speedup = crypto_speedup
        self.rng = random.Random(seed)
        self.mids = {p: start for p, (start, _, _, _) in levels.items()}

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

"""Per-key HTTP rate limits: one token bucket per API key, time passed in.

Each key may make ``rate`` requests per second on average, with bursts of up to
``burst``. Over that, :meth:`KeyLimiter.check` raises RateLimited carrying how long
until the next request would pass (the HTTP adapter turns it into 429 and
``Retry-After``). A rate of 0 turns limiting off.
"""

from __future__ import annotations

import math

from ratehubd.errors import RateLimited
from ratehubd.hub.ratelimit import TokenBucket


class KeyLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}
        self.refused = 0

    def configure(self, rate: float, burst: int) -> None:
        """New limits (reload); every key starts again with a full bucket."""
        self.rate, self.burst = rate, burst
        self._buckets.clear()

    def check(self, key_id: str, now: float) -> None:
        if self.rate <= 0:
            return
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = TokenBucket(self.rate, self.burst, now)
        if bucket.take(now):
            return
        self.refused += 1
        wait = bucket.retry_after()
        raise RateLimited(
            f"too many requests for key {key_id}: at most {self.rate:g}/s (burst {self.burst}); "
            f"retry in {math.ceil(wait)} s",
            retry_after=wait,
            limit=self.rate,
            burst=self.burst,
        )

    def forget(self, key_id: str) -> None:
        self._buckets.pop(key_id, None)

"""Per-key HTTP rate limits: one token bucket per API key, time passed in.

Each key may make ``rate`` requests per second on average, with bursts of up to
``burst``. Over that, :meth:`KeyLimiter.check` raises RateLimited carrying how long
until the next request would pass (the HTTP adapter turns it into 429 and
``Retry-After``). A rate of 0 turns limiting off.

In a fleet the rate is the key's for the whole fleet: each node shares how many requests
the key made to it (``take_counts``, once a second) and learns the others' (``share``);
its buckets refill at its part of the rate in proportion to the key's demand here (at
least a tenth of the rate, so a stale figure never shuts a key out). Demand, not what was
let through, so the split is stable. The burst stays each node's own.
"""

from __future__ import annotations

import math
from collections import Counter

from ratehubd.errors import RateLimited
from ratehubd.hub.ratelimit import TokenBucket


class KeyLimiter:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, TokenBucket] = {}
        self.refused = 0
        self._asked: Counter[str] = Counter()  # requests per key since the last take_counts
        self._here: dict[str, float] = {}  # this node's requests/s per key, last window
        self._elsewhere: dict[str, float] = {}  # the other nodes' requests/s per key

    def configure(self, rate: float, burst: int) -> None:
        """New limits (reload); every key starts again with a full bucket."""
        self.rate, self.burst = rate, burst
        self._buckets.clear()

    def check(self, key_id: str, now: float) -> None:
        if self.rate <= 0:
            return
        self._asked[key_id] += 1
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = TokenBucket(self._rate_here(key_id), self.burst, now)
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

    def _rate_here(self, key_id: str) -> float:
        others = self._elsewhere.get(key_id, 0.0)
        if others <= 0:
            return self.rate
        here = self._here.get(key_id, 0.0)
        return max(self.rate / 10, self.rate * here / (here + others))

    def take_counts(self, seconds: float) -> dict[str, float]:
        """Requests per second per key over the last ``seconds`` (for the other nodes)."""
        self._here = {k: n / seconds for k, n in self._asked.items()}
        self._asked = Counter()
        return dict(self._here)

    def share(self, elsewhere: dict[str, float]) -> None:
        """The other nodes' requests per second per key: this node's part of each key's
        rate follows the key's demand here."""
        self._elsewhere = elsewhere
        for key_id, bucket in self._buckets.items():
            bucket.rate = self._rate_here(key_id)

    def forget(self, key_id: str) -> None:
        self._buckets.pop(key_id, None)

"""Per-key request limits, time passed in; in a fleet the rate is shared by demand."""

from __future__ import annotations

import pytest

from ratehubd.errors import RateLimited
from ratehubd.keylimits import KeyLimiter


def passed(lim: KeyLimiter, key: str, start: float, seconds: float, per_second: int) -> int:
    n = 0
    for i in range(int(seconds * per_second)):
        try:
            lim.check(key, start + i / per_second)
            n += 1
        except RateLimited:
            pass
    return n


def test_alone_a_key_gets_the_rate_and_its_burst() -> None:
    lim = KeyLimiter(rate=10, burst=5)
    assert passed(lim, "k", 0.0, 2.0, 100) == pytest.approx(5 + 20, abs=1)


def test_two_nodes_with_equal_demand_each_get_half_the_rate() -> None:
    a, b = KeyLimiter(rate=10, burst=1), KeyLimiter(rate=10, burst=1)
    passed(a, "k", 0.0, 1.0, 100)
    passed(b, "k", 0.0, 1.0, 100)
    ra, rb = a.take_counts(1.0), b.take_counts(1.0)
    a.share(rb)
    b.share(ra)
    got = passed(a, "k", 1.0, 4.0, 100) + passed(b, "k", 1.0, 4.0, 100)
    assert got == pytest.approx(10 * 4, abs=4)  # the fleet's rate, not twice it


def test_demand_elsewhere_leaves_a_node_at_least_a_tenth() -> None:
    lim = KeyLimiter(rate=10, burst=1)
    lim.check("k", 0.0)
    lim.take_counts(1.0)  # 1 request/s here
    lim.share({"k": 99.0})  # 99/s on the other nodes
    assert passed(lim, "k", 1.0, 10.0, 10) == pytest.approx(10 * 1, abs=2)  # 1/s, not 0.1/s
    lim.share({})  # the other nodes went quiet (or Redis is away): the whole rate again
    assert passed(lim, "k", 20.0, 2.0, 100) == pytest.approx(20, abs=2)

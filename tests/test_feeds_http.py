"""Every HTTP adapter against a real server on 127.0.0.1: a stalled server times out, a
server that fails twice and then answers is retried with backoff (sleep injected, so the
test does not wait), and a server that is gone is a clear, retryable error."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from ratehubd.adapters.feeds import boc, coinbase, ecb, frankfurter, kraken, oxr
from ratehubd.adapters.feeds.base import RetryPolicy
from ratehubd.adapters.feeds.http import HttpSource
from ratehubd.errors import SourceError
from tests.conftest import timeout
from tests.fixtures.sources import Sleeps, fixture
from tests.fixtures.sources.server import FixtureServer, Reply

Factory = Callable[..., HttpSource]

PROVIDERS: list[tuple[str, Factory, str, str]] = [
    ("boc", lambda **kw: boc.BankOfCanada(**kw),
     "/observations/FXUSDCAD,FXEURCAD,FXGBPCAD/json", "boc_observations.json"),
    ("ecb", lambda **kw: ecb.Ecb(**kw), "/eurofxref-daily.xml", "ecb_daily.xml"),
    ("frankfurter", lambda **kw: frankfurter.Frankfurter(**kw),
     "/v1/latest", "frankfurter_v1_latest.json"),
    ("oxr", lambda **kw: oxr.OpenExchangeRates(app_id="k", **kw),
     "/latest.json", "oxr_latest.json"),
    ("coinbase", lambda **kw: coinbase.Coinbase(products=["BTC-USD"], **kw),
     "/products/BTC-USD/ticker", "coinbase_btc_usd.json"),
    ("kraken", lambda **kw: kraken.Kraken(**kw), "/0/public/Ticker", "kraken_ticker.json"),
]  # fmt: skip
IDS = [p[0] for p in PROVIDERS]


@pytest.mark.parametrize(("name", "make", "path", "good"), PROVIDERS, ids=IDS)
async def test_fails_twice_then_succeeds(name: str, make: Factory, path: str, good: str) -> None:
    sleeps = Sleeps()
    down = Reply(b'{"message": "upstream down"}', status=502)
    async with FixtureServer() as srv:
        srv.route(path, down, Reply(b"", status=503), Reply(fixture(good)))
        async with make(base_url=srv.url, sleep=sleeps) as src:
            quotes = await src.fetch()
        assert len(srv.hits(path)) == 3
    assert quotes and all(q.source == name for q in quotes)
    assert sleeps.delays == [0.5, 1.0]  # the policy's backoff, slept by the adapter only


@pytest.mark.parametrize(("name", "make", "path", "good"), PROVIDERS, ids=IDS)
async def test_a_stalled_server_times_out(name: str, make: Factory, path: str, good: str) -> None:
    sleeps = Sleeps()
    async with FixtureServer() as srv:
        srv.route(path, Reply(fixture(good), delay_s=timeout(30)))
        started = time.monotonic()
        async with make(base_url=srv.url, timeout_s=0.1, sleep=sleeps) as src:
            with pytest.raises(SourceError, match="no answer .* within 0.1 s") as info:
                await src.fetch()
        elapsed = time.monotonic() - started
        # The server may read the last request after the client gave up on it (a busy
        # machine): wait for it rather than race it.
        deadline = time.monotonic() + timeout(5)
        while len(srv.hits(path)) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert len(srv.hits(path)) == 3
    assert info.value.retryable and info.value.source == name
    assert "3 attempts" in info.value.message
    assert elapsed >= 0.3  # three tries of at least the timeout each
    assert elapsed < timeout(10)  # and never the 30 s stall


async def test_nobody_listening_is_a_retryable_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with boc.BankOfCanada(base_url=f"http://127.0.0.1:{port}", sleep=Sleeps()) as src:
        with pytest.raises(SourceError, match="cannot reach .*check the network") as info:
            await src.fetch()
    assert info.value.retryable


async def test_an_injected_client_is_shared_and_left_open() -> None:
    async with FixtureServer() as srv, httpx.AsyncClient() as client:
        srv.route("/eurofxref-daily.xml", Reply(fixture("ecb_daily.xml")))
        srv.route("/latest.json", Reply(fixture("oxr_latest.json")))
        common: dict[str, Any] = {"base_url": srv.url, "client": client}
        async with ecb.Ecb(**common) as a, oxr.OpenExchangeRates(app_id="k", **common) as b:
            assert len(await a.fetch()) == len(await b.fetch()) == 3
        assert not client.is_closed


async def test_one_attempt_means_no_retry() -> None:
    async with FixtureServer() as srv:
        srv.route("/eurofxref-daily.xml", Reply(b"", status=500))
        async with ecb.Ecb(base_url=srv.url, retry=RetryPolicy(attempts=1)) as src:
            with pytest.raises(SourceError, match=r"HTTP 500 .*\(empty body\)$"):
                await src.fetch()
        assert len(srv.requests) == 1

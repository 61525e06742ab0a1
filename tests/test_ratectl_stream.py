"""ratectl's hub follower: the sans-I/O tracker (resume position, dedup, filters, gap
notices), the backoff, and resume without a gap against a real in-process daemon."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import pytest

from ratectl.errors import AuthError, Unreachable
from ratectl.stream import Follow, Tracker, backoff, follow, ws_url
from ratehubd import wire
from tests.conftest import ADMIN_KEY, CountedDelays, timeout


def frame(type_: str, seq: int | None = None, epoch: str = "e1", **data: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": type_, "data": data, "timestamp": 1}
    if seq is not None:
        msg.update(seq=seq, epoch=epoch)
    return msg


def rates(*pairs: str) -> list[dict[str, Any]]:
    return [{"currencyPair": p, "buyRate": 2, "sellRate": 1} for p in pairs]


# -- tracker -----------------------------------------------------------------------------------


def test_resume_position_comes_from_the_frames_but_not_welcome() -> None:
    t = Tracker()
    assert t.resume_params() == {}
    # resuming from seq 2 of an old epoch: the welcome echoes that position
    t.feed(frame("welcome", seq=2, epoch="old") | {"data": {"epoch": "e1"}})
    assert t.resume_params() == {}
    t.feed(frame("rate_update", seq=3, rates=rates("USD/CAD"), snapshot=True))
    assert t.resume_params() == {"lastSeq": "3", "epoch": "e1"}
    t.feed(frame("rate_override_set", seq=4, currencyPair="USD/CAD"))
    t.feed(frame("heartbeat", seq=9))
    assert t.resume_params() == {"lastSeq": "9", "epoch": "e1"}
    t.feed(frame("pong", seq=8))
    assert t.resume_params() == {"lastSeq": "9", "epoch": "e1"}


def test_control_frames_are_not_shown_by_default() -> None:
    t = Tracker()
    for msg in (
        {"type": "welcome", "data": {"epoch": "e1"}},
        {"type": "heartbeat", "data": {"epoch": "e1", "seq": 0}},
        {"type": "subscribed", "data": {}},
        {"type": "pong", "data": {}},
    ):
        assert t.feed(msg).show is None
    shown = t.feed(frame("rate_update", seq=0, rates=rates("USD/CAD"))).show
    assert shown is not None and shown["type"] == "rate_update"


def test_replayed_events_are_shown_once() -> None:
    t = Tracker()
    assert t.feed(frame("rate_override_set", seq=5)).show is not None
    assert t.feed(frame("rate_override_set", seq=5)).show is None
    assert t.feed(frame("rate_override_cleared", seq=4)).show is None
    assert t.feed(frame("rate_override_cleared", seq=6)).show is not None
    # rate frames carry the position, not a number of their own: never dropped
    assert t.feed(frame("rate_update", seq=6, rates=rates("USD/CAD"))).show is not None


def test_filters_by_event_type_and_pair() -> None:
    t = Tracker(events=frozenset({"rate_update"}), pairs=frozenset({"USD/CAD"}))
    shown = t.feed(frame("rate_update", seq=1, rates=rates("USD/CAD", "EUR/CAD"))).show
    assert shown is not None and shown["data"]["rates"] == rates("USD/CAD")
    assert t.feed(frame("rate_update", seq=1, rates=rates("EUR/CAD"))).show is None
    assert t.feed(frame("rate_override_set", seq=2, currencyPair="USD/CAD")).show is None
    t2 = Tracker(pairs=frozenset({"USD/CAD"}))
    assert t2.feed(frame("rate_override_set", seq=2, currencyPair="EUR/CAD")).show is None
    assert t2.feed(frame("rate_override_set", seq=3, currencyPair="USD/CAD")).show is not None
    assert t2.feed(frame("system_status", seq=4, ok=True)).show is not None


def test_snapshot_notices_and_gap() -> None:
    t = Tracker()
    t.feed({"type": "welcome", "data": {"epoch": "e1"}})
    out = t.feed(
        frame(
            "rate_update", seq=9, rates=[], snapshot=True, recovered=True, missedEvents=2, fromSeq=7
        )
    )
    assert out.notices == ["resumed after seq 7: 2 missed event(s) replayed"]
    gap = {"fromSeq": 3, "toSeq": 9, "reason": "no longer retained"}
    out = t.feed(frame("rate_update", seq=9, rates=[], snapshot=True, recovered=False, gap=gap))
    assert out.notices == [
        "gap: events 3..9 could not be replayed (no longer retained); showing a fresh snapshot"
    ]


def test_epoch_change_resets_the_position() -> None:
    t = Tracker()
    t.feed({"type": "welcome", "data": {"epoch": "old"}})
    t.feed(frame("rate_override_set", seq=50, epoch="old"))
    out = t.feed({"type": "welcome", "data": {"epoch": "new"}})
    assert "epoch changed (old -> new)" in out.notices[0]
    assert t.feed(frame("rate_override_set", seq=1, epoch="new")).show is not None
    assert t.resume_params() == {"lastSeq": "1", "epoch": "new"}


def test_subscribe_snapshot_supersedes_the_first() -> None:
    t = Tracker()
    t.awaiting_ack = True
    assert t.feed(frame("rate_update", seq=0, rates=rates("USD/CAD"), snapshot=True)).show is None
    t.feed({"type": "subscribed", "data": {}})
    assert t.feed(frame("rate_update", seq=0, rates=rates("USD/CAD"), snapshot=True)).show


def test_error_messages_become_notices() -> None:
    out = Tracker().feed({"type": "error", "data": {"code": "bad", "message": "no"}})
    assert out.notices == ["daemon says: no (bad)"] and out.show is None


def test_backoff_grows_jitters_and_caps() -> None:
    delays = backoff(initial=0.2, factor=2, cap=5, rng=random.Random(1))
    got = [next(delays) for _ in range(10)]
    bounds = [0.2, 0.4, 0.8, 1.6, 3.2, 5, 5, 5, 5, 5]
    assert all(b / 2 <= d <= b for d, b in zip(got, bounds, strict=True))


def test_ws_url() -> None:
    url = ws_url("https://h:1", "s 1", {"lastSeq": "4", "epoch": "e"})
    assert url == "wss://h:1/api/rates/websocket?clientType=store_os&storeId=s+1&lastSeq=4&epoch=e"


# -- against a real daemon -------------------------------------------------------------------


class Recorder:
    def __init__(self, stop_after: int | None = None) -> None:
        self.messages: list[dict[str, Any]] = []
        self.notices: list[str] = []
        self.changed = asyncio.Event()
        self.stop_after = stop_after

    def on_message(self, msg: dict[str, Any]) -> bool:
        self.messages.append(msg)
        self.changed.set()
        return self.stop_after is not None and len(self.messages) >= self.stop_after

    def on_notice(self, text: str) -> None:
        self.notices.append(text)
        self.changed.set()

    async def until(self, predicate: Any) -> None:
        async def wait() -> None:
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), timeout(10))


def make(rt: Any, rec: Recorder, tracker: Tracker, first_delay: float = 0.05, **kw: Any) -> Follow:
    def delays() -> Iterator[float]:
        yield first_delay
        while True:
            yield 0.05

    return Follow(
        url=f"http://127.0.0.1:{rt.api_port}",
        token=kw.pop("token", ADMIN_KEY),
        timeout=timeout(5),
        store=kw.pop("store", "store123"),
        tracker=tracker,
        on_message=rec.on_message,
        on_notice=rec.on_notice,
        delays=delays,
        **kw,
    )


async def override(rt: Any, buy: float, store: str = "store123") -> None:
    req = wire.SetRateRequest(
        currencyPair="USD/CAD", buyRate=buy, sellRate=1.33, storeId=store, reason="test"
    )
    await rt.service.set_override(req, "tester")


def events(rec: Recorder) -> list[dict[str, Any]]:
    return [m for m in rec.messages if m["type"] == "rate_override_set"]


async def test_reconnects_and_replays_what_happened_while_away(runtime: Any) -> None:
    rec = Recorder()
    task = asyncio.create_task(follow(make(runtime, rec, Tracker(), first_delay=0.5)))
    try:
        await rec.until(lambda: rec.messages)  # the first snapshot
        await override(runtime, 1.37)
        await rec.until(lambda: len(events(rec)) == 1)
        runtime.pump.close_all(1012)  # a restart, as far as the client can tell
        await rec.until(lambda: any("reconnecting" in n for n in rec.notices))
        await override(runtime, 1.38)  # while the client waits out its backoff
        await override(runtime, 1.39)
        await rec.until(lambda: len(events(rec)) == 3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    seqs = [m["seq"] for m in events(rec)]
    assert seqs == sorted(set(seqs)) and len(seqs) == 3
    assert [m["data"]["buyRate"] for m in events(rec)] == [1.37, 1.38, 1.39]
    assert "the daemon is restarting; reconnecting in 0.5 s" in rec.notices
    assert "resumed after seq" in " ".join(rec.notices)
    assert "2 missed event(s) replayed" in " ".join(rec.notices)


async def test_an_outage_is_told_once_in_words_not_at_every_attempt(
    make_config: Any,
) -> None:
    from ratehubd.runtime import Runtime

    rt = Runtime(make_config())
    await rt.start()
    rec = Recorder()
    delays = CountedDelays()
    f = make(rt, rec, Tracker())
    f.delays = delays
    task = asyncio.create_task(follow(f))
    try:
        await rec.until(lambda: rec.messages)
        await rt.stop()  # the daemon is gone and stays gone
        await asyncio.wait_for(_until(lambda: delays.calls >= 5), timeout(10))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    away = [n for n in rec.notices if "unreachable" in n]
    assert len(away) == 1, rec.notices
    where = f"http://127.0.0.1:{rt.api_port}"
    assert f"daemon unreachable at {where} (nothing listens there)" in away[0]
    assert "then with backoff until it is back" in away[0]
    assert not any("Errno" in n for n in rec.notices)


async def _until(predicate: Any) -> None:
    while not predicate():
        await asyncio.sleep(0.01)


async def test_a_position_from_another_epoch_reports_the_gap(runtime: Any) -> None:
    tracker = Tracker()
    tracker.seq, tracker.epoch = 0, "not-this-database"
    rec = Recorder(stop_after=1)
    await asyncio.wait_for(follow(make(runtime, rec, tracker)), timeout(10))
    assert rec.messages[0]["data"]["recovered"] is False
    assert any(n.startswith("gap: events 1..") and "epoch changed" in n for n in rec.notices)


async def test_stops_after_on_message_says_so(runtime: Any) -> None:
    rec = Recorder(stop_after=1)
    await asyncio.wait_for(follow(make(runtime, rec, Tracker())), timeout(10))
    assert len(rec.messages) == 1 and rec.messages[0]["data"]["snapshot"] is True


async def test_market_data_subscription(runtime: Any) -> None:
    rec = Recorder(stop_after=1)
    sub = {"type": "rate_subscribe", "data": {"includeMarketData": True, "currencies": []}}
    tracker = Tracker(events=frozenset({"rate_update"}))
    await asyncio.wait_for(follow(make(runtime, rec, tracker, subscribe=sub)), timeout(10))
    assert rec.messages[0]["data"]["snapshot"] is True  # the subscription's, not the first


async def test_wrong_key_is_fatal(runtime: Any) -> None:
    with pytest.raises(AuthError, match="invalid or revoked API key"):
        await follow(make(runtime, Recorder(), Tracker(), token="wrong"))


async def test_first_connection_failing_is_fatal() -> None:
    class Nowhere:
        api_port = 1

    with pytest.raises(Unreachable, match="cannot reach the ratehubd hub"):
        await follow(make(Nowhere(), Recorder(), Tracker()))

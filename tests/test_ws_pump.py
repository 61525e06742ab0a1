"""The pump: when the hub's work runs on the event loop. A real loop, a real hub and a
connection that records what it is given (no sockets): the schedule is read off the
loop's own timer handles, so nothing here waits on wall-clock time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ratehubd.adapters.ws_pump import HubPump
from ratehubd.hub.hub import Hub
from ratehubd.hub.session import STORE_OS, Frame
from tests.hub_fakes import USDCAD, kind, make_hub

WINDOW = 0.05


class LoopClock:
    def time(self) -> float:
        return asyncio.get_running_loop().time()


class RecordingConn:
    """A connection whose socket drains unless ``paused``."""

    def __init__(self) -> None:
        self.paused = False
        self.frames: list[str] = []
        self.closed: tuple[int, str] | None = None

    def writable(self) -> bool:
        return not self.paused

    def write(self, frames: list[Frame]) -> None:
        self.frames += [f.text for f in frames]

    def write_now(self, frame: Frame) -> bool:
        if self.paused:
            return False
        self.frames.append(frame.text)
        return True

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)

    def kinds(self) -> list[str]:
        return [kind(json.loads(t)) for t in self.frames]


@pytest.fixture
async def pump() -> AsyncIterator[HubPump]:
    p = HubPump(make_hub(), LoopClock(), WINDOW, heartbeat_s=3600)
    task = asyncio.get_running_loop().create_task(p.run())
    await asyncio.sleep(0)
    yield p
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def flush_due(p: HubPump) -> float | None:
    """When the pump's next flush runs (loop time; 0.0: on the loop's next turn), or None
    if none is scheduled."""
    if p._timer is None:
        return None
    return p._timer.when() if isinstance(p._timer, asyncio.TimerHandle) else 0.0


def quiet(p: HubPump) -> None:
    """As if the last flush were long ago."""
    p._last_flush = float("-inf")


async def turn() -> None:
    """Let the loop run what is due now."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_an_idle_hub_schedules_nothing(pump: HubPump) -> None:
    conn = RecordingConn()
    pump.attach(conn, STORE_OS, "s1", "admin")
    await turn()
    assert flush_due(pump) is None
    assert pump._retry is None


async def test_a_change_after_a_quiet_window_is_flushed_on_the_next_turn(
    pump: HubPump,
) -> None:
    conn = RecordingConn()
    pump.attach(conn, STORE_OS, "s1", "admin")
    conn.frames.clear()
    loop = asyncio.get_running_loop()
    quiet(pump)
    hub: Hub = pump.hub
    hub.mark_rates([USDCAD], now=pump.clock.time())
    due = flush_due(pump)
    assert due is not None and due <= loop.time()  # not at the next beat: now
    await turn()
    assert conn.kinds() == ["rate_update"]


async def test_flushes_are_never_closer_than_a_window(pump: HubPump) -> None:
    conn = RecordingConn()
    pump.attach(conn, STORE_OS, "s1", "admin")
    quiet(pump)
    pump.hub.mark_rates([USDCAD])
    await turn()
    first = pump._last_flush
    pump.hub.mark_rates([USDCAD])
    due = flush_due(pump)
    assert due == pytest.approx(first + WINDOW)
    pump.hub.mark_rates([USDCAD])  # more changes: the same flush
    assert flush_due(pump) == due


async def test_a_stalled_socket_is_retried_without_moving_the_flush(pump: HubPump) -> None:
    """A client whose socket is full gets its frames when it drains (retried every
    window), and it never decides when everyone else's flush runs."""
    stalled, fine = RecordingConn(), RecordingConn()
    pump.attach(stalled, STORE_OS, "s1", "admin")
    pump.attach(fine, STORE_OS, "s1", "admin")
    stalled.paused = True
    stalled.frames.clear()
    fine.frames.clear()
    quiet(pump)
    loop = asyncio.get_running_loop()
    before = loop.time()
    pump.hub.mark_rates([USDCAD])
    await turn()
    assert fine.kinds() == ["rate_update"]
    assert stalled.frames == []
    assert flush_due(pump) is None  # nothing owed to anyone but the stalled client
    assert pump._retry is not None
    # One window after the failed write (which came between ``before`` and now).
    assert before + WINDOW <= pump._retry.when() <= loop.time() + WINDOW
    await asyncio.sleep(WINDOW * 1.5)  # still stalled: tried, and tried again later
    assert stalled.frames == [] and pump._retry is not None
    stalled.paused = False
    await asyncio.sleep(WINDOW * 1.5)  # the retry timer writes it once the socket drains
    assert stalled.kinds() == ["rate_update"]
    assert pump._retry is None


async def test_a_failed_flush_is_retried(pump: HubPump) -> None:
    conn = RecordingConn()
    pump.attach(conn, STORE_OS, "s1", "admin")
    conn.frames.clear()
    quiet(pump)
    rates, calls = pump.hub._rates, 0

    def broken_once(store_id: str | None) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("pricing failed")
        return rates(store_id)

    pump.hub._rates = broken_once
    errors: list[Any] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
    pump.hub.mark_rates([USDCAD])
    await turn()
    assert errors and conn.frames == []
    assert flush_due(pump) is not None  # the change is still owed
    await asyncio.sleep(WINDOW * 1.5)
    assert conn.kinds() == ["rate_update"]


async def test_an_event_for_a_client_with_frames_queued_is_written_on_the_next_turn(
    pump: HubPump,
) -> None:
    conn = RecordingConn()
    session = pump.attach(conn, STORE_OS, "s1", "admin")
    conn.paused = True
    pump.hub.publish_event("rate_lock_created", {"lockId": "L1"}, "s1", pump.clock.time())
    assert session.outbox
    conn.paused = False
    await turn()
    assert conn.kinds()[-1] == "rate_lock_created"
    assert not session.outbox

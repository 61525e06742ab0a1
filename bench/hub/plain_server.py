"""The floor ratehub's hub is measured against: a plain ``websockets`` asyncio server that
broadcasts one ``rate_update`` frame, shaped like the hub's (five rates with provenance) and
padded to its size (``--frame-bytes``), to every client every 50 ms with
``websockets.broadcast()``.

It starts idle (clients may connect; nothing is sent) and prints ``listening ws://...``.
SIGUSR1 starts the broadcast. SIGTERM sends one last frame, then ``{"type": "end", "seq": n}``
naming the last frame's sequence number, closes every connection (1001) and exits.

Each frame carries ``seq`` (1, 2, ... : a client sees a gap as a missing number),
``timestamp`` (epoch ms, as the guide's frames) and ``sentAt`` (epoch seconds as a float,
taken just before the broadcast, for sub-millisecond latency). The frame is encoded once per
tick. Scheduling is fixed-rate: a tick that runs late is sent at once and the next one keeps
the original cadence (ticks are skipped, never bunched, when the server cannot keep up).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import time
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

PAIRS = (
    ("BTC/CAD", 135000.0, 0.01),
    ("ETH/CAD", 4500.0, 0.01),
    ("EUR/CAD", 1.49, 0.0001),
    ("GBP/CAD", 1.76, 0.0001),
    ("USD/CAD", 1.35, 0.0001),
)


def rate(pair: str, mid: float, tick: float, store: str, ms: int) -> dict[str, Any]:
    """One rate object with the keys and number shapes the hub sends."""
    base, quote = pair.split("/")
    places = len(repr(tick).split(".")[1])
    return {
        "currencyPair": pair,
        "baseCurrency": base,
        "targetCurrency": quote,
        "rate": round(mid, places + 1),
        "buyRate": round(mid * 1.01, places),
        "sellRate": round(mid * 0.99, places),
        "spread": 0.02,
        "source": "simulated",
        "storeId": store,
        "validUntil": None,
        "timestamp": ms,
        "stale": False,
        "provenance": {
            "marketMid": round(mid, places + 1),
            "marketSources": ["simulated"],
            "marketTimestamp": ms,
            "spreadApplied": 0.02,
            "tick": tick,
            "override": None,
        },
    }


def frame(seq: int, mids: list[float], sent_at: float, pad: int = 0) -> str:
    ms = int(sent_at * 1000)
    rates = [rate(p, m, t, "s0", ms) for (p, _, t), m in zip(PAIRS, mids, strict=True)]
    data: dict[str, Any] = {"rates": rates, "checksum": f"{seq & 0xFFFFFFFF:08x}"}
    if pad:
        data["pad"] = "x" * pad
    msg = {
        "type": "rate_update",
        "data": data,
        "timestamp": ms,
        "seq": seq,
        "epoch": "plain",
        "sentAt": sent_at,
    }
    return json.dumps(msg, separators=(",", ":"))


class Broadcaster:
    def __init__(self, period_s: float, frame_bytes: int = 0) -> None:
        self.period_s = period_s
        self.clients: set[ServerConnection] = set()
        self.seq = 0
        self.rng = random.Random(1)
        self.mids = [start for _, start, _ in PAIRS]
        # Pad each frame (a "pad" string in data) to about frame_bytes, the hub's frame size,
        # measured on frames whose prices have moved off their round starting levels.
        rng, mids, sizes = random.Random(2), list(self.mids), []
        for seq in range(1, 21):
            mids = [m * (1 + rng.gauss(0.0, 0.0002)) for m in mids]
            sizes.append(len(frame(seq, mids, time.time())))
        self.pad = max(0, frame_bytes - sum(sizes) // len(sizes) - len(',"pad":""'))

    async def handler(self, ws: ServerConnection) -> None:
        self.clients.add(ws)
        try:
            async for message in ws:  # what clients send (acks in the ack runs) is read and parsed
                json.loads(message)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(ws)

    def tick(self) -> None:
        self.mids = [m * (1 + self.rng.gauss(0.0, 0.0002)) for m in self.mids]
        self.seq += 1
        broadcast(self.clients, frame(self.seq, self.mids, time.time(), self.pad))

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            self.tick()
            deadline += self.period_s
            delay = deadline - loop.time()
            if delay < 0:  # late: skip the missed ticks, keep the cadence
                deadline += -delay // self.period_s * self.period_s
                delay = deadline - loop.time()
            await asyncio.sleep(max(0.0, delay))


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--period-ms", type=float, default=50.0)
    ap.add_argument("--frame-bytes", type=int, default=0, help="pad frames to this size")
    args = ap.parse_args()
    b = Broadcaster(args.period_ms / 1000, args.frame_bytes)
    loop = asyncio.get_running_loop()
    go, stop = asyncio.Event(), asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, go.set)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(
        b.handler,
        "127.0.0.1",
        args.port,
        compression=None,
        ping_interval=5.0,
        ping_timeout=5.0,
        max_size=65536,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"listening ws://127.0.0.1:{port}/", flush=True)
        await next(asyncio.as_completed([go.wait(), stop.wait()]))
        task = loop.create_task(b.run()) if go.is_set() else None
        await stop.wait()
        if task is not None:
            task.cancel()
            b.tick()
        broadcast(b.clients, json.dumps({"type": "end", "seq": b.seq}, separators=(",", ":")))
        server.close(close_connections=True)
        await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())

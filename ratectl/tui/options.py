"""What the dashboard is given: where the daemon is, the key, the store, the clocks.

Built once by ``ratectl tui`` from the resolved settings (flag > env > config file >
default) and passed down to every part that needs it; tests build one with a frozen
clock, short reconnect delays and ``connect=False`` for frozen data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import tzinfo

from ratectl.stream import backoff


@dataclass(frozen=True, kw_only=True)
class TuiOptions:
    url: str
    token: str | None = None
    token_source: str = ""
    timeout: float = 10.0
    store: str | None = None
    read_only: bool = False
    connect: bool = True  # False: no hub, no HTTP (frozen data in tests)
    clock: Callable[[], float] = time.time  # wall time, seconds
    tz: tzinfo | None = None  # event log times; None: local time
    flush_interval: float = 0.05  # apply batched rate updates at most this often
    ping_interval: float = 2.0  # latency probe on the hub connection
    history: int = 120  # mids kept per pair for the sparkline
    history_interval: float = 0.25  # the sparkline redraws at most this often
    log_lines: int = 500
    poll_interval: float = 1.0  # the Stores and Terminals screens re-read this often
    delays: Callable[[], Iterator[float]] = field(default=backoff)
    freeze_gc: bool = False  # ratectl tui: the process is the app's (see RatehubApp.on_mount)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

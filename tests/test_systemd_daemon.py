"""``ratehubd`` as systemd runs it: a subprocess whose NOTIFY_SOCKET is a datagram socket
bound by the test, which therefore sees exactly what systemd would."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, start_daemon, timeout
from tests.test_systemd import NotifySocket


def next_message(ns: NotifySocket, prefix: bytes, wait: float = 10.0) -> dict[str, str]:
    """The next datagram starting with ``prefix`` (others are skipped), as a dict."""
    deadline = time.monotonic() + timeout(wait)
    while True:
        try:
            data, _sent = ns.recv(max(0.001, deadline - time.monotonic()))
        except TimeoutError:
            raise AssertionError(
                f"ratehubd sent no {prefix.decode()} notification within {timeout(wait)} s"
            ) from None
        if data.startswith(prefix):
            return dict(line.split("=", 1) for line in data.decode().split("\n"))


@pytest.fixture
def notified(tmp_path: Path) -> Iterator[tuple[DaemonProcess, NotifySocket]]:
    ns = NotifySocket(str(tmp_path / "notify.sock"))
    d = start_daemon(tmp_path / "state", env={"NOTIFY_SOCKET": ns.env, "WATCHDOG_USEC": "400000"})
    try:
        yield d, ns
    finally:
        d.stop()
        if d.proc.stdout:
            d.proc.stdout.close()
        ns.close()


def test_ready_once_listening(notified: tuple[DaemonProcess, NotifySocket]) -> None:
    import httpx

    d, ns = notified
    ready = next_message(ns, b"READY=1")
    assert ready["READY"] == "1"
    assert httpx.get(d.url + "/healthz", timeout=timeout(5)).status_code == 200


def test_watchdog_pings_at_half_the_interval(
    notified: tuple[DaemonProcess, NotifySocket],
) -> None:
    _d, ns = notified
    next_message(ns, b"READY=1")
    first = next_message(ns, b"WATCHDOG=1")
    assert first == {"WATCHDOG": "1"}
    next_message(ns, b"WATCHDOG=1", wait=2.0)


def test_sighup_reports_reloading_then_ready(
    notified: tuple[DaemonProcess, NotifySocket],
) -> None:
    d, ns = notified
    next_message(ns, b"READY=1")
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    d.proc.send_signal(signal.SIGHUP)
    reloading = next_message(ns, b"RELOADING=1")
    assert int(reloading["MONOTONIC_USEC"]) >= before
    next_message(ns, b"READY=1")
    assert d.proc.poll() is None


def test_sigterm_reports_stopping(notified: tuple[DaemonProcess, NotifySocket]) -> None:
    d, ns = notified
    next_message(ns, b"READY=1")
    d.proc.send_signal(signal.SIGTERM)
    next_message(ns, b"STOPPING=1")
    assert d.proc.wait(timeout(15)) == 0

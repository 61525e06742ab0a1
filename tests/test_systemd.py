"""The systemd notify protocol, the watchdog and the unit file.

A real ``AF_UNIX`` datagram socket bound in ``tmp_path`` stands in for systemd's notify
socket: it receives exactly what systemd would. Datagrams carry the kernel's send time
(``SO_TIMESTAMPNS``), so the watchdog test reads when each ping left the daemon, not when the
test got round to reading it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ratehubd.adapters.systemd import (
    Notifier,
    message,
    notify_address,
    one_line,
    parse_watchdog_usec,
    ready_message,
    reloading_message,
    status_message,
    stopping_message,
    watchdog_interval,
    watchdog_loop,
)
from tests.conftest import timeout

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
UNIT = DEPLOY / "ratehubd.service"
# Linux's SO_TIMESTAMPNS (asm-generic value); Python does not export the name.
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


class NotifySocket:
    """What systemd listens on: a datagram socket; ``env`` is the NOTIFY_SOCKET value."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.env = "@" + address[1:] if address.startswith("\0") else address

    def recv(self, wait: float | None = None) -> tuple[bytes, float]:
        """The next datagram and the wall-clock time it was sent. Raises TimeoutError after
        ``wait`` seconds (default: a generous ``timeout(5)``)."""
        self.sock.settimeout(timeout(5.0) if wait is None else wait)
        data, ancillary, _flags, _addr = self.sock.recvmsg(4096, 256)
        sent = time.time()
        for level, kind, raw in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", raw[:16])
                sent = sec + nsec / 1e9
        return data, sent

    def pending(self) -> list[tuple[bytes, float]]:
        """Every datagram queued so far, without waiting."""
        out: list[tuple[bytes, float]] = []
        self.sock.setblocking(False)
        while True:
            try:
                data, ancillary, _f, _a = self.sock.recvmsg(4096, 256)
            except BlockingIOError:
                return out
            sec, nsec = struct.unpack("qq", ancillary[0][2][:16])
            out.append((data, sec + nsec / 1e9))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    ns = NotifySocket(str(tmp_path / "notify.sock"))
    yield ns
    ns.close()


@pytest.fixture
def abstract_socket() -> Iterator[NotifySocket]:
    ns = NotifySocket(f"\0ratehub-test-{uuid.uuid4().hex}")
    yield ns
    ns.close()


# -- messages -------------------------------------------------------------------------------


def test_messages_are_newline_separated_assignments() -> None:
    assert ready_message() == b"READY=1"
    assert ready_message("listening on 127.0.0.1:3000") == (
        b"READY=1\nSTATUS=listening on 127.0.0.1:3000"
    )
    assert status_message("412 clients") == b"STATUS=412 clients"
    assert reloading_message(81234567890) == b"RELOADING=1\nMONOTONIC_USEC=81234567890"
    assert reloading_message(5, "reloading /etc/ratehub/ratehubd.toml") == (
        b"RELOADING=1\nMONOTONIC_USEC=5\nSTATUS=reloading /etc/ratehub/ratehubd.toml"
    )
    assert stopping_message() == b"STOPPING=1"
    assert stopping_message("draining 3 clients") == b"STOPPING=1\nSTATUS=draining 3 clients"
    assert message(("A", "b"), ("C", 2)) == b"A=b\nC=2"


def test_status_is_one_line_so_it_cannot_inject_assignments() -> None:
    assert status_message("bad file\nREADY=1\r\n  line 3") == b"STATUS=bad file READY=1 line 3"
    assert status_message("prix: 1,35 €") == "STATUS=prix: 1,35 €".encode()
    cut = one_line("x" * 5000)
    assert len(cut) == 1024 and cut.endswith("…")
    assert one_line("short", limit=5) == "short"


# -- environment ----------------------------------------------------------------------------


def test_notify_address_path_abstract_and_unset() -> None:
    assert notify_address(None) is None
    assert notify_address("") is None
    assert notify_address("/run/systemd/notify") == "/run/systemd/notify"
    assert notify_address("@userdb-notify") == "\0userdb-notify"


@pytest.mark.parametrize("value", ["relative/notify", "@", "vsock:2:1234"])
def test_notify_address_rejects_what_it_cannot_reach(value: str) -> None:
    with pytest.raises(ValueError, match="neither an absolute path nor an @abstract"):
        notify_address(value)


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    env = {"WATCHDOG_USEC": "30000000"}
    assert watchdog_interval(env, pid=1234) == 15.0
    assert watchdog_interval({**env, "WATCHDOG_PID": "1234"}, pid=1234) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "1"}, pid=1) == 0.0000005
    assert watchdog_interval({}, pid=1234) is None
    assert watchdog_interval({"WATCHDOG_USEC": ""}, pid=1234) is None


def test_watchdog_meant_for_another_process_is_not_ours() -> None:
    env = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "999"}
    assert watchdog_interval(env, pid=1234) is None
    assert parse_watchdog_usec("30000000", "999", 1234) is None


def test_watchdog_interval_defaults_to_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 1.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval() is None


@pytest.mark.parametrize(
    ("usec", "pid", "problem"),
    [
        ("0", None, "WATCHDOG_USEC='0' is not a positive number"),
        ("-5", None, "WATCHDOG_USEC='-5' is not a positive number"),
        ("30s", None, "WATCHDOG_USEC='30s' is not a positive number"),
        ("30000000", "self", "WATCHDOG_PID='self' is not a process id"),
    ],
)
def test_malformed_watchdog_settings_are_reported(
    usec: str, pid: str | None, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        parse_watchdog_usec(usec, pid, 1234)
    env = {"WATCHDOG_USEC": usec} | ({"WATCHDOG_PID": pid} if pid else {})
    with caplog.at_level(logging.WARNING, "ratehub.systemd"):
        assert watchdog_interval(env, pid=1234) is None
    assert problem in caplog.text and "watchdog pings disabled" in caplog.text


# -- the notifier ---------------------------------------------------------------------------


def test_notifier_sends_every_message(notify_socket: NotifySocket) -> None:
    n = Notifier.from_env({"NOTIFY_SOCKET": notify_socket.env})
    assert n.enabled
    assert n.ready("listening on 127.0.0.1:3000")
    assert n.status("412 clients, 5 pairs")
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.reloading()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.ready()
    assert n.watchdog()
    assert n.stopping("draining")
    n.close()

    got = [notify_socket.recv()[0] for _ in range(6)]
    assert got[0] == b"READY=1\nSTATUS=listening on 127.0.0.1:3000"
    assert got[1] == b"STATUS=412 clients, 5 pairs"
    first, usec = got[2].split(b"\n")
    assert first == b"RELOADING=1" and usec.startswith(b"MONOTONIC_USEC=")
    assert before <= int(usec.removeprefix(b"MONOTONIC_USEC=")) <= after
    assert got[3:] == [b"READY=1", b"WATCHDOG=1", b"STOPPING=1\nSTATUS=draining"]
    assert notify_socket.pending() == []


def test_reloading_uses_the_injected_monotonic_clock(notify_socket: NotifySocket) -> None:
    with Notifier(notify_address(notify_socket.env), monotonic_ns=lambda: 81_234_567_890_123) as n:
        assert n.reloading("reloading")
    assert notify_socket.recv()[0] == (b"RELOADING=1\nMONOTONIC_USEC=81234567890\nSTATUS=reloading")


def test_notifier_reaches_an_abstract_socket(abstract_socket: NotifySocket) -> None:
    assert abstract_socket.env.startswith("@ratehub-test-")
    with Notifier.from_env({"NOTIFY_SOCKET": abstract_socket.env}) as n:
        assert n.ready("up") and n.watchdog() and n.stopping()
    got = [abstract_socket.recv()[0] for _ in range(3)]
    assert got == [b"READY=1\nSTATUS=up", b"WATCHDOG=1", b"STOPPING=1"]


def test_notifier_is_silent_without_notify_socket(
    notify_socket: NotifySocket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.env)
    quiet = Notifier.from_env({})
    assert not quiet.enabled
    results = [
        quiet.ready("x"),
        quiet.status("x"),
        quiet.reloading(),
        quiet.stopping(),
        quiet.watchdog(),
    ]
    assert results == [False] * 5
    assert notify_socket.pending() == []
    # The same calls reach the socket named by the process environment.
    with Notifier.from_env() as loud:
        assert loud.enabled and loud.watchdog()
    assert notify_socket.recv()[0] == b"WATCHDOG=1"


def test_unusable_notify_socket_disables_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "ratehub.systemd"):
        n = Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:9999"})
    assert not n.enabled and not n.ready()
    assert "NOTIFY_SOCKET='vsock:2:9999'" in caplog.text
    assert "a Type=notify unit will time out" in caplog.text


def test_send_failure_is_logged_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "later.sock"
    n = Notifier.from_env({"NOTIFY_SOCKET": str(path)})
    with caplog.at_level(logging.WARNING, "ratehub.systemd"):
        assert not n.ready()
        assert not n.watchdog()
    failures = [r for r in caplog.records if "cannot notify systemd" in r.getMessage()]
    assert len(failures) == 1 and str(path) in failures[0].getMessage()
    ns = NotifySocket(str(path))
    try:
        assert n.watchdog()
        assert ns.recv()[0] == b"WATCHDOG=1"
    finally:
        ns.close()
        n.close()


# -- the watchdog loop ----------------------------------------------------------------------


async def test_watchdog_loop_pings_from_the_event_loop(
    notify_socket: NotifySocket, caplog: pytest.LogCaptureFixture
) -> None:
    """Pings flow while the loop runs, stop while a callback blocks it, and resume after.

    The kernel stamps each datagram when it is sent, so "no ping during the block" is exact:
    the only thread that could send one is the loop's own, and it is asleep."""
    interval, block = 0.02, 0.4
    loop = asyncio.get_running_loop()
    # The kernel queues only ~10 datagrams (net.unix.max_dgram_qlen): read them as they come.
    pings: list[tuple[bytes, float]] = []
    loop.add_reader(notify_socket.sock, lambda: pings.extend(notify_socket.pending()))
    n = Notifier.from_env({"NOTIFY_SOCKET": notify_socket.env})
    task = asyncio.create_task(watchdog_loop(n, interval))
    window: list[float] = []

    def hang() -> None:
        window.append(time.time())
        time.sleep(block)
        window.append(time.time())

    try:
        await asyncio.sleep(10 * interval)
        loop.call_soon(hang)
        await asyncio.sleep(0)
        await asyncio.sleep(10 * interval)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        n.close()
        loop.remove_reader(notify_socket.sock)
    pings += notify_socket.pending()
    assert {data for data, _ in pings} == {b"WATCHDOG=1"}
    sent = [t for _, t in pings]
    start, end = window
    assert any(t < start for t in sent), "no ping before the loop was blocked"
    assert any(t > end for t in sent), "pings did not resume after the loop was unblocked"
    assert not [t for t in sent if start <= t <= end], "a ping left while the loop was blocked"
    gap = min(t for t in sent if t > end) - max(t for t in sent if t < start)
    assert gap >= block
    assert not caplog.records, "a ping could not be delivered"


async def test_watchdog_loop_is_silent_without_notify_socket() -> None:
    task = asyncio.create_task(watchdog_loop(Notifier(None), 0.001))
    await asyncio.sleep(0.01)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


# -- the unit file --------------------------------------------------------------------------


def _unit_setting(name: str) -> list[str]:
    return [
        line.split("=", 1)[1]
        for line in UNIT.read_text().splitlines()
        if line.startswith(name + "=")
    ]


def _verify(unit_text: str, directory: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` on ``unit_text`` with ExecStart pointed at this venv's
    ``ratehubd``: verify insists the binary exists, and /opt/ratehub/bin/ratehubd (where
    deploy/install.sh puts it) does not exist on a development machine."""
    exe = Path(sys.executable).parent / "ratehubd"
    assert exe.exists(), f"{exe} missing: pip install -e . in the venv first"
    lines = [
        f"ExecStart={exe}" if line.startswith("ExecStart=") else line
        for line in unit_text.splitlines()
    ]
    path = directory / "ratehubd.service"
    path.write_text("\n".join(lines) + "\n")
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None
    return subprocess.run(
        [analyze, "verify", "--man=no", str(path)],
        capture_output=True,
        text=True,
        timeout=timeout(60),
    )


needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None,
    reason="systemd-analyze is not installed (it ships with systemd)",
)


@needs_analyze
def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    result = _verify(UNIT.read_text(), tmp_path)
    assert result.returncode == 0, result.stderr
    # verify exits 0 on unknown keys and bad values; it only complains on stderr.
    assert result.stderr == "" and result.stdout == ""


@needs_analyze
def test_verify_catches_a_misspelt_setting(tmp_path: Path) -> None:
    text = UNIT.read_text().replace("ProtectSystem=strict", "ProtectSysten=strict")
    result = _verify(text, tmp_path)
    assert "Unknown key 'ProtectSysten'" in result.stderr


@needs_analyze
def test_unit_hardening_exposure_stays_low(tmp_path: Path) -> None:
    """``systemd-analyze security`` rates exposure from 0 (locked down) to 10 (unprotected);
    this unit scores 1.5. --threshold (in tenths) makes it exit non-zero above 2.0."""
    path = tmp_path / "ratehubd.service"
    path.write_text(UNIT.read_text())
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--threshold=20", str(path)],
        capture_output=True,
        text=True,
        timeout=timeout(60),
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("systemd-analyze security --offline needs systemd >= 250")
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_settings_the_daemon_relies_on() -> None:
    assert _unit_setting("Type") == ["notify"]
    assert _unit_setting("NotifyAccess") == ["main"]
    assert _unit_setting("WatchdogSec") == ["30"]
    assert _unit_setting("ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert _unit_setting("KillMode") == ["mixed"]
    assert "RATEHUB_STATE_DIR=%S/ratehub" in _unit_setting("Environment")
    assert _unit_setting("StateDirectory") == ["ratehub"]
    assert _unit_setting("EnvironmentFile") == ["-/etc/ratehub/ratehubd.env"]
    assert int(_unit_setting("LimitNOFILE")[0]) >= 16384


def test_stop_timeout_outlasts_the_drain_timeout() -> None:
    from ratehubd.config import Config

    drain = Config().server.drain_timeout_s
    assert int(_unit_setting("TimeoutStopSec")[0]) >= drain + 3

"""systemd service notifications (``sd_notify``) and the watchdog, in plain Python.

Under ``Type=notify`` systemd passes ``NOTIFY_SOCKET`` (a filesystem path, or an abstract
socket name written with a leading ``@``) and, with ``WatchdogSec=``, ``WATCHDOG_USEC`` and
``WATCHDOG_PID``. The daemon reports its life cycle by sending one datagram per state change,
newline-separated ``KEY=value`` assignments::

    READY=1\\nSTATUS=listening on 127.0.0.1:3000     start-up done (and after each reload)
    STATUS=412 clients, 5 pairs                        free-form line for `systemctl status`
    RELOADING=1\\nMONOTONIC_USEC=81234567890             SIGHUP received; READY=1 follows
    STOPPING=1                                         SIGTERM received, draining
    WATCHDOG=1                                         still alive; at half of WATCHDOG_USEC

The message builders and environment parsing below are pure; :class:`Notifier` is the only
part that touches a socket. Without ``NOTIFY_SOCKET`` every :class:`Notifier` method returns
at once without a system call, so the runtime calls them unconditionally.

:func:`watchdog_loop` pings from the event loop itself, not from a thread: if the loop is
stuck (a blocking call, a CPU-bound bug) the pings stop and systemd restarts the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger("ratehub.systemd")

MAX_STATUS = 1024
"""A status longer than this is cut (with an ellipsis): it is one line in `systemctl status`."""

WATCHDOG = b"WATCHDOG=1"


# -- pure: messages ---------------------------------------------------------------------------


def one_line(text: str, limit: int = MAX_STATUS) -> str:
    """``text`` as a single line (a newline would start a new assignment), at most ``limit``."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def message(*assignments: tuple[str, str | int]) -> bytes:
    """Encode ``(KEY, value)`` pairs as one notification datagram."""
    return "\n".join(f"{key}={value}" for key, value in assignments).encode()


def _with_status(first: tuple[str, str | int], status: str | None) -> bytes:
    if status is None:
        return message(first)
    return message(first, ("STATUS", one_line(status)))


def ready_message(status: str | None = None) -> bytes:
    return _with_status(("READY", 1), status)


def status_message(text: str) -> bytes:
    return message(("STATUS", one_line(text)))


def reloading_message(monotonic_usec: int, status: str | None = None) -> bytes:
    """``RELOADING=1`` with the ``CLOCK_MONOTONIC`` time in µs, which systemd >= 253 needs to
    match this reload to ``systemctl reload`` (older versions ignore the field)."""
    msg = message(("RELOADING", 1), ("MONOTONIC_USEC", monotonic_usec))
    return msg if status is None else msg + b"\n" + message(("STATUS", one_line(status)))


def stopping_message(status: str | None = None) -> bytes:
    return _with_status(("STOPPING", 1), status)


# -- pure: environment ------------------------------------------------------------------------


def notify_address(value: str | None) -> str | None:
    """The ``AF_UNIX`` address for ``NOTIFY_SOCKET``: ``None`` when unset or empty, an
    abstract name (leading NUL) for ``@name``, the path itself for ``/path``.
    Raises ValueError for anything else (systemd's ``vsock:`` addresses included)."""
    if not value:
        return None
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    raise ValueError(
        f"NOTIFY_SOCKET={value!r} is neither an absolute path nor an @abstract socket name"
    )


def parse_watchdog_usec(usec: str | None, watchdog_pid: str | None, pid: int) -> int | None:
    """The watchdog timeout in µs meant for process ``pid``, or None when there is none.

    ``WATCHDOG_PID``, when set, names the process the watchdog is meant for; any other
    process (a child that inherited the environment) gets None. Raises ValueError on values
    systemd never sends, saying which."""
    if not usec:
        return None
    if watchdog_pid:
        if not watchdog_pid.isdigit():
            raise ValueError(f"WATCHDOG_PID={watchdog_pid!r} is not a process id")
        if int(watchdog_pid) != pid:
            return None
    if not usec.isdigit() or int(usec) == 0:
        raise ValueError(f"WATCHDOG_USEC={usec!r} is not a positive number of microseconds")
    return int(usec)


def watchdog_interval(env: Mapping[str, str] | None = None, pid: int | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``WATCHDOG_USEC``, as systemd advises),
    or None when no watchdog is configured for this process. A malformed value is logged
    and treated as no watchdog."""
    env = os.environ if env is None else env
    pid = os.getpid() if pid is None else pid
    try:
        usec = parse_watchdog_usec(env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID"), pid)
    except ValueError as exc:
        log.warning("%s; watchdog pings disabled (check WatchdogSec= in the unit)", exc)
        return None
    return None if usec is None else usec / 2_000_000


# -- the socket -------------------------------------------------------------------------------


def _monotonic_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


class Notifier:
    """Sends notifications to the service manager; does nothing without ``NOTIFY_SOCKET``.

    Every method returns True when the datagram went out. Sends never block and never
    raise: a manager that went away or a full queue is logged (once until a send succeeds
    again) and the daemon carries on."""

    def __init__(
        self, address: str | None, *, monotonic_ns: Callable[[], int] = _monotonic_ns
    ) -> None:
        self.address = address
        self._monotonic_ns = monotonic_ns
        self._sock: socket.socket | None = None
        self._failing = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        """A Notifier for ``NOTIFY_SOCKET``; a disabled one (with a warning) if it is unusable."""
        value = (os.environ if env is None else env).get("NOTIFY_SOCKET")
        try:
            return cls(notify_address(value))
        except ValueError as exc:
            log.warning(
                "%s; systemd notifications disabled (a Type=notify unit will time out)", exc
            )
            return cls(None)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, datagram: bytes) -> bool:
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto(datagram, self.address)
        except OSError as exc:
            if not self._failing:
                log.warning("cannot notify systemd at %s: %s", self._shown_address, exc)
            self._failing = True
            return False
        self._failing = False
        return True

    @property
    def _shown_address(self) -> str:
        return (
            "@" + self.address[1:]
            if self.address and self.address[0] == "\0"
            else str(self.address)
        )

    def ready(self, status: str | None = None) -> bool:
        return self.send(ready_message(status))

    def status(self, text: str) -> bool:
        return self.send(status_message(text))

    def reloading(self, status: str | None = None) -> bool:
        return self.enabled and self.send(reloading_message(self._monotonic_ns() // 1000, status))

    def stopping(self, status: str | None = None) -> bool:
        return self.send(stopping_message(status))

    def watchdog(self) -> bool:
        return self.send(WATCHDOG)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def watchdog_loop(notifier: Notifier, interval: float) -> None:
    """Send ``WATCHDOG=1`` every ``interval`` seconds until cancelled.

    Runs as a task on the daemon's event loop, so the pings stop when the loop is blocked;
    that is the point. Start it with the interval from :func:`watchdog_interval`."""
    while True:
        notifier.watchdog()
        await asyncio.sleep(interval)

"""Shared fixtures: a fake clock, in-process daemons on port 0, and a daemon subprocess.

Durations scale with ``RATEHUB_TEST_SLOWDOWN`` (default 1) so a slow machine can
stretch every timeout at once; assertions on time are lower bounds only.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ratehubd.config import Config, load_config
from ratehubd.runtime import Runtime

# pg_url, redis_url, channel: real PostgreSQL and Redis (skip, or fail under CI=true).
pytest_plugins = ["tests.services"]

SLOWDOWN = float(os.environ.get("RATEHUB_TEST_SLOWDOWN", "1"))
ADMIN_KEY = "test-admin-secret"

# What a developer's shell or a running ratehubd may have set that would change what a test
# sees: ratectl's and ratehubd's settings and the guide's variables. RATEHUB_TEST_* are the
# harness's own knobs (slowdown, service URLs) and stay.
LEAKY_NAMES = ("API_SECRET_KEY", "API_HOST", "WEBSOCKET_PORT", "CORS_ORIGINS", "DEBUG_WEBSOCKET")
LEAKY_PREFIXES = ("RATECTL_", "RATEHUB_")
XDG_HOMES = ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME")


def is_leaky(name: str) -> bool:
    if name.startswith("RATEHUB_TEST_"):
        return False
    return name in LEAKY_NAMES or name.startswith(LEAKY_PREFIXES)


def clean_environment(home: Path, mp: pytest.MonkeyPatch) -> None:
    """Point HOME and the XDG homes at ``home`` and drop every leaky variable. Set through
    ``os.environ``, so subprocesses (ratehubd, ratectl) inherit it. Package caches stay
    where they were, so installing into a test's venv does not download again."""
    real_home = Path.home()
    for name in list(os.environ):
        if is_leaky(name):
            mp.delenv(name)
    mp.setenv("PIP_CACHE_DIR", os.environ.get("PIP_CACHE_DIR", str(real_home / ".cache" / "pip")))
    mp.setenv("npm_config_cache", os.environ.get("npm_config_cache", str(real_home / ".npm")))
    mp.setenv("HOME", str(home))
    for name in XDG_HOMES:
        mp.setenv(name, str(home / name.removeprefix("XDG_").removesuffix("_HOME").lower()))


@pytest.fixture(scope="session", autouse=True)
def scratch_session_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The README's command 1 leaves an admin key under ~/.local/state/ratehub and a shell may
    export RATECTL_URL or API_SECRET_KEY: neither may change a test's result. Session-wide,
    so module fixtures that start a daemon see a clean environment too."""
    home = tmp_path_factory.mktemp("session-home")
    with pytest.MonkeyPatch.context() as mp:
        clean_environment(home, mp)
        yield home


@pytest.fixture(autouse=True)
def scratch_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets a home of its own (tests that need a variable set it themselves)."""
    home = tmp_path_factory.mktemp("home")
    clean_environment(home, monkeypatch)
    return home


def timeout(seconds: float) -> float:
    """A generous timeout, stretched by RATEHUB_TEST_SLOWDOWN."""
    return seconds * SLOWDOWN


class FakeClock:
    """Wall-clock time that only moves when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def time(self) -> float:
        return self._now.timestamp()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Config]:
    """A Config on port 0 (API and hub), state in tmp_path, admin key ADMIN_KEY.
    Keyword arguments are config sections: ``make_config(hub={"queue_frames": 8})``."""

    def make(env: dict[str, str] | None = None, **sections: dict[str, Any]) -> Config:
        flags: dict[str, dict[str, Any]] = {
            "server": {"port": 0, "hub_port": 0, "state_dir": str(tmp_path / "state")},
            "feed": {"seed": 7},
        }
        for name, values in sections.items():
            flags.setdefault(name, {}).update(values)
        base_env = {"API_SECRET_KEY": ADMIN_KEY}
        base_env.update(env or {})
        return load_config(None, env=base_env, flags=flags)

    return make


@pytest.fixture
async def runtime(make_config: Callable[..., Config]) -> AsyncIterator[Any]:
    from ratehubd.runtime import Runtime

    rt = Runtime(make_config())
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


class CountedDelays:
    """Reconnect delays (``Follow.delays``, ``TuiOptions.delays``) that count the attempts."""

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.calls = 0

    def __call__(self) -> Iterator[float]:
        while True:
            self.calls += 1
            yield self.delay


@dataclass
class DaemonProcess:
    proc: subprocess.Popen[str]
    url: str
    ws_url: str
    hub_url: str | None
    key: str
    state_dir: Path
    banner: str

    def stop(self, sig: int = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def finish(self, sig: int = 15) -> tuple[int, str]:
        """Stop the daemon and return its exit code and the rest of its output."""
        rc = self.stop(sig)
        out = ""
        if self.proc.stdout is not None:
            out = self.proc.stdout.read()
            self.proc.stdout.close()
        return rc, out


def start_daemon(
    state_dir: Path, env: dict[str, str] | None = None, args: list[str] | None = None
) -> DaemonProcess:
    """Start ``ratehubd`` as a subprocess on free ports and wait until it is ready."""
    full_env = {**os.environ, "API_SECRET_KEY": ADMIN_KEY, "WEBSOCKET_PORT": "0", **(env or {})}
    cmd = [sys.executable, "-m", "ratehubd.cli", "--port", "0", "--state-dir", str(state_dir)]
    proc = subprocess.Popen(
        cmd + (args or []),
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + timeout(20)
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C stops" in line:
            break
    banner = "".join(lines)
    m = re.search(r"API\s+http://([\d.]+):(\d+)", banner)
    if m is None:
        proc.kill()
        raise RuntimeError(f"ratehubd did not become ready within {timeout(20)} s:\n{banner}")
    hub = re.search(r"hub port\s+(ws://\S+)", banner)
    url = f"http://{m.group(1)}:{m.group(2)}"
    return DaemonProcess(
        proc=proc,
        url=url,
        ws_url=url.replace("http://", "ws://") + "/api/rates/websocket",
        hub_url=hub.group(1) if hub else None,
        key=full_env["API_SECRET_KEY"],
        state_dir=state_dir,
        banner=banner,
    )


@pytest.fixture
def daemon_proc(tmp_path: Path) -> Iterator[DaemonProcess]:
    d = start_daemon(tmp_path / "state")
    try:
        yield d
    finally:
        d.stop()
        if d.proc.stdout:
            d.proc.stdout.close()


# A fleet for real: nodes on the shared PostgreSQL and Redis (tests/test_fleet*.py).
Fleet = Callable[..., Any]


@pytest.fixture
async def fleet(
    make_config: Callable[..., Config], tmp_path: Path, pg_url: str, redis_url: str, channel: str
) -> AsyncIterator[Fleet]:
    """``await fleet("a", **sections)`` starts a node on the shared database and Redis
    (``env=`` for environment variables)."""
    nodes: list[Runtime] = []

    async def start(
        name: str, env: dict[str, str] | None = None, **sections: dict[str, Any]
    ) -> Runtime:
        backplane = {"url": redis_url, "channel": channel, "node_id": name}
        backplane.update(sections.pop("backplane", {}))
        store = {"url": pg_url, **sections.pop("store", {})}
        cfg = make_config(
            env,
            server={"state_dir": str(tmp_path / name)},
            store=store,
            backplane=backplane,
            **sections,
        )
        rt = Runtime(cfg)
        await rt.start()
        nodes.append(rt)
        return rt

    try:
        yield start
    finally:
        for rt in nodes:
            await rt.stop()

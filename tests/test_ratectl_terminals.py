"""``ratectl terminals --store S``: a store's screens and what each confirmed (``ack``),
against a real ``ratehubd`` and real WebSocket terminals: one that confirms every table,
one that confirmed once and then froze, one of the guide's clients that never acks."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.conftest import ADMIN_KEY, DaemonProcess, start_daemon, timeout
from tests.ratectl_support import ctl, env, ok  # noqa: F401  (env: fixture)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("terminals")
    config = root / "ratehub.toml"
    # A tick a second and a short confirmation timeout: a frozen terminal is stale soon
    # after the next tick, and a working one is current between its ack and the next.
    config.write_text(
        "[hub]\nconfirm_timeout_ms = 300\n[feed]\nupdate_frequency_ms = 1000\ncrypto_speedup = 1\n"
    )
    d = start_daemon(root / "state", args=["--config", str(config)])
    try:
        yield d
    finally:
        d.finish()


def terminal(daemon: DaemonProcess, store: str) -> ClientConnection:
    return connect(f"{daemon.ws_url}?token={ADMIN_KEY}&clientType=store_os&storeId={store}")


def rate_frame(ws: ClientConnection) -> dict[str, Any]:
    """The next rate frame's payload, in either dialect."""
    while True:
        m = json.loads(ws.recv(timeout=timeout(5)))
        inner = m["data"] if m["type"] == "data" else m
        if inner.get("type") == "rate_update" and "checksum" in inner.get("data", inner):
            return {**inner.get("data", inner), "seq": m.get("seq")}


def ack(ws: ClientConnection, frame: dict[str, Any]) -> None:
    ws.send(json.dumps({"type": "ack", "data": {"checksum": frame["checksum"]}}))


def ack_newest(ws: ClientConnection) -> None:
    """What a working screen does: apply every frame, confirm the newest."""
    frame = rate_frame(ws)
    while True:
        try:
            frame = {**frame, **rate_frame_now(ws)}
        except TimeoutError:
            break
    ack(ws, frame)


def rate_frame_now(ws: ClientConnection) -> dict[str, Any]:
    m = json.loads(ws.recv(timeout=0.02))
    inner = m["data"] if m["type"] == "data" else m
    data = inner.get("data", inner)
    return {"checksum": data["checksum"]} if "checksum" in data else {}


def states(store: str) -> list[str]:
    data = json.loads(ok("terminals", "--store", store, "-o", "json").stdout)
    return [t["state"] for t in data]


def test_a_frozen_terminal_is_listed_stale_first_and_fails_the_check(
    daemon: DaemonProcess,
) -> None:
    with (
        terminal(daemon, "t1") as live,
        terminal(daemon, "t1") as frozen,
        terminal(daemon, "t1"),
    ):
        first = rate_frame(frozen)
        ack(frozen, first)  # confirms once, then shows that table forever
        deadline = time.monotonic() + timeout(10)
        while states("t1") != ["stale", "current", "unconfirmed"]:
            assert time.monotonic() < deadline, states("t1")
            ack_newest(live)
        ack_newest(live)
        stale, current, never = json.loads(ok("terminals", "--store", "t1", "-o", "json").stdout)
        assert stale["current"] is False and stale["staleSinceMs"] > 0
        assert stale["ackChecksum"] == first["checksum"] and stale["acks"] == 1
        assert stale["keyName"] and stale["remoteAddr"].startswith("127.0.0.1:")
        assert never["current"] is None and never["ackChecksum"] is None
        table = ok("terminals", "--store", "t1").stdout.splitlines()
        assert table[0].split()[:3] == ["STATE", "SESSION", "CLIENT"]
        assert [line.split()[0] for line in table[1:]] == ["stale", "current", "unconfirmed"]
        assert "EXPECTED" in ok("terminals", "--store", "t1", "-o", "wide").stdout

        [row] = [r for r in json.loads(ok("stores", "-o", "json").stdout) if r["storeId"] == "t1"]
        assert row == {
            "storeId": "t1",
            "terminals": 3,
            "confirming": 2,
            "current": 1,
            "stale": 1,
            "unconfirmed": 1,
        }
        assert ok("stores").stdout.splitlines()[1].split()[0] == "t1"  # stale stores first
        failed = ctl("stores", "--fail-on-stale", "-o", "json")
        assert failed.exit_code == 1
        assert "stale screens in 1 store(s): t1" in failed.output


def test_no_stale_terminal_passes_the_check_and_an_empty_store_lists_nothing(
    daemon: DaemonProcess,
) -> None:
    with terminal(daemon, "t2") as live:
        ack_newest(live)
        assert ctl("stores", "--fail-on-stale").exit_code == 0
    assert states("nobody-here") == []
    missing = ctl("terminals")
    assert missing.exit_code == 2 and "--store" in missing.output

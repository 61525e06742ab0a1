"""The daemon's lifecycle as an operator sees it, on a real ``ratehubd`` process:
reload on SIGHUP (good and broken files), graceful drain on SIGTERM without losing an
acknowledged write, and exit codes."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import ADMIN_KEY, start_daemon, timeout

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def usd(url: str) -> dict[str, float]:
    rates = httpx.get(url + "/api/rates/get", headers=AUTH, timeout=timeout(5)).json()["data"]
    return next(r for r in rates if r["currencyPair"] == "USD/CAD")


def wait_for(pred: object, within: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout(within)
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_sighup_swaps_spreads_and_keeps_running_on_a_broken_file(tmp_path: Path) -> None:
    cfg = tmp_path / "ratehub.toml"
    cfg.write_text('[engine]\ndefault_spread = "0.02"\n')
    d = start_daemon(tmp_path / "state", args=["--config", str(cfg)])
    try:
        assert abs(usd(d.url)["spread"] - 0.02) < 0.001
        cfg.write_text('[engine]\ndefault_spread = "0.04"\n')
        d.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: abs(usd(d.url)["spread"] - 0.04) < 0.001), "spread not reloaded"
        cfg.write_text('[engine]\ndefault_spread = "two percent"\n[hub]\nbogus = 1\n')
        d.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert d.proc.poll() is None, "a broken file must not stop the daemon"
        assert abs(usd(d.url)["spread"] - 0.04) < 0.001  # the running config stays
    finally:
        _, out = d.finish()
    assert "reload refused" in out
    assert "engine.default_spread" in out and "hub.bogus" in out


def test_sigterm_during_a_burst_loses_no_acknowledged_write(tmp_path: Path) -> None:
    state = tmp_path / "state"
    d = start_daemon(state)
    acked: list[str] = []
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(base_url=d.url, headers=AUTH, timeout=timeout(5)) as c:
            i = 0
            while not stop.is_set():
                store = f"w{worker}-{i}"
                body = {
                    "currencyPair": "USD/CAD",
                    "buyRate": 1.37,
                    "sellRate": 1.33,
                    "storeId": store,
                }
                try:
                    r = c.post("/api/rates/set", json=body)
                except httpx.HTTPError:
                    return  # the daemon went away: this write was not acknowledged
                if r.status_code == 200:
                    acked.append(store)
                i += 1

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    assert wait_for(lambda: len(acked) >= 50, within=20)
    rc, out = d.finish(signal.SIGTERM)
    stop.set()
    for t in threads:
        t.join()
    assert rc == 0, "a graceful stop exits 0"
    assert "draining" in out
    d2 = start_daemon(state)
    try:
        got = httpx.get(d2.url + "/api/rates/overrides", headers=AUTH, timeout=timeout(5)).json()
        stores = {o["storeId"] for o in got["data"]}
        missing = [s for s in acked if s not in stores]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
    finally:
        d2.finish()


def test_unusable_port_and_bad_config_exit_nonzero(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = -5\n")
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "ratehubd.cli",
            "--config",
            str(bad),
            "--state-dir",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        timeout=timeout(30),
    )
    assert res.returncode == 2
    assert "server.port" in res.stderr and "Traceback" not in res.stderr

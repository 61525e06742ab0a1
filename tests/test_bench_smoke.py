"""Smoke run of the hub fan-out benchmark (bench/hub_fanout.py), so the harness cannot rot.

Twenty clients for about a second against each server, and the 200 Hz check with five.
It checks that every phase ran and reported its figures, and the correctness results
(every client ends holding its store's final state, checksums agree); it asserts no
performance figure.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import timeout

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "bench" / "hub"
N = 20


def loadgen_missing() -> str | None:
    """Why the Node load generator cannot run, or None. Installs ``ws`` from the npm cache
    (never the network) when it is missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "Node 20+ and npm are needed for bench/hub/loadgen.mjs"
    if not (HUB / "node_modules" / "ws").is_dir():
        cmd = ["npm", "ci", "--offline", "--no-audit", "--no-fund", "--prefix", str(HUB)]
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            return "the load generator needs its dependency: npm ci --prefix bench/hub"
    return None


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    why = loadgen_missing()
    if why:
        pytest.skip(why)
    out = tmp_path_factory.mktemp("results")
    cmd = [sys.executable, str(ROOT / "bench" / "hub_fanout.py"), "--clients", str(N)]
    cmd += ["--seconds", "1", "--warmup", "0.3", "--hz200-clients", "5", "--hz200-seconds", "1"]
    cmd += ["--results-dir", str(out), "--retries", "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout(120), cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| server | N | delivered msg/s" in done.stdout
    (path,) = out.glob("hub_fanout-*.json")
    assert f"JSON: {path}" in done.stdout
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def test_every_server_is_measured(report: dict[str, Any]) -> None:
    assert [r["server"] for r in report["results"]] == ["plain", "ratehub-hub", "ratehub-api"]
    for r in report["results"]:
        w = r["window"]
        assert r["clients"] == N and w["clients"] == N and w["open"] == N
        assert w["frames"] > 0 and r["deliveredPerSecond"] > 0
        assert r["cpuUsPerMessage"] is not None and r["frameBytes"] > 1000
        assert w["sendToClientMs"]["samples"] == w["frames"]
        assert w["tickToClientMs"]["p99"] is not None
        assert isinstance(r["idleKiBPerConn"], float)
        assert isinstance(w["lost"], int)


def test_clients_end_in_the_final_state(report: dict[str, Any]) -> None:
    for r in report["results"]:
        assert r["final"]["finalOk"] == N, (r["server"], r["final"])
        assert r["window"]["verifiedFrames"] > 0
        assert r["window"]["checksumMismatches"] == 0, r["server"]


def test_ratehub_runs_report_the_hub_counters(report: dict[str, Any]) -> None:
    for r in report["results"][1:]:
        assert r["hub"]["connections"] == N
        assert r["hub"]["ticksPerSecondPerPair"] > 0
        assert r["final"]["closeCodes"] == {"1012": N}  # the drain's "come back" close


def test_200hz_check_runs_on_both_listeners(report: dict[str, Any]) -> None:
    assert [hz["server"] for hz in report["hz200"]] == [
        "ratehub-hub @200Hz",
        "ratehub-api @200Hz",
    ]
    for hz in report["hz200"]:
        assert hz["clients"] == 5
        assert hz["window"]["maxFramesInAnySecond"] > 0
        assert hz["final"]["finalOk"] == 5
    assert any(line.startswith(("met", "MISSED")) for line in report["verdicts"])


def test_ack_mode_acknowledges_every_frame_without_refusals(tmp_path: Path) -> None:
    """``--servers ratehub-hub-ack,plain-ack``: every client acks every frame it gets; the
    hub accepts every ack and counts each client as confirming."""
    why = loadgen_missing()
    if why:
        pytest.skip(why)
    cmd = [sys.executable, str(ROOT / "bench" / "hub_fanout.py"), "--clients", str(N)]
    cmd += ["--seconds", "1", "--warmup", "0.3", "--hz200-clients", "0", "--retries", "0"]
    cmd += ["--servers", "ratehub-hub,ratehub-hub-ack,plain,plain-ack"]
    cmd += ["--results-dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout(120), cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    (path,) = tmp_path.glob("hub_fanout-*.json")
    data: dict[str, Any] = json.loads(path.read_text())
    runs = {r["server"]: r for r in data["results"]}
    hub, plain = runs["ratehub-hub-ack"], runs["plain-ack"]
    for r in (hub, plain):
        w = r["window"]
        assert w["acksSent"] >= w["frames"] > 0, r["server"]
        assert w["ackErrors"] == 0, w["firstAckError"]
        assert r["final"]["finalOk"] == N
    terminals = hub["hub"]["terminals"]
    assert terminals["confirming"] == N and terminals["stale"] == 0
    assert "acksSent" not in runs["ratehub-hub"]["window"]
    assert any("ratehub-hub-ack N=20" in v and "without acks" in v for v in data["verdicts"])

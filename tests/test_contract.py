"""The HTTP contract: ``/openapi.json`` describes what the API does, and Schemathesis, with
all its checks (the stateful phase too), finds nothing against a live ratehubd, with an
admin key, a store key and a read-only key. Bounded in examples and time.

Operations whose rules a schema cannot state (a pair the daemon prices, buy above sell...)
may answer a schema-valid request with a documented 400: ``tests/contract/schemathesis.toml``
lists them and says why.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, DaemonProcess, start_daemon, timeout

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "contract" / "schemathesis.toml"
# Generous per-key request limits: the run must test the API, not its 429s.
DAEMON_CONFIG = "[security]\nrequests_per_second = 10000\nburst = 10000\n"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DaemonProcess, list[str]]]:
    state = tmp_path_factory.mktemp("contract")
    config = state / "ratehub.toml"
    config.write_text(DAEMON_CONFIG)
    d = start_daemon(state / "state", args=["--config", str(config)])
    log: list[str] = []

    def drain() -> None:  # keep its pipe empty, and keep what it says
        assert d.proc.stdout is not None
        for line in d.proc.stdout:
            log.append(line)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        yield d, log
    finally:
        d.proc.terminate()
        d.proc.wait(timeout(10))
        reader.join(timeout(5))
        if d.proc.stdout is not None:
            d.proc.stdout.close()


def new_key(d: DaemonProcess, body: dict[str, Any]) -> str:
    got = httpx.post(
        f"{d.url}/api/keys", json=body, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    )
    assert got.status_code == 201, got.text
    secret: str = got.json()["data"]["secret"]
    return secret


def schemathesis(d: DaemonProcess, key: str, seconds: int) -> subprocess.CompletedProcess[str]:
    """One run, from the state directory's parent: its cache stays out of the source tree."""
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run"]
    cmd += [f"{d.url}/openapi.json", "-H", f"Authorization: Bearer {key}", "--checks", "all"]
    cmd += ["--max-examples", "10", "--max-time", str(seconds), "--seed", "1"]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=timeout(seconds + 120),
        cwd=d.state_dir.parent,
    )


def test_the_document_declares_bodies_errors_and_no_422(
    daemon: tuple[DaemonProcess, list[str]],
) -> None:
    d, _ = daemon
    doc = httpx.get(f"{d.url}/openapi.json").json()
    ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
    for name in ("SetRateRequest", "LockCreateRequest", "KeyCreateRequest", "ErrorEnvelope"):
        assert name in doc["components"]["schemas"]
    set_rate = ops[("POST", "/api/rates/set")]
    assert set_rate["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SetRateRequest"
    }
    assert {"200", "400", "401", "403", "409", "429", "503"} <= set(set_rate["responses"])
    codes = set_rate["responses"]["400"]["content"]["application/json"]["schema"]
    assert {"invalid_request", "unknown_pair", "invalid_rates"} <= set(
        codes["properties"]["code"]["enum"]
    )
    assert all("422" not in op["responses"] for op in ops.values())
    assert ("GET", "/metrics") in ops and ("GET", "/readyz") in ops


def test_405_names_every_method_of_the_path(daemon: tuple[DaemonProcess, list[str]]) -> None:
    d, _ = daemon
    got = httpx.delete(f"{d.url}/api/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert got.status_code == 405 and got.json()["code"] == "http_error"
    assert set(got.headers["Allow"].split(", ")) >= {"GET", "POST"}


@pytest.mark.parametrize("role", ["admin", "store", "read-only"])
def test_schemathesis_finds_nothing(daemon: tuple[DaemonProcess, list[str]], role: str) -> None:
    d, log = daemon
    if role == "admin":
        key = ADMIN_KEY
    else:
        stores = ["s1"] if role == "store" else []
        key = new_key(d, {"name": f"contract {role}", "role": role, "stores": stores})
    done = schemathesis(d, key, 30 if role == "admin" else 15)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Traceback" not in "".join(log), "".join(log)[-4000:]

"""``ratectl validate`` against real daemons: a healthy one passes every check (and the
JUnit XML says so); daemons that misbehave on purpose fail exactly the check that
covers what they break, and the other checks still pass.

Each daemon is an in-process Runtime on port 0 (tests/conftest.py ``make_config``) with
a 500 ms heartbeat, so ``websocket.heartbeat`` is really waited for. The CLI is
synchronous (CliRunner), so it runs in a thread while the daemon serves on this loop.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import threading
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from ratectl.cli import app
from ratectl.validate.context import Options
from ratectl.validate.model import CheckResult
from ratectl.validate.registry import SPECS, select
from ratectl.validate.runner import run
from ratehubd.adapters import http_security
from ratehubd.config import Config
from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY, timeout

runner = CliRunner()
FULL = [s.id for s in SPECS]
SMOKE = [s.id for s in select("smoke")]
HEARTBEAT_MS = 500
SHORT = str(timeout(2))  # --timeout for runs that wait for something that never comes
PASSED = {"pass", "warn"}
Starter = Callable[..., Awaitable[Runtime]]


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)  # conftest's scratch_home cleared the rest
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("RATECTL_TOKEN", ADMIN_KEY)


@pytest.fixture
async def start(make_config: Callable[..., Config]) -> AsyncIterator[Starter]:
    """Start in-process daemons (config sections as keyword arguments); all stopped after."""
    started: list[Runtime] = []

    async def go(**sections: dict[str, Any]) -> Runtime:
        sections.setdefault("hub", {}).setdefault("heartbeat_interval_ms", HEARTBEAT_MS)
        rt = Runtime(make_config(**sections))
        await rt.start()
        started.append(rt)
        return rt

    try:
        yield go
    finally:
        for rt in started:
            await rt.stop()


@pytest.fixture
async def daemon(start: Starter) -> Runtime:
    return await start()


def url(rt: Runtime) -> str:
    return f"http://127.0.0.1:{rt.api_port}"


async def validate(target: str, *args: str, token: str = ADMIN_KEY) -> Result:
    """``ratectl --url target validate *args`` in a thread; no traceback, ever."""
    argv = ["--url", target, "validate", *args]
    result = await asyncio.to_thread(runner.invoke, app, argv, env={"RATECTL_TOKEN": token})
    assert "Traceback" not in result.output, result.output
    return result


def outcome(result: Result) -> dict[str, str]:
    """check id -> result, from a JSON run."""
    data = json.loads(result.stdout)
    return {c["id"]: c["result"] for c in data["checks"]}


def only(results: dict[str, str], **expected: str) -> None:
    """``expected`` (ids with __ for .) have those results; every other check passed (a
    warning, an event slower than 1 s on a loaded machine, passes too)."""
    want = {k.replace("__", "."): v for k, v in expected.items()}
    for check, got in results.items():
        assert got in ({want[check]} if check in want else PASSED), (check, got, results)


# -- a healthy daemon -----------------------------------------------------------------------------


async def test_full_run_passes_with_junit_and_leaves_nothing_behind(
    daemon: Runtime, tmp_path: Path
) -> None:
    junit = tmp_path / "out" / "validate.xml"
    junit.parent.mkdir()
    result = await validate(url(daemon), "--suite", "full", "--junit-file", str(junit))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"ratectl validate: suite full against {url(daemon)}")
    store = lines[0].split("scratch store ")[1].rstrip(")")
    assert store.startswith("validate-")
    body = lines[1:-1]
    assert [line.split()[1] for line in body] == FULL
    assert all(line.startswith(("PASS ", "WARN ")) for line in body), result.stdout
    assert "\x1b[" not in result.stdout  # piped: no colour
    assert lines[-1].startswith(f"PASSED: {len(FULL)} checks, ")
    assert ", 0 skipped, 0 failed, 0 errors in " in lines[-1]
    heartbeat = next(line for line in body if "websocket.heartbeat" in line)
    assert "interval 0.5 s" in heartbeat

    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == (
        str(len(FULL)),
        "0",
        "0",
    )
    assert [c.get("name") for c in suite.iter("testcase")] == FULL
    assert all(c.find("failure") is None and c.find("skipped") is None for c in suite)

    # nothing left but audit records, and those verify
    now = daemon.clock.now()
    assert [o for o in daemon.engine.overrides.all() if o.active(now)] == []
    assert daemon.engine.locks.all(store, "active") == []
    async with httpx.AsyncClient(
        base_url=url(daemon), headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as c:
        records = (await c.get("/api/audit", params={"storeId": store})).json()["data"]
    assert sorted(r["type"] for r in records) == sorted(
        ["override_set", "lock_created", "lock_created", "lock_consumed"]
        + ["lock_expired", "override_cleared", "terminal_stale"]
    )


async def test_smoke_json_envelope(daemon: Runtime) -> None:
    result = await validate(url(daemon), "-o", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["version"] == 1 and data["suite"] == "smoke" and data["daemon"] == url(daemon)
    assert data["summary"]["result"] == "passed" and data["summary"]["total"] == len(SMOKE)
    assert [c["id"] for c in data["checks"]] == SMOKE
    assert all(c["result"] in PASSED and c["durationMs"] >= 0 for c in data["checks"])
    bounds = next(c for c in data["checks"] if c["id"] == "engine.invariants")["message"]
    assert "bounds [0.001, 0.1]" in bounds  # the daemon's own spread bounds


async def test_chosen_store_with_an_override_is_refused_untouched(daemon: Runtime) -> None:
    async with httpx.AsyncClient(
        base_url=url(daemon), headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as c:
        body = {"currencyPair": "EUR/CAD", "spread": 0.03, "storeId": "busy"}
        assert (await c.post("/api/rates/set", json=body)).status_code == 200
    result = await validate(
        url(daemon), "--check", "flow.override", "--store", "busy", "-o", "json"
    )
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    first = data["checks"][0]
    assert first["result"] == "fail" and "store busy already has an override" in first["message"]
    assert data["checks"][1] == {**data["checks"][1], "id": "flow.cleanup", "result": "skip"}
    assert [o.store_id for o in daemon.engine.overrides.all()] == ["busy"]


async def test_cancelled_run_still_cleans_up(daemon: Runtime) -> None:
    """Ctrl-C cancels the run: the flow's override and locks are undone before it ends."""
    opts = Options(url(daemon), ADMIN_KEY, "test", 5.0, "validate-cancel", checks=("flow",))
    seen: list[CheckResult] = []
    task = asyncio.create_task(run(opts, seen.append))
    while not any(r.id == "flow.lock" for r in seen):
        await asyncio.sleep(0.01)
    assert seen[-1].result.value == "pass"
    now = daemon.clock.now()
    assert [o.store_id for o in daemon.engine.overrides.all() if o.active(now)] == [
        "validate-cancel"
    ]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    now = daemon.clock.now()
    assert [o for o in daemon.engine.overrides.all() if o.active(now)] == []
    assert daemon.engine.locks.all("validate-cancel", "active") == []


# -- could not run ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_unreachable_daemon_exit_3_with_valid_json() -> None:
    target = f"http://127.0.0.1:{free_port()}"
    result = await validate(target, "--suite", "full", "-o", "json")
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["daemon"] == target and data["summary"]["result"] == "unreachable"
    first, *rest = data["checks"]
    assert first["id"] == "connectivity.health" and first["result"] == "error"
    assert first["cause"] == "unreachable" and "cannot reach ratehubd" in first["message"]
    assert {c["result"] for c in rest} == {"skip"}
    assert "not run: the daemon is unreachable" in rest[0]["message"]
    assert "ratectl: cannot reach ratehubd" in result.stderr
    text = await validate(target)
    assert text.exit_code == 3 and text.stdout.splitlines()[-2].startswith("UNREACHABLE")


async def test_wrong_key_exit_4(daemon: Runtime) -> None:
    result = await validate(url(daemon), "-o", "json", token="not-the-key")
    assert result.exit_code == 4
    data = json.loads(result.stdout)
    checks = {c["id"]: c for c in data["checks"]}
    assert checks["connectivity.health"]["result"] == "pass"
    assert checks["connectivity.api"]["result"] == "error"
    assert checks["connectivity.api"]["cause"] == "auth"
    assert "refused the key" in checks["connectivity.api"]["message"]
    assert "env RATECTL_TOKEN" in checks["connectivity.api"]["message"]
    assert {checks[i]["result"] for i in SMOKE[2:]} == {"skip"}


async def test_not_a_ratehubd_and_fail_fast(tmp_path: Path) -> None:
    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>hello</html>")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        target = f"http://127.0.0.1:{server.server_address[1]}"
        result = await validate(target, "--fail-fast", "-o", "json")
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1
    checks = json.loads(result.stdout)["checks"]
    assert (
        checks[0]["result"] == "fail" and "is --url pointing at ratehubd?" in checks[0]["message"]
    )
    assert {c["result"] for c in checks[1:]} == {"skip"}
    assert "--fail-fast after connectivity.health (fail)" in checks[1]["message"]


async def test_bad_check_and_junit_dir_are_usage_errors(daemon: Runtime, tmp_path: Path) -> None:
    bad = await validate(url(daemon), "--check", "nope")
    assert bad.exit_code == 2 and "not a check id or group" in bad.stderr
    missing = await validate(url(daemon), "--junit-file", str(tmp_path / "no" / "x.xml"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr


# -- daemons that misbehave on purpose ------------------------------------------------------------


def default_pairs(**changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    pairs = {name: pc.model_dump(exclude_none=True) for name, pc in Config().pairs.items()}
    for name, values in changes.items():
        pairs[name.replace("_", "/")].update(values)
    return pairs


async def test_stale_feed_fails_market_fresh_only(start: Starter) -> None:
    rt: Runtime = await start(pairs=default_pairs(GBP_CAD={"staleness_s": 0.3}))
    gbp = rt.engine.pair("GBP/CAD")
    del rt.feed.levels[gbp]  # the feed stops quoting GBP/CAD
    while not rt.engine.market.is_stale(gbp, rt.clock.now()):
        await asyncio.sleep(0.05)
    result = await validate(url(rt), "--suite", "full", "-o", "json")
    assert result.exit_code == 1
    only(outcome(result), market__fresh="fail")
    fresh = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "market.fresh")
    assert "GBP/CAD: market data is stale" in fresh["message"]
    assert any("/readyz: not ready: market data stale: GBP/CAD" in d for d in fresh["details"])


async def test_wrong_spread_fails_engine_invariants_only(start: Starter) -> None:
    rt: Runtime = await start()
    rates, table = rt.service.rates, rt.service.rate_table

    def broken(rate: dict[str, Any]) -> dict[str, Any]:
        if rate["currencyPair"] != "EUR/CAD":
            return rate
        below = float(Decimal(str(rate["rate"])) - Decimal("0.0002"))
        return {**rate, "buyRate": below}

    rt.service.rates = lambda store: [broken(r) for r in rates(store)]  # type: ignore[method-assign]
    rt.service.rate_table = lambda store: {p: broken(r) for p, r in table(store).items()}  # type: ignore[method-assign]
    result = await validate(url(rt), "--suite", "full", "-o", "json")
    assert result.exit_code == 1
    only(outcome(result), engine__invariants="fail")
    inv = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "engine.invariants")
    assert "EUR/CAD at global: sellRate" in inv["details"][0]
    assert "does not hold" in inv["details"][0]


@pytest.mark.parametrize(
    ("dropped", "failing", "skipped"),
    [
        ("rate_lock_created", "flow.lock", ["flow.consume", "flow.expire"]),
        ("rate_lock_expired", "flow.expire", []),
    ],
)
async def test_hub_that_drops_an_event_fails_that_flow_step(
    start: Starter, dropped: str, failing: str, skipped: list[str]
) -> None:
    rt: Runtime = await start()
    publish = rt.hub.publish_event

    def lossy(
        type_: str, data: dict[str, Any], store_id: str | None, now: float, seq: int | None = None
    ) -> Any:
        if type_ == dropped:
            return None
        return publish(type_, data, store_id, now, seq)

    rt.hub.publish_event = lossy  # type: ignore[method-assign]
    result = await validate(
        url(rt), "--check", "websocket", "--check", "flow", "--timeout", SHORT, "-o", "json"
    )
    left = rt.engine.locks.all(json.loads(result.stdout)["store"], "active")
    assert result.exit_code == 1
    got = outcome(result)
    only(
        got,
        **{failing.replace(".", "__"): "fail"},
        **{s.replace(".", "__"): "skip" for s in skipped},
    )
    failed = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == failing)
    assert f"{dropped}" in failed["message"] and "did not arrive within" in failed["message"]
    assert left == []  # the cleanup released what the failed run held


async def test_hub_without_ping_or_heartbeat(start: Starter) -> None:
    rt: Runtime = await start()
    rt.hub.heartbeat = lambda now: None  # type: ignore[method-assign]
    rt.hub._on_ping = lambda s, data, now: None  # type: ignore[method-assign]
    result = await validate(url(rt), "--check", "websocket", "--timeout", SHORT, "-o", "json")
    assert result.exit_code == 1
    only(outcome(result), websocket__ping="fail", websocket__heartbeat="fail")


async def test_long_heartbeat_is_skipped_with_the_reason(start: Starter) -> None:
    rt: Runtime = await start(hub={"heartbeat_interval_ms": 30000})
    result = await validate(url(rt), "--check", "websocket.heartbeat", "-o", "json")
    assert result.exit_code == 0
    check = json.loads(result.stdout)["checks"][0]
    assert check["result"] == "skip"
    assert "raise --timeout to 46 or lower WEBSOCKET_HEARTBEAT_INTERVAL" in check["message"]


async def test_api_without_auth_fails_connectivity_auth(start: Starter) -> None:
    rt: Runtime = await start()
    api = rt.http.config.app.app  # inside SecurityHeaders
    api.dependency_overrides[http_security.authenticate] = lambda: rt.keys.get("env")
    result = await validate(url(rt), "--check", "connectivity", "-o", "json")
    assert result.exit_code == 1
    only(outcome(result), connectivity__auth="fail")
    assert json.loads(result.stdout)["suite"] == "custom"  # --check, not a suite
    auth = next(c for c in json.loads(result.stdout)["checks"] if c["id"] == "connectivity.auth")
    assert "with no key answered HTTP 200, not 401" in auth["details"][0]


async def test_open_breaker_fails_market_breakers(start: Starter) -> None:
    rt: Runtime = await start()
    status = rt.status

    def with_breaker() -> dict[str, Any]:
        st = status()
        for pair, m in st["rateEngine"]["marketData"].items():
            m["breakerOpen"] = pair == "BTC/CAD"
            m["breakerReason"] = "5 rejected values from coinbase"
        return st

    rt.status = with_breaker  # type: ignore[method-assign]
    result = await validate(url(rt), "--check", "market", "-o", "json")
    assert result.exit_code == 1
    only(outcome(result), market__breakers="fail")
    check = json.loads(result.stdout)["checks"][1]
    assert check["message"] == "BTC/CAD: circuit breaker open (5 rejected values from coinbase)"


async def test_tampered_chain_and_missing_flow_records_fail_audit(
    start: Starter,
) -> None:
    rt: Runtime = await start()
    query = rt.audit_query

    async def without_locks(q: Any) -> list[dict[str, Any]]:
        return [r for r in await query(q) if not r["type"].startswith("lock_")]

    rt.audit_query = without_locks  # type: ignore[method-assign]
    async with httpx.AsyncClient(
        base_url=url(rt), headers={"Authorization": f"Bearer {ADMIN_KEY}"}
    ) as c:
        body = {"currencyPair": "EUR/CAD", "spread": 0.03, "storeId": "s1"}
        assert (await c.post("/api/rates/set", json=body)).status_code == 200
    with sqlite3.connect(rt.config.state_path / "ratehub.db") as db:
        db.execute("update audit set reason = 'nothing to see' where seq = 1")
    result = await validate(url(rt), "--check", "audit", "-o", "json")
    assert result.exit_code == 1
    only(outcome(result), audit__verify="fail", audit__flow="fail")
    checks = {c["id"]: c for c in json.loads(result.stdout)["checks"]}
    assert "the audit chain is broken at record 1" in checks["audit.verify"]["message"]
    missing = checks["audit.flow"]["details"]
    assert any(d.startswith("no lock_created record for lock ") for d in missing)
    assert any(d.startswith("no lock_expired record") for d in missing)

"""Secrets never leak: not in the daemon's logs (even with DEBUG_WEBSOCKET), not in error
messages, not in genconfig or checkconfig output, not in GET /api/keys."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from ratehubd.logredact import redact
from tests.conftest import ADMIN_KEY, start_daemon, timeout

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_no_secret_in_the_daemon_output(tmp_path: Path) -> None:
    d = start_daemon(tmp_path / "state", env={"DEBUG_WEBSOCKET": "true"})
    try:
        async with httpx.AsyncClient(base_url=d.url, timeout=timeout(10)) as c:
            made = (
                await c.post(
                    "/api/keys", json={"name": "t", "role": "store", "stores": ["s1"]}, headers=AUTH
                )
            ).json()["data"]
            secret = made["secret"]
            mine = {"Authorization": f"Bearer {secret}"}
            assert (await c.get("/api/rates/get", headers=mine)).status_code == 200
            wrong = f"rh_{made['id']}_guessed-wrong-secret-value"
            bad = await c.get("/api/rates/get", headers={"Authorization": f"Bearer {wrong}"})
            assert bad.status_code == 401 and "guessed-wrong" not in bad.text
            assert (await c.get("/api/rates/get?storeId=s2", headers=mine)).status_code == 403
            listed = (await c.get("/api/keys", headers=AUTH)).text
            assert secret not in listed and ADMIN_KEY not in listed
            for base in (d.ws_url, d.hub_url):
                async with connect(f"{base}?clientType=store_os&token={secret}") as ws:
                    await ws.recv()
                    await ws.send(json.dumps({"type": "ping", "data": {}}))
                    await ws.recv()
                with pytest.raises(InvalidStatus) as refused:
                    async with connect(f"{base}?token={wrong}"):
                        pass
                assert b"guessed-wrong" not in refused.value.response.body
            await c.post(f"/api/keys/{made['id']}/revoke", headers=AUTH)
    finally:
        _, out = d.finish()
    log = d.banner + out
    assert "ws open" in log  # DEBUG_WEBSOCKET was on: the test saw the debug output
    for needle in (secret, secret.split("_", 2)[2], ADMIN_KEY, "guessed-wrong-secret-value"):
        assert needle not in log, f"{needle[:6]}... appears in the daemon's output"


def test_redact_covers_urls_headers_and_key_texts() -> None:
    line = (
        "< GET /api/rates/websocket?clientType=dashboard&token=s3cr3t&storeId=s1 HTTP/1.1; "
        "authorization: Bearer abc.def; key rh_0a1b2c3d_Zm9vYmFyYmF6 and hunter2"
    )
    clean = redact(line, ["hunter2"])
    for secret in ("s3cr3t", "abc.def", "Zm9vYmFyYmF6", "hunter2"):
        assert secret not in clean
    assert "storeId=s1" in clean and "rh_0a1b2c3d_" in clean  # the key id stays


def test_genconfig_and_checkconfig_never_print_a_secret(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "ratehubd.cli"]
    env = {"PATH": "/usr/bin:/bin", "API_SECRET_KEY": "env-secret-value-123"}
    gen = subprocess.run(
        run + ["genconfig"], capture_output=True, text=True, env=env, timeout=timeout(30)
    )
    assert gen.returncode == 0 and "env-secret-value-123" not in gen.stdout + gen.stderr
    good = tmp_path / "good.toml"
    good.write_text('[security]\napi_secret_key = "file-secret-value-456"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text("[security]\napi_secret_key = 987654321\n[server]\nport = -1\n")
    for path, rc in ((good, 0), (bad, 1)):
        res = subprocess.run(
            run + ["checkconfig", str(path)],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout(30),
        )
        assert res.returncode == rc, res.stderr
        output = res.stdout + res.stderr
        for secret in ("file-secret-value-456", "987654321", "env-secret-value-123"):
            assert secret not in output
    assert "security.api_secret_key" in res.stderr  # the problem is still named


def test_the_daemons_files_are_private(tmp_path: Path) -> None:
    """The database, its WAL and the key file: readable by the daemon's user only."""
    state = tmp_path / "state"
    d = start_daemon(state)
    try:
        got = httpx.post(
            f"{d.url}/api/rates/set",
            json={"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33},
            headers={"Authorization": f"Bearer {d.key}"},
        )
        assert got.status_code == 200
        made = [p for p in state.iterdir() if p.is_file()]
        assert any(p.name == "ratehub.db" for p in made), made
        for p in made:
            assert p.stat().st_mode & 0o077 == 0, f"{p.name} is {oct(p.stat().st_mode)}"
    finally:
        d.stop()
        if d.proc.stdout:
            d.proc.stdout.close()

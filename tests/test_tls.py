"""Optional TLS with a throwaway self-signed certificate made here by the ``openssl`` CLI:
https and wss on the API port, wss on the hub port, plain http refused; bad files are a
ConfigError naming the key, before anything listens."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from ratehubd.adapters.tls import server_context
from ratehubd.config import Config, ServerConfig
from ratehubd.errors import ConfigError
from ratehubd.runtime import Runtime
from tests.conftest import ADMIN_KEY, timeout

AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}


def make_cert(directory: Path, name: str = "server") -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl CLI is not installed (needed to make a throwaway certificate)")
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=timeout(30),
    )  # fmt: skip
    return cert, key


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return make_cert(tmp_path)


async def test_https_and_wss_on_both_listeners_and_plain_http_fails(
    make_config: Callable[..., Config], cert: tuple[Path, Path]
) -> None:
    crt, key = cert
    rt = Runtime(make_config(server={"tls_cert_file": str(crt), "tls_key_file": str(key)}))
    await rt.start()
    trust = ssl.create_default_context(cafile=str(crt))
    try:
        async with httpx.AsyncClient(verify=trust) as c:
            r = await c.get(f"https://127.0.0.1:{rt.api_port}/api/rates/get", headers=AUTH)
        assert r.status_code == 200 and r.json()["success"] is True
        assert r.headers["strict-transport-security"].startswith("max-age=")
        for port in (rt.api_port, rt.hub_port):
            url = f"wss://127.0.0.1:{port}/api/rates/websocket?token={ADMIN_KEY}"
            async with connect(url, ssl=trust) as ws:
                assert json.loads(await ws.recv())["type"] == "welcome"
        async with httpx.AsyncClient() as c:
            with pytest.raises(httpx.HTTPError):
                await c.get(f"http://127.0.0.1:{rt.api_port}/healthz", timeout=timeout(5))
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):  # untrusted
            async with httpx.AsyncClient() as c:
                await c.get(f"https://127.0.0.1:{rt.api_port}/healthz")
    finally:
        await rt.stop()


def test_a_pem_bundle_needs_no_key_file(cert: tuple[Path, Path], tmp_path: Path) -> None:
    crt, key = cert
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(crt.read_text() + key.read_text())
    assert server_context(ServerConfig(tls_cert_file=str(bundle))) is not None
    assert server_context(ServerConfig()) is None  # TLS off


@pytest.mark.parametrize(
    ("case", "needle"),
    [
        ("missing cert", "server.tls_cert_file: cannot read"),
        ("missing key", "server.tls_key_file: cannot read"),
        ("not a cert", "server.tls_cert_file: "),
        ("cert without key", "holds no PEM private key"),
        ("key of another cert", "server.tls_key_file: the private key does not match"),
        ("encrypted key", "server.tls_key_file: the private key is encrypted"),
    ],
)
def test_bad_tls_files_name_the_key(
    cert: tuple[Path, Path], tmp_path: Path, case: str, needle: str
) -> None:
    crt, key = cert
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    files = {
        "missing cert": (tmp_path / "nope.crt", key),
        "missing key": (crt, tmp_path / "nope.key"),
        "not a cert": (junk, key),
        "cert without key": (crt, None),
        "key of another cert": (crt, make_cert(tmp_path, "other")[1]),
        "encrypted key": (crt, encrypted(key, tmp_path)),
    }[case]
    cfg = ServerConfig(tls_cert_file=str(files[0]), tls_key_file=str(files[1]) if files[1] else "")
    with pytest.raises(ConfigError) as err:
        server_context(cfg)
    assert needle in err.value.message


def encrypted(key: Path, directory: Path) -> Path:
    out = directory / "encrypted.key"
    subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-out", str(out), "-aes256", "-passout", "pass:x"],
        check=True,
        capture_output=True,
        timeout=timeout(30),
    )
    return out


def test_ratehubd_refuses_to_start_with_a_bad_certificate(tmp_path: Path) -> None:
    bad = tmp_path / "ratehub.toml"
    bad.write_text(f'[server]\ntls_cert_file = "{tmp_path / "missing.crt"}"\nport = 0\n')
    res = subprocess.run(
        [sys.executable, "-m", "ratehubd.cli", "--config", str(bad), "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=timeout(30),
        env={"PATH": "/usr/bin:/bin", "WEBSOCKET_PORT": "-1"},
    )
    assert res.returncode == 2
    assert "server.tls_cert_file: cannot read" in res.stderr and "Traceback" not in res.stderr

"""deploy/: the environment file example and the install script, run for real (staged)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ratehubd.config import load_config
from tests.conftest import timeout

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
ASSIGNMENT = re.compile(r"^#?([A-Z_]+)=(.*)$")


def env_file(text: str, *, commented: bool = False) -> dict[str, str]:
    """The assignments of a systemd EnvironmentFile; with ``commented``, the commented-out
    ``#KEY=value`` examples too."""
    out = {}
    for line in text.splitlines():
        m = ASSIGNMENT.match(line)
        if m and (commented or not line.startswith("#")):
            out[m.group(1)] = m.group(2)
    return out


def test_env_example_values_are_all_valid() -> None:
    """Every assignment in the example, commented or not, is accepted by the daemon."""
    example = env_file((DEPLOY / "ratehubd.env.example").read_text(), commented=True)
    assert example.pop("RATEHUB_CONFIG") == "/etc/ratehub/ratehubd.toml"
    cfg = load_config(None, env=example)
    assert (cfg.server.host, cfg.server.port, cfg.server.hub_port) == ("127.0.0.1", 3000, 3001)
    assert cfg.security.api_secret_key is not None
    assert cfg.server.cors_origins == (
        "https://dashboard.example.com",
        "https://stores.example.com",
    )


def test_env_example_names_only_variables_the_daemon_reads() -> None:
    from ratehubd.config import _env_layer

    example = env_file((DEPLOY / "ratehubd.env.example").read_text(), commented=True)
    example.pop("RATEHUB_CONFIG")  # read by load_config itself, tested above
    ignored = [name for name, value in example.items() if not _env_layer({name: value})]
    assert ignored == []


def _install(destdir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(DEPLOY / "install.sh")],
        env={
            **os.environ,
            "DESTDIR": str(destdir),
            "RATEHUB_SKIP_VENV": "1",
            "PYTHON": sys.executable,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=timeout(30),
    )


def test_install_script_stages_unit_and_secret(tmp_path: Path) -> None:
    result = _install(tmp_path, PREFIX="/srv/ratehub")
    assert result.returncode == 0, result.stderr
    unit = (tmp_path / "etc/systemd/system/ratehubd.service").read_text()
    assert "ExecStart=/srv/ratehub/bin/ratehubd\n" in unit
    assert "/opt/ratehub" not in unit

    env_path = tmp_path / "etc/ratehub/ratehubd.env"
    assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
    values = env_file(env_path.read_text())
    key = values["API_SECRET_KEY"]
    assert len(key) >= 40 and "change-me" not in key
    assert load_config(None, env=values).security.api_secret_key is not None

    # Run again (an upgrade): the secret is kept, not regenerated.
    again = _install(tmp_path, PREFIX="/srv/ratehub")
    assert again.returncode == 0, again.stderr
    assert "keeping /etc/ratehub/ratehubd.env" in again.stdout
    assert env_file(env_path.read_text())["API_SECRET_KEY"] == key


def test_two_installs_get_different_secrets(tmp_path: Path) -> None:
    keys = []
    for name in ("a", "b"):
        assert _install(tmp_path / name).returncode == 0
        keys.append(env_file((tmp_path / name / "etc/ratehub/ratehubd.env").read_text()))
    assert keys[0]["API_SECRET_KEY"] != keys[1]["API_SECRET_KEY"]


@pytest.mark.parametrize(
    ("prefix", "problem"),
    [
        ("/home/ops/ratehub", "under a home directory, which the unit hides"),
        ("opt/ratehub", "must be an absolute path"),
    ],
)
def test_install_script_refuses_a_prefix_the_service_cannot_use(
    tmp_path: Path, prefix: str, problem: str
) -> None:
    result = _install(tmp_path, PREFIX=prefix)
    assert result.returncode == 2
    assert problem in result.stderr
    assert not (tmp_path / "etc").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="running as root: the root check cannot refuse")
def test_install_script_wants_root_without_destdir(tmp_path: Path) -> None:
    result = _install(tmp_path, DESTDIR="")
    assert result.returncode == 2
    assert "run as root" in result.stderr

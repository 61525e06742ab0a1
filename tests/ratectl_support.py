"""What the ratectl CLI tests share: one ``ratehubd`` per test module, an environment with
nothing of the developer's in it, and CliRunner helpers that fail on a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from ratectl.cli import app
from tests.conftest import ADMIN_KEY, DaemonProcess, start_daemon

runner = CliRunner()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    d = start_daemon(tmp_path_factory.mktemp("ratectl") / "state")
    try:
        yield d
    finally:
        d.finish()


@pytest.fixture(autouse=True)
def env(daemon: DaemonProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("RATECTL_URL", daemon.url)
    monkeypatch.setenv("RATECTL_TOKEN", ADMIN_KEY)


def ctl(*args: str, env: dict[str, str | None] | None = None) -> Result:
    result = runner.invoke(app, list(args), env=env)
    assert "Traceback" not in result.output
    return result


def ok(*args: str, env: dict[str, str | None] | None = None) -> Result:
    result = ctl(*args, env=env)
    assert result.exit_code == 0, result.output
    return result

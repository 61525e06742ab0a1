"""The package as a user gets it: ``python -m build`` makes an sdist and a wheel; the wheel,
installed in a fresh venv with no source tree beside it, runs ``ratehubd`` and ``ratectl``
and starts the TUI headless (its ``.tcss`` comes from the wheel); and it lives in one
environment with ``python-daemon``, which installs the top-level package ``daemon``.

Slow (a build and a venv with every dependency, from pip's cache when warm): one module
fixture does the work once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import timeout

ROOT = Path(__file__).resolve().parent.parent

TUI_HEADLESS = """
import asyncio
from ratectl.tui.app import RatehubApp
from ratectl.tui.options import TuiOptions

async def main():
    app = RatehubApp(TuiOptions(url="http://127.0.0.1:9", connect=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        print("tui", type(app.screen).__name__, app.query_one("#events").styles.height)

asyncio.run(main())
"""

BOTH = """
import daemon, ratehubd, ratectl
print("daemon", daemon.__file__)
print("ratehubd", ratehubd.__file__)
print("DaemonContext", hasattr(daemon, "DaemonContext"))
"""


def run(cmd: list[str], cwd: Path, limit: float = 300) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout(limit)
    )
    assert done.returncode == 0, f"{' '.join(cmd)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=out)
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv, somewhere with no source tree, holding the wheel and python-daemon."""
    where = tmp_path_factory.mktemp("fresh")
    env = where / "venv"
    run([sys.executable, "-m", "venv", str(env)], cwd=where)
    (wheel,) = dist.glob("ratehub-*.whl")
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    run([*pip, "--disable-pip-version-check", str(wheel), "python-daemon>=3,<4"], cwd=where)
    return env


def test_build_makes_an_sdist_and_a_wheel_with_the_data_files(dist: Path) -> None:
    (wheel,) = dist.glob("ratehub-*-py3-none-any.whl")
    (sdist,) = dist.glob("ratehub-*.tar.gz")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "ratectl/tui/app.tcss",
        "ratectl/py.typed",
        "ratehubd/py.typed",
        "ratehubd/board/board.html",
        "ratehubd/board/board.js",
        "ratehubd/docs/swagger-ui-bundle.js",
        "ratehubd/docs/swagger-ui.css",
        "ratehubd/docs/LICENSE",
    ):
        assert needed in names, f"{needed} is not in {wheel.name}"
    assert not any(n.startswith(("daemon/", "tests/")) for n in names)  # no "daemon" package
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    assert {"pyproject.toml", "README.md", "daemon/ratehubd/board/board.html"} <= members


def test_the_wheel_runs_with_no_source_tree(venv: Path) -> None:
    bin_ = venv / "bin"
    here = venv.parent
    assert run([str(bin_ / "ratehubd"), "--version"], here).startswith("ratehubd 0.1.0")
    config = run([str(bin_ / "ratehubd"), "genconfig"], here)
    assert "[hub]" in config and "confirm_timeout_ms" in config
    assert "set-rate" in run([str(bin_ / "ratectl"), "--help"], here)
    assert "complete" in run([str(bin_ / "ratectl"), "completion", "bash"], here)
    assert "tui HelpScreen 8" in run([str(bin_ / "python"), "-c", TUI_HEADLESS], here)


def test_python_daemon_and_ratehub_import_side_by_side(venv: Path) -> None:
    out = run([str(venv / "bin" / "python"), "-c", BOTH], venv.parent)
    lines = dict(line.split(" ", 1) for line in out.splitlines())
    assert lines["DaemonContext"] == "True"  # python-daemon's own package, not ours
    assert str(venv) in lines["daemon"] and str(venv) in lines["ratehubd"]
    assert str(ROOT) not in out

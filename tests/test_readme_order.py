"""The README's two commands, in order, on one machine: the suite passes after command 1.

Command 1 starts a daemon that writes its admin key under ``~/.local/state/ratehub`` and
stays running; a user's shell may also export ratectl's and the guide's variables and have a
``ratectl`` config whose context points elsewhere. Here a real ``ratehubd`` does exactly
that in a home of its own, and the settings and CLI tests run in a subprocess from that home
with junk in every such variable: conftest's ``scratch_home`` must make them pass anyway.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import timeout

ROOT = Path(__file__).resolve().parent.parent

JUNK = {
    "RATECTL_URL": "http://127.0.0.1:9",
    "RATECTL_TOKEN": "junk-token",
    "RATECTL_OUTPUT": "json",
    "RATECTL_CONTEXT": "elsewhere",
    "RATECTL_STORE": "junk-store",
    "RATECTL_TIMEOUT": "0.001",
    "API_SECRET_KEY": "junk-secret",
    "API_HOST": "junk.invalid",
    "WEBSOCKET_PORT": "1",
    "CORS_ORIGINS": "http://junk.invalid",
    "DEBUG_WEBSOCKET": "true",
    "RATEHUB_STATE_DIR": "/nonexistent/ratehub",
}


def start_command_1(home: Path) -> subprocess.Popen[str]:
    """``ratehubd`` as README command 1 starts it: default state directory under ``home``,
    a generated admin key (free ports instead of 3000/3001, which may be taken)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "RATE"))}
    env.update(HOME=str(home), WEBSOCKET_PORT="0")
    env.pop("API_SECRET_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ratehubd.cli", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout(20)
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if not line or "Ctrl-C stops" in line:
            break
    assert "Ctrl-C stops" in "".join(seen), "".join(seen)
    return proc


def test_settings_and_cli_tests_pass_in_the_home_command_1_leaves(tmp_path: Path) -> None:
    home = tmp_path / "user"
    config = home / ".config" / "ratectl" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(
        'current_context = "elsewhere"\n[contexts.elsewhere]\nurl = "http://127.0.0.1:9"\n'
    )
    daemon = start_command_1(home)
    try:
        key = home / ".local" / "state" / "ratehub" / "admin.key"
        assert key.is_file(), "command 1 writes its admin key in the default state directory"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_",))}
        env.update(HOME=str(home), **JUNK)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x"]
            + ["tests/test_ratectl_settings.py", "tests/test_ratectl_cli.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout(300),
        )
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
        assert " passed" in done.stdout and "failed" not in done.stdout
    finally:
        daemon.terminate()
        daemon.wait(timeout(10))
        if daemon.stdout:
            daemon.stdout.close()

"""The README's commands run as written, against a real ``ratehubd`` on free ports.

The quick start's ratectl lines and the guide's curl examples are taken from README.md
itself (so an edit there is tested), with only the port, the state directory and the
interpreter substituted. ``tail`` runs "until Ctrl-C": the test sends the Ctrl-C.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import DaemonProcess, start_daemon, timeout

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def sh_blocks() -> list[list[str]]:
    """Each ```sh block as its logical lines (backslash continuations joined)."""
    blocks = re.findall(r"```sh\n(.*?)```", README, re.S)
    return [re.sub(r"\\\n\s*", " ", b).strip().splitlines() for b in blocks]


def block_with(needle: str) -> list[str]:
    return next(b for b in sh_blocks() if any(needle in line for line in b))


@pytest.fixture
def quickstart(tmp_path: Path) -> Iterator[tuple[DaemonProcess, dict[str, str]]]:
    """A daemon started as the quick start does: no key given, so it writes admin.key."""
    state = tmp_path / "state"
    d = start_daemon(state, env={"API_SECRET_KEY": ""})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RATECTL_", "API_SECRET"))}
    env.update(RATECTL_URL=d.url, RATEHUB_STATE_DIR=str(state), NO_COLOR="1")
    try:
        yield d, env
    finally:
        d.finish()


def ratectl_argv(line: str) -> list[str]:
    words = shlex.split(line.split("  #")[0])
    assert words[0].endswith("ratectl"), line
    return [sys.executable, "-m", "ratectl.cli", *words[1:]]


def test_the_daemon_writes_a_private_admin_key(
    quickstart: tuple[DaemonProcess, dict[str, str]],
) -> None:
    d, env = quickstart
    key = Path(env["RATEHUB_STATE_DIR"]) / "admin.key"
    assert "admin key" in d.banner and str(key) in d.banner
    assert key.stat().st_mode & 0o777 == 0o600


def test_quick_start_ratectl_lines(quickstart: tuple[DaemonProcess, dict[str, str]]) -> None:
    _, env = quickstart
    lines = block_with("ratectl set-rate")
    assert len(lines) == 4
    for line in lines:
        argv = ratectl_argv(line)
        if argv[3] == "tail":  # "live updates until Ctrl-C"
            proc = subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            assert proc.stdout is not None
            seen = []
            deadline = time.monotonic() + timeout(10)
            while time.monotonic() < deadline:  # until the override set above shows up
                line_out = proc.stdout.readline()
                seen.append(line_out)
                if "USD/CAD" in line_out and "1.37" in line_out or not line_out:
                    break
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=timeout(10))
            assert "1.37" in seen[-1] and "@store123" in seen[-1], (seen, err)
            assert proc.returncode == 130, err
            continue
        res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout(30))
        assert res.returncode == 0, f"{line}\n{res.stderr}"
        if argv[3] == "rates":
            for pair in ("USD/CAD", "EUR/CAD", "GBP/CAD", "BTC/CAD", "ETH/CAD"):
                assert pair in res.stdout
        if argv[3] == "set-rate":
            assert "1.37" in res.stdout and "1.33" in res.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_guide_curl_examples(quickstart: tuple[DaemonProcess, dict[str, str]]) -> None:
    d, env = quickstart
    port = d.url.rsplit(":", 1)[1]
    script = "\n".join(block_with("curl"))
    script = script.replace("~/.local/state/ratehub", env["RATEHUB_STATE_DIR"])
    script = script.replace("localhost:3000", f"127.0.0.1:{port}")
    script = script.replace("\ncurl", "\necho; curl -sf")  # fail on an HTTP error; one per line
    res = subprocess.run(
        ["bash", "-ec", script], capture_output=True, text=True, timeout=timeout(30)
    )
    assert res.returncode == 0, res.stderr
    out = [line for line in res.stdout.splitlines() if line.strip()]
    assert len(out) == 2 and all('"success":true' in line for line in out)
    assert '"buyRate":1.37' in out[1]


def test_tail_exits_cleanly_when_the_daemon_is_down(tmp_path: Path) -> None:
    env = {**os.environ, "RATECTL_URL": "http://127.0.0.1:9", "RATECTL_TOKEN": "x"}
    t0 = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "ratectl.cli", "rates"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout(30),
    )
    assert res.returncode == 3 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert time.monotonic() - t0 < timeout(30)

"""``ratectl`` as a real process: the end-to-end path of issue 2 (ratehubd process ->
``ratectl set-rate`` -> a WebSocket client sees it), start-up cost, exit codes and signals,
the quick start without copying a key, and resuming across a daemon restart."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from websockets.sync.client import connect

from tests.conftest import ADMIN_KEY, DaemonProcess, start_daemon, timeout
from tests.ratectl_support import daemon  # noqa: F401  (the module's ratehubd)

RATECTL = [sys.executable, "-m", "ratectl"]


def stop(d: DaemonProcess) -> None:
    d.stop()
    if d.proc.stdout:
        d.proc.stdout.close()


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RATECTL_", "RATEHUB_")) and k != "API_SECRET_KEY"
    }
    env.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), XDG_STATE_HOME=str(tmp_path / "xdg-state"))
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        RATECTL + args, env=env, capture_output=True, text=True, timeout=timeout(20)
    )


def ctl_env(d: DaemonProcess, tmp_path: Path) -> dict[str, str]:
    return clean_env(tmp_path, RATECTL_URL=d.url, RATECTL_TOKEN=ADMIN_KEY)


def read_until(ws: Any, want: Any, limit: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout(limit)
    while True:
        msg: dict[str, Any] = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if want(msg):
            return msg


class Lines:
    """A child's pipe read line by line on a thread, so a test can wait with a limit."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.queue: queue.Queue[str] = queue.Queue()
        self.thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self.thread.start()

    def _pump(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                self.queue.put(line)
        self.queue.put("")  # end of stream

    def next(self, want: Any = None, limit: float = 10) -> str:
        """The next line (for which ``want(line)`` holds); fail after ``limit`` seconds."""
        deadline = time.monotonic() + timeout(limit)
        while True:
            try:
                line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no such line within {timeout(limit)} s") from None
            assert line, "the stream ended"
            if want is None or want(line):
                return line

    def rest(self) -> str:
        """Everything left, once the child has exited (the pipe closed)."""
        self.thread.join(timeout(10))
        out: list[str] = []
        while (line := self.queue.get_nowait()) != "":
            out.append(line)
        return "".join(out)


# -- issue 2's end-to-end test -------------------------------------------------------------


def test_set_rate_from_the_cli_reaches_a_websocket_client(
    daemon: DaemonProcess, tmp_path: Path
) -> None:
    url = f"{daemon.ws_url}?clientType=store_os&storeId=e2e-store"
    with connect(url, additional_headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as ws:
        read_until(ws, lambda m: m["type"] == "rate_update" and m["data"].get("snapshot"))
        done = run(
            [
                "set-rate",
                "USD/CAD",
                "--buy",
                "1.37",
                "--sell",
                "1.33",
                "--store",
                "e2e-store",
                "--valid-for",
                "1h",
                "--reason",
                "High demand period",
            ],
            ctl_env(daemon, tmp_path),
        )
        assert done.returncode == 0, done.stderr
        event = read_until(ws, lambda m: m["type"] == "rate_override_set")
        assert (event["data"]["buyRate"], event["data"]["reason"]) == (1.37, "High demand period")

        def usd_at_137(m: dict[str, Any]) -> bool:
            rates = m["data"].get("rates", []) if m["type"] == "rate_update" else []
            return any(r["currencyPair"] == "USD/CAD" and r["buyRate"] == 1.37 for r in rates)

        update = read_until(ws, usd_at_137)
        assert update["data"]["rates"][0]["storeId"] == "e2e-store"


# -- start-up ---------------------------------------------------------------------------------

HEAVY = ("textual", "httpx", "websockets", "pydantic", "ratehubd")


def modules_after(argv: list[str], env: dict[str, str]) -> tuple[set[str], str]:
    """Run ratectl's main in a fresh interpreter; which heavy packages got imported?"""
    code = (
        "import sys\n"
        f"sys.argv = {['ratectl', *argv]!r}\n"
        "from ratectl.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r}), file=sys.stderr)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout(20)
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1].replace("'", '"'))), done.stdout


def test_help_imports_nothing_heavy_and_lists_exit_codes(tmp_path: Path) -> None:
    loaded, out = modules_after(["--help"], clean_env(tmp_path))
    assert loaded == set()  # no textual, and no httpx/websockets/pydantic/ratehubd either
    assert "Exit codes" in out
    for line in ("0  ok", "3  daemon unreachable", "4  authentication", "130  interrupted"):
        assert line in out


def test_commands_never_import_textual(daemon: DaemonProcess, tmp_path: Path) -> None:
    loaded, out = modules_after(["rates", "-o", "json"], ctl_env(daemon, tmp_path))
    assert "textual" not in loaded and "httpx" in loaded
    assert len(json.loads(out)) == 5


def test_help_start_up_time_is_reported(tmp_path: Path) -> None:
    """Not an upper bound (machines vary): a sanity check that --help runs, with its time."""
    started = time.perf_counter()
    done = run(["--help"], clean_env(tmp_path))
    elapsed = time.perf_counter() - started
    assert done.returncode == 0 and "Usage" in done.stdout
    print(f"ratectl --help: {elapsed * 1000:.0f} ms (python -m, cold interpreter)")


# -- exit codes and streams -------------------------------------------------------------------


def test_unreachable_daemon_exit_3_one_line_no_traceback(tmp_path: Path) -> None:
    done = run(["--url", "http://127.0.0.1:9", "rates"], clean_env(tmp_path))
    assert done.returncode == 3
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("ratectl: cannot reach ratehubd at http://127.0.0.1:9")
    assert "Traceback" not in done.stderr


def test_wrong_key_exit_4(daemon: DaemonProcess, tmp_path: Path) -> None:
    env = clean_env(tmp_path, RATECTL_URL=daemon.url, RATECTL_TOKEN="wrong")
    done = run(["status"], env)
    assert done.returncode == 4 and "Traceback" not in done.stderr


def test_usage_error_exit_2(tmp_path: Path) -> None:
    assert run(["rates", "--no-such-flag"], clean_env(tmp_path)).returncode == 2


def test_piped_output_has_no_colour(daemon: DaemonProcess, tmp_path: Path) -> None:
    done = run(["rates"], ctl_env(daemon, tmp_path))
    assert done.returncode == 0 and "\x1b[" not in done.stdout and "\x1b[" not in done.stderr


def test_tail_jsonl_count(daemon: DaemonProcess, tmp_path: Path) -> None:
    done = run(
        ["tail", "--store", "p-tail", "-o", "jsonl", "--count", "2"], ctl_env(daemon, tmp_path)
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 2 and all(json.loads(line)["type"] == "rate_update" for line in lines)


def test_watch_streams_until_ctrl_c_then_exits_130(daemon: DaemonProcess, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        RATECTL + ["rates", "-w", "-o", "jsonl"],
        env=ctl_env(daemon, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err_lines = Lines(proc.stdout), Lines(proc.stderr)
    try:
        first = [json.loads(out.next()) for _ in range(5)]
        assert {r["currencyPair"] for r in first} == {
            "USD/CAD",
            "EUR/CAD",
            "GBP/CAD",
            "BTC/CAD",
            "ETH/CAD",
        }
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout(10))
    finally:
        proc.kill()
        out.rest()
    assert proc.returncode == 130
    assert "Traceback" not in err_lines.rest()


# -- the quick start: no key to copy -----------------------------------------------------------


def test_local_daemon_admin_key_is_found_by_itself(tmp_path: Path) -> None:
    state = tmp_path / "xdg-state" / "ratehub"  # the XDG default the daemon and ratectl share
    d = start_daemon(state, env={"API_SECRET_KEY": ""})
    try:
        assert (state / "admin.key").exists() and "admin.key" in d.banner
        done = run(["rates", "-o", "json"], clean_env(tmp_path, RATECTL_URL=d.url))
        assert done.returncode == 0, done.stderr
        assert len(json.loads(done.stdout)) == 5
        view = run(["config", "view", "--show-source"], clean_env(tmp_path, RATECTL_URL=d.url))
        assert "the local daemon's admin key" in view.stdout
        assert (state / "admin.key").read_text().strip() not in view.stdout
    finally:
        stop(d)


# -- resume across a daemon restart -------------------------------------------------------------


def test_tail_resumes_across_a_restart_without_a_gap(tmp_path: Path) -> None:
    state = tmp_path / "restart-state"
    first = start_daemon(state)
    port = first.url.rsplit(":", 1)[1]
    env = clean_env(tmp_path, RATECTL_URL=first.url, RATECTL_TOKEN=ADMIN_KEY)
    tail = subprocess.Popen(
        RATECTL + ["tail", "-s", "r1", "--events", "rate_update,rate_override_set", "-o", "jsonl"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = Lines(tail.stdout), Lines(tail.stderr)
    second: DaemonProcess | None = None

    def override_set(line: str) -> bool:
        return bool(json.loads(line)["type"] == "rate_override_set")

    try:
        out.next()  # the first snapshot: connected
        done = run(["set-rate", "USD/CAD", "--buy", "1.37", "--sell", "1.33", "-s", "r1"], env)
        assert done.returncode == 0, done.stderr
        seq1 = json.loads(out.next(override_set))["seq"]
        stop(first)
        assert "the daemon is restarting" in err.next()
        second = start_daemon(state, args=["--port", port])
        done = run(["set-rate", "USD/CAD", "--buy", "1.38", "--sell", "1.33", "-s", "r1"], env)
        assert done.returncode == 0, done.stderr
        event = json.loads(out.next(override_set))
        assert event["data"]["buyRate"] == 1.38
        assert event["seq"] > seq1  # numbered on from the same log
        resumed = err.next(lambda line: "resumed after seq" in line)
        assert int(re.findall(r"resumed after seq (\d+)", resumed)[0]) >= seq1  # where it was
    finally:
        tail.send_signal(signal.SIGINT)
        tail.wait(timeout(10))
        for d in (first, second):
            if d is not None:
                stop(d)
    out.rest()
    assert tail.returncode == 130
    rest = err.rest()
    assert "gap:" not in rest and "Traceback" not in rest

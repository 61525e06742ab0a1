"""Hub fan-out benchmark: ratehub's hub against a plain ``websockets`` broadcast server.

    .venv/bin/python bench/hub_fanout.py --clients 1000,2000,5000 --seconds 20

For each N, interleaved (the order rotates with each ``--repeat``): the plain server
(``bench/hub/plain_server.py``), then ``ratehubd`` measured on its hub port
(``WEBSOCKET_PORT``, the ``websockets`` fast path) and on its API port
(``/api/rates/websocket``, uvicorn/ASGI), each a fresh process pinned to one core; the load
generator (``bench/hub/loadgen.mjs``, Node ``ws``) on the other core. Then the 200 Hz check.
See bench/README.md for what each figure means. Results: a Markdown table on stdout, JSON in
``bench/results/``. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import queue
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HUB_DIR = ROOT / "bench" / "hub"
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WS_PATH = "/api/rates/websocket"
SERVERS = ("plain", "ratehub-hub", "ratehub-api")
# Not run by default: the API port with clients that offer permessage-deflate, as browsers do;
# and each port with clients that acknowledge (``ack``) every rate frame, as confirming
# store terminals do (issue 12: at most 1.10x the CPU per message of the same port without).
EXTRA_SERVERS = (
    "ratehub-api-deflate",
    "plain-ack",
    "ratehub-hub-ack",
    "ratehub-api-ack",
    "plain-ack250",
    "ratehub-hub-ack250",
    "ratehub-api-ack250",
)
# Any of plain, ratehub-hub, ratehub-api with -ack<ms>: clients ack at most every <ms>.
ACK_EVERY = re.compile(r"(plain|ratehub-hub|ratehub-api)-ack\d+")
TARGET_CPU_RATIO = 1.25
TARGET_ACK_RATIO = 1.10
TARGET_P99_MS = 100.0
TARGET_IDLE_KIB = 25.0
TARGET_N = 2000
MAX_FPS = 20


class BenchError(Exception):
    """The harness could not run a step; the message says what to do."""


# -- processes ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (every thread), from /proc/<pid>/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def core_busy(cpu: int | None) -> float:
    """Seconds core ``cpu`` (None: all cores) has spent busy, from /proc/stat."""
    name = "cpu" if cpu is None else f"cpu{cpu}"
    for line in Path("/proc/stat").read_text().splitlines():
        parts = line.split()
        if parts[0] == name:
            ticks = [int(x) for x in parts[1:8]]
            return (sum(ticks) - ticks[3] - ticks[4]) / CLK_TCK  # minus idle and iowait
    return 0.0


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


@dataclass
class Pins:
    server: list[str]
    client: list[str]


def pins(server_cpu: int, client_cpu: int) -> Pins:
    """taskset prefixes; none when taskset is missing or either core is not ours to use."""
    taskset = shutil.which("taskset")
    if taskset is None or not {server_cpu, client_cpu} <= os.sched_getaffinity(0):
        print("hub_fanout: not pinning to cores (taskset or cores missing)", file=sys.stderr)
        return Pins([], [])
    return Pins([taskset, "-c", str(server_cpu)], [taskset, "-c", str(client_cpu)])


def raise_nofile() -> None:
    """Let this process and its children (server, Node) hold every client's socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Lines:
    """A child's stdout, line by line, readable with a timeout."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.q: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(line)
        self.q.put(None)

    def get(self, timeout: float) -> str | None:
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            return None


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[str]
    url: str  # the WebSocket URL the clients use, with {store}
    api: str | None = None  # ratehub: http://host:port
    key: str = ""
    log: Path | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self) -> dict[str, Any]:
        if self.api is None:
            return {}
        req = urllib.request.Request(
            f"{self.api}/api/system/status", headers={"Authorization": f"Bearer {self.key}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            data: dict[str, Any] = json.load(resp)["data"]
            return data

    def log_tail(self) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])


def start_plain(p: Pins, tmp: Path, frame_bytes: int) -> Server:
    log = tmp / "plain.log"
    cmd = [*p.server, sys.executable, str(HUB_DIR / "plain_server.py")]
    cmd += ["--frame-bytes", str(frame_bytes)]
    with log.open("w") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    m = re.match(r"listening (ws://\S+)", line)
    if m is None:
        stop_process(proc)
        raise BenchError(f"plain server did not start: {line!r}\n{log.read_text()}")
    return Server("plain", proc, m.group(1), log=log)


# The default pairs. With every pair of kind "crypto", the simulated feed ticks all five
# every update_frequency_ms / crypto_speedup (feed.update_frequency_ms must be >= 10).
PAIRS = {
    "USD/CAD": ("1.35", "0.0001"),
    "EUR/CAD": ("1.49", "0.0001"),
    "GBP/CAD": ("1.76", "0.0001"),
    "BTC/CAD": ("135000", "0.01"),
    "ETH/CAD": ("4500", "0.01"),
}


def ratehub_config(path: Path, clients: int, period_ms: int) -> None:
    """Every pair ticks once per ``period_ms``: 50 is 20 Hz, 5 is 200 Hz."""
    speedup = max(1, -(-10 // period_ms))
    text = (
        "[feed]\n"
        f"update_frequency_ms = {period_ms * speedup}\n"
        f"crypto_speedup = {speedup}\n"
        "seed = 1\n"
        "[hub]\n"
        f"max_connections_per_key = {clients + 100}\n"
        f"max_connections_per_store = {clients + 100}\n"
        # Room for an ack of each of (at most) 20 frames a second, with jitter.
        "messages_per_second = 40\n"
        "message_burst = 80\n"
    )
    if speedup > 1:
        for name, (start, tick) in PAIRS.items():
            text += f'[pairs."{name}"]\nstart = {start}\ntick = {tick}\nkind = "crypto"\n'
    path.write_text(text)


def start_ratehub(
    p: Pins, tmp: Path, src: Path, listener: str, clients: int, period_ms: int
) -> Server:
    """``ratehubd`` from ``src`` on port 0 with a fresh state directory; ``listener`` is
    hub or api."""
    run = Path(tempfile.mkdtemp(prefix="ratehub-", dir=tmp))
    cfg = run / "ratehub.toml"
    ratehub_config(cfg, clients, period_ms)
    key = secrets.token_urlsafe(24)
    env = {**os.environ, "API_SECRET_KEY": key, "WEBSOCKET_PORT": "0", "PYTHONPATH": str(src)}
    cmd = [*p.server, sys.executable, "-m", "ratehubd.cli", "--port", "0"]
    cmd += ["--state-dir", str(run / "state"), "--config", str(cfg)]
    log = run / "ratehubd.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env, cwd=src
        )
    out = Lines(proc)
    banner = ""
    deadline = time.monotonic() + 30
    while "Ctrl-C stops" not in banner and time.monotonic() < deadline:
        line = out.get(deadline - time.monotonic())
        if line is None:
            break
        banner += line
    api = re.search(r"API\s+(http://\S+)", banner)
    hub = re.search(r"hub port\s+(ws://\S+)", banner)
    if api is None or hub is None:
        stop_process(proc)
        raise BenchError(f"ratehubd did not start within 30 s:\n{banner}\n{log.read_text()}")
    base = hub.group(1) if listener == "hub" else api.group(1).replace("http", "ws") + WS_PATH
    url = f"{base}?clientType=store_os&storeId={{store}}&token={key}"
    return Server(f"ratehub-{listener}", proc, url, api.group(1), key, log)


class LoadGen:
    """The Node load generator: N clients, driven over stdin, one JSON reply a line."""

    def __init__(self, p: Pins, url: str, clients: int, *, mode: str, **opts: Any) -> None:
        cfg = {"url": url, "clients": clients, "mode": mode, **opts}
        cmd = [*p.client, "node", str(HUB_DIR / "loadgen.mjs"), json.dumps(cfg)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.out = Lines(self.proc)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            line = self.out.get(left)
            if line is None:
                break
            msg: dict[str, Any] = json.loads(line)
            if msg.get("event") == event:
                return msg
        err = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        raise BenchError(f"load generator: no {event!r} within {timeout:.0f} s {err}")

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def check_loadgen() -> None:
    if shutil.which("node") is None:
        raise BenchError("node is not installed; the load generator needs Node 20 or later")
    if not (HUB_DIR / "node_modules" / "ws").is_dir():
        raise BenchError(
            "the load generator's dependency is missing: run npm ci --prefix bench/hub"
        )


# -- one measurement ------------------------------------------------------------------------


@dataclass
class Opts:
    seconds: float
    warmup: float
    stores: int
    verify_every: int
    concurrency: int
    pins: Pins
    tmp: Path
    src: Path
    server_cpu: int | None = None
    client_cpu: int | None = None
    max_other: float = 100.0
    retries: int = 0
    frame_bytes: int = 0


@contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        yield server
    finally:
        stop_process(server.proc)


def connect(o: Opts, server: Server, clients: int, **extra: Any) -> LoadGen:
    every = o.verify_every or max(10, clients // 100)  # ~100 verified clients at most
    opts = {"stores": o.stores, "verifyEvery": every, "concurrency": o.concurrency}
    mode = "plain" if server.name == "plain" else "ratehub"
    lg = LoadGen(o.pins, server.url, clients, mode=mode, **{**opts, **extra})
    got = lg.wait("connected", 60 + clients / 50)
    if got["failed"]:
        lg.close()
        raise BenchError(
            f"{server.name}: {got['failed']} of {clients} clients could not connect: "
            f"{got['errors']}\n{server.log_tail()}"
        )
    return lg


def window(o: Opts, server: Server, lg: LoadGen) -> dict[str, Any]:
    """One measurement window: server CPU, the load generator's figures, the hub's own
    counters, and how busy other processes kept the two cores meanwhile."""
    status0 = server.status()
    t0, cpu0, lg0 = time.monotonic(), cpu_seconds(server.pid), lg.cpu()
    s0, c0 = core_busy(o.server_cpu), core_busy(o.client_cpu)
    lg.send("start")
    lg.wait("started", 10)
    time.sleep(o.seconds)
    lg.send("stop")
    win = lg.wait("window", 30)
    t1, cpu1, lg1 = time.monotonic(), cpu_seconds(server.pid), lg.cpu()
    s1, c1 = core_busy(o.server_cpu), core_busy(o.client_cpu)
    status1 = server.status()
    dt = t1 - t0
    cpu_rate = (cpu1 - cpu0) / dt
    msg_rate = win["framesPerSecond"]
    out = {
        "window": win,
        "serverCpuPercent": 100 * cpu_rate,
        # Other work on each core meanwhile (other processes, interrupts): noise.
        "otherOnServerCorePercent": 100 * ((s1 - s0) / dt - cpu_rate),
        "otherOnClientCorePercent": 100 * ((c1 - c0) - (lg1 - lg0)) / dt,
        "cpuUsPerMessage": 1e6 * cpu_rate / msg_rate if msg_rate else None,
        "deliveredPerSecond": msg_rate,
        "frameBytes": win["bytes"] / win["frames"] if win["frames"] else None,
        "rssLoadedKiB": rss_kib(server.pid),
    }
    if status1:
        out["hub"] = hub_delta(status0, status1, dt)
    return out


def measure(o: Opts, server: Server, lg: LoadGen) -> dict[str, Any]:
    """Warm up, measure (again, up to ``o.retries`` times, while other processes kept
    either core busier than ``o.max_other`` %; the quietest window is kept), then stop the
    server and check every client's final state."""
    time.sleep(o.warmup)
    best: dict[str, Any] | None = None
    for attempt in range(1, o.retries + 2):
        w = window(o, server, lg)
        w["attempts"] = attempt
        other = max(w["otherOnServerCorePercent"], w["otherOnClientCorePercent"])
        if best is None or other < best["otherPercent"]:
            best = {**w, "otherPercent": other}
        if other <= o.max_other:
            break
        print(f"#   other processes took {other:.0f} % of a core: again", file=sys.stderr)
    assert best is not None
    lg.send("drain 20000")
    server.proc.send_signal(signal.SIGTERM)
    best["final"] = lg.wait("final", 40)
    lg.close()
    stop_process(server.proc)
    return best


def hub_delta(s0: dict[str, Any], s1: dict[str, Any], seconds: float) -> dict[str, Any]:
    h0, h1 = s0["websocketHub"], s1["websocketHub"]
    e0, e1 = s0["rateEngine"], s1["rateEngine"]
    return {
        "ticksPerSecondPerPair": (e1["ticksAccepted"] - e0["ticksAccepted"])
        / len(e1["pairs"])
        / seconds,
        "ticksRejected": e1["ticksRejected"] - e0["ticksRejected"],
        "conflated": h1["conflated"] - h0["conflated"],
        "dropped": h1["dropped"] - h0["dropped"],
        "slowConsumerCloses": h1["slowConsumerCloses"] - h0["slowConsumerCloses"],
        "fanoutLatencyMs": h1["fanoutLatencyMs"],
        "connections": h1["connections"],
        "terminals": h1.get("terminals"),  # current / stale / unconfirmed at the window's end
    }


def idle_memory(o: Opts, server: Server, clients: int, **extra: Any) -> tuple[float, LoadGen]:
    """RSS growth of the server per connected client, the clients connected and quiet."""
    time.sleep(0.3)
    rss0 = rss_kib(server.pid)
    lg = connect(o, server, clients, **extra)
    time.sleep(0.5 + clients / 2000)  # let the server settle after the last handshake
    return (rss_kib(server.pid) - rss0) / clients, lg


def client_options(variant: str) -> dict[str, Any]:
    """What a server name's suffix asks of the clients: ``deflate``; ``ack`` (every frame)
    or ``ack250`` (the newest frame at most every 250 ms)."""
    every = variant.removeprefix("ack")
    return {
        "deflate": variant == "deflate",
        "ack": variant.startswith("ack"),
        "ackEveryMs": int(every) if every.isdigit() else 0,
    }


def run_plain(o: Opts, name: str, clients: int) -> dict[str, Any]:
    extra = client_options(name.removeprefix("plain").removeprefix("-"))
    with running(start_plain(o.pins, o.tmp, o.frame_bytes)) as server:
        idle, lg = idle_memory(o, server, clients, **extra)
        try:
            server.proc.send_signal(signal.SIGUSR1)
            res = measure(o, server, lg)
        finally:
            lg.close()
    return {"server": name, "clients": clients, "idleKiBPerConn": idle, **res}


def run_ratehub(o: Opts, name: str, clients: int) -> dict[str, Any]:
    listener, _, variant = name.removeprefix("ratehub-").partition("-")
    extra = client_options(variant)
    # Idle memory: a daemon whose feed does not tick, so the clients stay quiet.
    with running(start_ratehub(o.pins, o.tmp, o.src, listener, clients, 3_600_000)) as server:
        idle, lg = idle_memory(o, server, clients, **extra)
        lg.close()
    with running(start_ratehub(o.pins, o.tmp, o.src, listener, clients, 50)) as server:
        time.sleep(0.5)
        rss0 = rss_kib(server.pid)
        lg = connect(o, server, clients, **extra)
        try:
            res = measure(o, server, lg)
        finally:
            lg.close()
    res["loadedKiBPerConn"] = (res["rssLoadedKiB"] - rss0) / clients
    return {"server": name, "clients": clients, "idleKiBPerConn": idle, **res}


def probe_frame_bytes(o: Opts) -> int:
    """The size of the hub's rate_update frame to a store terminal (all five pairs), so the
    plain server can send frames of the same size."""
    from websockets.sync.client import connect as ws_connect

    with running(start_ratehub(o.pins, o.tmp, o.src, "hub", 10, 50)) as server:
        sizes = []
        with ws_connect(server.url.replace("{store}", "s0"), compression=None) as ws:
            for _ in range(40):  # past the first updates, while prices are still round
                text = ws.recv(timeout=10)
                assert isinstance(text, str)
                if text.startswith('{"type":"rate_update"') and '"snapshot"' not in text:
                    sizes.append(len(text.encode()))
    if len(sizes) < 20:
        raise BenchError(f"ratehubd sent {len(sizes)} rate_update frames out of 40 messages")
    return sum(sizes[10:]) // len(sizes[10:])


def run_200hz(o: Opts, clients: int, listener: str) -> dict[str, Any]:
    """The feed ticks every 5 ms: each client must still get at most 20 frames a second,
    holding the latest values."""
    with running(start_ratehub(o.pins, o.tmp, o.src, listener, clients, 5)) as server:
        lg = connect(o, server, clients, rateWindow=True, verifyEvery=1)
        try:
            res = measure(o, server, lg)
        finally:
            lg.close()
    return {"server": f"ratehub-{listener} @200Hz", "clients": clients, **res}


# -- report ---------------------------------------------------------------------------------


def _f(x: Any, fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def lost_of(r: dict[str, Any]) -> int:
    return int(r["window"]["lost"])


def final_ok(r: dict[str, Any]) -> str:
    f = r["final"]
    return f"{f['finalOk']}/{f['clients']}"


def table(results: list[dict[str, Any]]) -> str:
    head = (
        "| server | N | delivered msg/s | frames/s per client (p50 / min) | server CPU % "
        "| CPU us/msg | vs plain | send->client p50 / p99 ms | tick->client p50 / p99 ms "
        "| lost | final state ok | idle KiB/conn | frame bytes | other load % |"
    )
    rows = [head, "|" + "---|" * 14]
    plain = {(r["clients"], r.get("repeat")): r for r in results if r["server"] == "plain"}
    for r in results:
        w = r["window"]
        base = plain.get((r["clients"], r.get("repeat")))
        ratio = (
            r["cpuUsPerMessage"] / base["cpuUsPerMessage"]
            if base and r["cpuUsPerMessage"] and base["cpuUsPerMessage"]
            else None
        )
        pc = w["perClientFramesPerSecond"]
        s, t = w["sendToClientMs"], w["tickToClientMs"]
        rows.append(
            f"| {r['server']} | {r['clients']:,} | {w['framesPerSecond']:,.0f} "
            f"| {pc['p50']:.1f} / {pc['min']:.1f} | {r['serverCpuPercent']:.0f} "
            f"| {_f(r['cpuUsPerMessage'])} | {_f(ratio, '{:.2f}x')} "
            f"| {_f(s['p50'])} / {_f(s['p99'])} | {_f(t['p50'])} / {_f(t['p99'])} "
            f"| {lost_of(r)} | {final_ok(r)} | {_f(r.get('idleKiBPerConn'))} "
            f"| {_f(r['frameBytes'], '{:.0f}')} | {r['otherPercent']:.0f} |"
        )
    return "\n".join(rows)


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def summary(results: list[dict[str, Any]]) -> str:
    """Means over the rounds per server and N (p99s: the worst round), for the README."""
    by: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in results:
        by.setdefault((r["server"], r["clients"]), []).append(r)
    rows = [
        "| server | N | delivered msg/s | frames/s per client | CPU us/msg (x plain) "
        "| send->client p50 / p99 ms | tick->client p50 / p99 ms | lost | final state ok "
        "| idle KiB/conn |",
        "|" + "---|" * 10,
    ]
    for (name, n), rs in sorted(by.items(), key=lambda kv: (kv[0][1], _order(kv[0][0]))):
        ws = [r["window"] for r in rs]
        cpu = _mean([r["cpuUsPerMessage"] for r in rs])
        floor = by.get(("plain", n))
        ratio = f" ({cpu / _mean([r['cpuUsPerMessage'] for r in floor]):.2f}x)" if floor else ""
        lost = sum(lost_of(r) for r in rs)
        ok = sum(r["final"]["finalOk"] for r in rs)
        total = sum(r["final"]["clients"] for r in rs)
        rows.append(
            f"| {name} | {n:,} | {_mean([w['framesPerSecond'] for w in ws]):,.0f} "
            f"| {_mean([w['perClientFramesPerSecond']['p50'] for w in ws]):.1f} "
            f"| {cpu:.1f}{ratio} "
            f"| {_mean([w['sendToClientMs']['p50'] for w in ws]):.0f} / "
            f"{max(w['sendToClientMs']['p99'] for w in ws):.0f} "
            f"| {_mean([w['tickToClientMs']['p50'] for w in ws]):.0f} / "
            f"{max(w['tickToClientMs']['p99'] for w in ws):.0f} "
            f"| {lost} | {ok}/{total} | {_mean([r['idleKiBPerConn'] for r in rs]):.1f} |"
        )
    return "\n".join(rows)


def _order(name: str) -> int:
    known = SERVERS + EXTRA_SERVERS
    return known.index(name) if name in known else len(known)


def verdicts(results: list[dict[str, Any]], hzs: list[dict[str, Any]]) -> list[str]:
    """One line per target of issue 4: met or missed, with the figure."""
    out = []
    by: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in results:
        by.setdefault((r["server"], r["clients"]), []).append(r)
    for (name, n), rs in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if name.startswith("plain") or "-ack" in name or ("plain", n) not in by:
            # (acknowledging clients are compared with the same server without, below)
            continue
        ours = _mean([r["cpuUsPerMessage"] for r in rs])
        floor = _mean([r["cpuUsPerMessage"] for r in by[("plain", n)]])
        ok = ours <= TARGET_CPU_RATIO * floor
        out.append(
            f"{'met   ' if ok else 'MISSED'} {name} N={n}: CPU per delivered message "
            f"{ours:.1f} us = {ours / floor:.2f}x plain ({floor:.1f} us); target <= "
            f"{TARGET_CPU_RATIO}x"
        )
    for (name, n), rs in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if n != TARGET_N:
            continue
        p99 = max(r["window"]["tickToClientMs"]["p99"] or 0 for r in rs)
        lost = sum(lost_of(r) for r in rs)
        bad = sum(r["final"]["clients"] - r["final"]["finalOk"] for r in rs)
        ok = p99 < TARGET_P99_MS and lost == 0 and bad == 0
        out.append(
            f"{'met   ' if ok else 'MISSED'} {name} N={n}: p99 tick->client {p99:.1f} ms "
            f"(target < {TARGET_P99_MS:.0f}), lost {lost}, final state wrong on {bad} clients"
        )
    for (name, n), rs in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        if "-ack" in name:
            continue  # the same server as without acks: its idle memory is measured there
        kib = _mean([r["idleKiBPerConn"] for r in rs])
        ok = kib <= TARGET_IDLE_KIB
        out.append(
            f"{'met   ' if ok else 'MISSED'} {name} N={n}: {kib:.1f} KiB per idle connection "
            f"(target <= {TARGET_IDLE_KIB:.0f})"
        )
    out += ack_verdicts(by)
    for hz in hzs:
        w = hz["window"]
        most = w["maxFramesInAnySecond"]
        bad = hz["final"]["clients"] - hz["final"]["finalOk"]
        ok = most <= MAX_FPS and bad == 0 and w["checksumMismatches"] == 0
        out.append(
            f"{'met   ' if ok else 'MISSED'} {hz['server']} (feed measured at "
            f"{hz['hub']['ticksPerSecondPerPair']:.0f} ticks/s per pair), "
            f"{hz['clients']} clients: at most {most} frames in any"
            f" second (target <= {MAX_FPS}), values age p99 {w['valueAgeMs']['p99']} ms at send,"
            f" {w['checksumMismatches']} checksum mismatches, final state wrong on {bad} clients"
        )
    return out


def ack_verdicts(by: dict[tuple[str, int], list[dict[str, Any]]]) -> list[str]:
    """Acknowledging clients against the same port's clients that do not, at the same N."""
    out = []
    for (name, n), rs in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        base, _, variant = name.rpartition("-")
        if not variant.startswith("ack") or (base, n) not in by:
            continue
        ours = _mean([r["cpuUsPerMessage"] for r in rs])
        floor = _mean([r["cpuUsPerMessage"] for r in by[(base, n)]])
        errors = sum(r["window"].get("ackErrors", 0) for r in rs)
        sent = sum(r["window"].get("acksSent", 0) for r in rs)
        stale = sum(((r.get("hub") or {}).get("terminals") or {}).get("stale", 0) for r in rs)
        ok = ours <= TARGET_ACK_RATIO * floor and errors == 0 and sent > 0
        out.append(
            f"{'met   ' if ok else 'MISSED'} {name} N={n}: CPU per delivered message "
            f"{ours:.1f} us = {ours / floor:.2f}x {base} without acks ({floor:.1f} us); target "
            f"<= {TARGET_ACK_RATIO}x; {sent:,} acks, {errors} refused, {stale} terminals stale"
            " at the end"
        )
    return out


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions: dict[str, str] = {}
    for dist in ("websockets", "uvicorn"):
        versions[dist] = importlib.metadata.version(dist)
    ws_pkg = HUB_DIR / "node_modules" / "ws" / "package.json"
    if ws_pkg.exists():
        versions["node ws"] = json.loads(ws_pkg.read_text())["version"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node,
        **versions,
    }


def source_version(src: Path) -> str:
    """The commit measured: from git when ``src`` is a work tree (``-dirty`` when it has
    uncommitted changes under daemon/), else from a COMMIT file beside the code."""
    git = ["git", "-C", str(src)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        dirty = subprocess.run([*git, "status", "--porcelain", "daemon"], capture_output=True)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    commit = src / "COMMIT"
    return commit.read_text().strip() if commit.exists() else "unknown"


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description="ratehub hub fan-out against a plain websockets broadcast server",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    ap.add_argument("--clients", default="1000,2000,5000", help="comma-separated N")
    ap.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds before the window")
    ap.add_argument("--repeat", type=int, default=1, help="rounds; the order rotates")
    ap.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"which servers to run, in order; also: {', '.join(EXTRA_SERVERS)}",
    )
    ap.add_argument("--stores", type=int, default=10, help="store ids the clients spread over")
    ap.add_argument(
        "--verify-every",
        type=int,
        default=0,
        help="parse every K-th client's frames fully; 0: max(10, N / 100)",
    )
    ap.add_argument("--concurrency", type=int, default=100, help="connections in flight")
    ap.add_argument("--hz200-clients", type=int, default=100, help="0 skips the 200 Hz check")
    ap.add_argument("--hz200-seconds", type=float, default=5.0)
    ap.add_argument("--server-cpu", type=int, default=0, help="core for the server")
    ap.add_argument("--client-cpu", type=int, default=1, help="core for the load generator")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    ap.add_argument(
        "--max-other",
        type=float,
        default=15.0,
        help="measure again while other processes take more than this %% of either core",
    )
    ap.add_argument("--retries", type=int, default=3, help="at most this many times again")
    ap.add_argument("--results-dir", type=Path, default=RESULTS)
    ap.add_argument(
        "--src",
        type=Path,
        default=ROOT,
        help="where ratehubd's code comes from (e.g. a `git archive` of the commit to measure)",
    )
    return ap.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    check_loadgen()
    raise_nofile()
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = {
        s for s in servers if s not in SERVERS + EXTRA_SERVERS and not ACK_EVERY.fullmatch(s)
    }
    if unknown:
        known = ", ".join(SERVERS + EXTRA_SERVERS)
        raise BenchError(f"unknown server(s) {sorted(unknown)}; choose from {known}")
    ns = [int(x) for x in args.clients.split(",") if x.strip()]
    p = Pins([], []) if args.no_pin else pins(args.server_cpu, args.client_cpu)
    if p.client:
        os.sched_setaffinity(0, {args.client_cpu})
    results: list[dict[str, Any]] = []
    hz: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hub-fanout-") as tmp:
        o = Opts(
            args.seconds,
            args.warmup,
            args.stores,
            args.verify_every,
            args.concurrency,
            p,
            Path(tmp),
            args.src.resolve(),
            args.server_cpu if p.server else None,
            args.client_cpu if p.client else None,
            args.max_other,
            args.retries,
        )
        if any(name.startswith("plain") for name in servers):
            o.frame_bytes = probe_frame_bytes(o)
            print(f"# ratehub's frame: {o.frame_bytes} bytes", file=sys.stderr, flush=True)
        for rep in range(args.repeat):
            for n in ns:
                k = rep % len(servers)
                for name in servers[k:] + servers[:k]:
                    print(f"# round {rep + 1}, N={n}: {name}", file=sys.stderr, flush=True)
                    if name.startswith("plain"):
                        r = run_plain(o, name, n)
                    else:
                        r = run_ratehub(o, name, n)
                    r["repeat"] = rep
                    results.append(r)
        if args.hz200_clients:
            o.seconds = args.hz200_seconds
            for name in servers:
                if name in ("ratehub-hub", "ratehub-api"):
                    print(f"# 200 Hz check: {name}", file=sys.stderr, flush=True)
                    listener = name.removeprefix("ratehub-")
                    hz.append(run_200hz(o, args.hz200_clients, listener))
    info = {**machine(), "ratehub": source_version(args.src)}
    return {"machine": info, "args": vars(args), "results": results, "hz200": hz}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except BenchError as exc:
        print(f"hub_fanout: {exc}", file=sys.stderr)
        return 1
    report["verdicts"] = verdicts(report["results"], report["hz200"])
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = args.results_dir / f"hub_fanout-{stamp}.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    m = report["machine"]
    print(f"hub fan-out, {m['date']}, {m['cpu']} ({m['cores']} cores), Python {m['python']}")
    print(f"ratehub {m['ratehub']}, websockets {m['websockets']}, uvicorn {m['uvicorn']}", end="")
    print(f", Node {m['node']} (ws {m.get('node ws', '?')})\n")
    rows = report["results"] + report["hz200"]
    print(table(rows))
    if args.repeat > 1:
        print(f"\nMeans over {args.repeat} rounds:\n")
        print(summary(report["results"]))
    print()
    for line in report["verdicts"]:
        print(line)
    print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

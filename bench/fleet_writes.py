"""Fleet write throughput: override writes per second with 1, 2 and 3 nodes.

Every node is a ``ratehubd`` process on the machine's PostgreSQL (a throwaway schema) and
Redis (a throwaway channel). Clients spread over the nodes post ``POST /api/rates/set``
for distinct stores (no compare-and-set conflicts) for ``--seconds``, after a warm-up;
the figure is acknowledged writes per second over all nodes, with p50/p99 latency.

Every writing transaction in a fleet first locks the one event-counter row (seqs are
allocated in commit order, gap-free, across the fleet), so writes are serialised across
the nodes; this measures what that ceiling is here.

    .venv/bin/python bench/fleet_writes.py --nodes 1 2 3 --seconds 8 --concurrency 24
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

PG = os.environ.get("RATEHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("RATEHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
KEY = "bench-admin-secret"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def start_node(name: str, url: str, channel: str, state: Path) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "API_SECRET_KEY": KEY,
        "WEBSOCKET_PORT": "0",
        "RATEHUB_DATABASE_URL": url,
        "RATEHUB_REDIS_URL": REDIS,
        "RATEHUB_NODE_ID": name,
    }
    cmd = [sys.executable, "-m", "ratehubd.cli", "--port", "0", "--state-dir", str(state)]
    cfg = state / "bench.toml"
    state.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f'[backplane]\nchannel = "{channel}"\n[security]\nrequests_per_second = 0\n')
    proc = subprocess.Popen(
        [*cmd, "-c", str(cfg)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"API\s+http://([\d.]+):(\d+)", line)
        if m:
            # Keep reading the banner so the pipe never fills; then drain it in the background.
            subprocess.Popen(["cat"], stdin=proc.stdout, stdout=subprocess.DEVNULL)
            return proc, f"http://{m.group(1)}:{m.group(2)}"
    proc.kill()
    raise RuntimeError("ratehubd did not start:\n" + "".join(lines))


def fresh_schema() -> tuple[str, str]:
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    eng = create_engine(PG)
    with eng.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    eng.dispose()
    sep = "&" if "?" in PG else "?"
    return schema, f"{PG}{sep}options=-csearch_path%3D{schema}"


def drop_schema(schema: str) -> None:
    from sqlalchemy import create_engine, text

    eng = create_engine(PG)
    with eng.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    eng.dispose()


async def drive(urls: list[str], seconds: float, warmup: float, concurrency: int) -> dict[str, Any]:
    lat: list[float] = []
    errors = 0
    stop = time.monotonic() + warmup + seconds
    measure_from = time.monotonic() + warmup
    headers = {"Authorization": f"Bearer {KEY}"}

    async def worker(w: int) -> None:
        nonlocal errors
        url = urls[w % len(urls)]
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as c:
            i = 0
            while time.monotonic() < stop:
                i += 1
                buy = 1.37 + (i % 20) / 10_000
                body = {
                    "currencyPair": "USD/CAD",
                    "buyRate": round(buy, 4),
                    "sellRate": round(buy - 0.04, 4),
                    "storeId": f"w{w}",
                }
                t0 = time.monotonic()
                r = await c.post("/api/rates/set", json=body)
                t1 = time.monotonic()
                if r.status_code != 200:
                    errors += 1
                elif t0 >= measure_from:
                    lat.append((t1 - t0) * 1000)

    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return {
        "writesPerSecond": round(len(lat) / seconds, 1),
        "p50Ms": round(pct(lat, 0.5), 1),
        "p99Ms": round(pct(lat, 0.99), 1),
        "meanMs": round(statistics.fmean(lat), 1) if lat else None,
        "errors": errors,
    }


def run(nodes: int, seconds: float, warmup: float, concurrency: int) -> dict[str, Any]:
    schema, url = fresh_schema()
    channel = f"bench:{schema}"
    procs: list[subprocess.Popen[str]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            urls = []
            for n in range(nodes):
                proc, api = start_node(f"n{n}", url, channel, Path(tmp) / f"n{n}")
                procs.append(proc)
                urls.append(api)
            time.sleep(1.0)  # the leader takes the market in: overrides need a market mid
            got = asyncio.run(drive(urls, seconds, warmup, concurrency))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        drop_schema(schema)
    return {"nodes": nodes, "concurrency": concurrency, **got}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--concurrency", type=int, default=24)
    a = ap.parse_args()
    print("| nodes | clients | writes/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for n in a.nodes:
        r = run(n, a.seconds, a.warmup, a.concurrency)
        print(
            f"| {n} | {r['concurrency']} | {r['writesPerSecond']:,} | {r['p50Ms']} | "
            f"{r['p99Ms']} | {r['errors']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()

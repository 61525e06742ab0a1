"""Durable write throughput: overrides and lock creations acknowledged on SQLite.

    .venv/bin/python bench/writes.py [--seconds 10] [--concurrency 64] [--mode service,http]

``service`` drives the rate service in-process (engine -> writer thread with group
commit -> SQLite WAL, synchronous=FULL -> hub), so it measures the durable write path
itself. ``http`` starts ``ratehubd`` pinned to core 0 and drives it over HTTP from
this process pinned to core 1, so it also pays for HTTP parsing on both sides.
An operation counts when its acknowledgement arrived, i.e. after its commit returned.
Target (issue 3): >= 2,000 of each per second with p99 under 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KEY = "bench-admin-key"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


async def drive(
    op: Callable[[int, int], Awaitable[Any]], seconds: float, concurrency: int
) -> dict[str, float]:
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                await op(w, i)
            except Exception:
                errors += 1
            else:
                lat.append((time.perf_counter() - t0) * 1000)
            i += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - t0
    return {
        "ops": len(lat),
        "per_second": round(len(lat) / elapsed, 1),
        "p50_ms": round(pct(lat, 0.50), 2),
        "p99_ms": round(pct(lat, 0.99), 2),
        "mean_ms": round(statistics.fmean(lat), 2) if lat else float("nan"),
        "errors": errors,
    }


def override_body(w: int, i: int) -> dict[str, Any]:
    buy = ("1.3700", "1.3710", "1.3720")[i % 3]
    return {"currencyPair": "USD/CAD", "buyRate": float(buy), "sellRate": 1.33, "storeId": f"b{w}"}


def lock_body(w: int, i: int) -> dict[str, Any]:
    return {"currencyPair": "USD/CAD", "ttlSeconds": 300, "storeId": f"b{w}", "reference": f"T{i}"}


async def service_mode(seconds: float, concurrency: int) -> dict[str, Any]:
    from ratehubd import wire
    from ratehubd.config import load_config
    from ratehubd.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(
            None,
            env={"API_SECRET_KEY": KEY},
            flags={"server": {"port": 0, "hub_port": -1, "state_dir": tmp}},
        )
        rt = Runtime(cfg)
        await rt.start()
        try:
            svc = rt.service

            async def set_override(w: int, i: int) -> None:
                await svc.set_override(
                    wire.SetRateRequest.model_validate(override_body(w, i)), "bench"
                )

            async def create_lock(w: int, i: int) -> None:
                await svc.create_lock(
                    wire.LockCreateRequest.model_validate(lock_body(w, i)), "bench"
                )

            out = {
                "overrides": await drive(set_override, seconds, concurrency),
                "locks": await drive(create_lock, seconds, concurrency),
                "writer": {"batches": rt.writer.batches, "ops": rt.writer.ops},
            }
        finally:
            await rt.stop()
    return out


async def http_mode(seconds: float, concurrency: int) -> dict[str, Any]:
    import httpx

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "API_SECRET_KEY": KEY, "WEBSOCKET_PORT": "-1"}
        config = Path(tmp) / "bench.toml"
        config.write_text("[security]\nrequests_per_second = 0\n")  # measure, not throttle
        cmd = ["taskset", "-c", "0", sys.executable, "-m", "ratehubd.cli", "--port", "0"]
        cmd += ["--config", str(config)]
        proc = subprocess.Popen(
            cmd + ["--state-dir", str(Path(tmp) / "state")],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert proc.stdout is not None
        port = None
        for line in proc.stdout:
            m = re.search(r"API\s+http://[\d.]+:(\d+)", line)
            if m:
                port = int(m.group(1))
            if "Ctrl-C stops" in line:
                break
        os.sched_setaffinity(0, {1})
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        headers = {"Authorization": f"Bearer {KEY}"}
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", headers=headers, limits=limits, timeout=30
            ) as c:

                async def set_override(w: int, i: int) -> None:
                    (await c.post("/api/rates/set", json=override_body(w, i))).raise_for_status()

                async def create_lock(w: int, i: int) -> None:
                    (await c.post("/api/rates/lock", json=lock_body(w, i))).raise_for_status()

                return {
                    "overrides": await drive(set_override, seconds, concurrency),
                    "locks": await drive(create_lock, seconds, concurrency),
                }
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--mode", default="service,http")
    args = ap.parse_args()
    results: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count()}
    for mode in args.mode.split(","):
        fn = {"service": service_mode, "http": http_mode}[mode]
        results[mode] = asyncio.run(fn(args.seconds, args.concurrency))
    print("| mode | what | ops/s | p50 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for mode in args.mode.split(","):
        for what in ("overrides", "locks"):
            r = results[mode][what]
            cells = [mode, what, r["per_second"], r["p50_ms"], r["p99_ms"], r["errors"]]
            print("| " + " | ".join(str(c) for c in cells) + " |")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "writes.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""bench/tui_updates.py runs as bench/README.md says (briefly), and shows that updates are
batched: frames fed faster than the 50 ms batch interval are applied in fewer batches,
and every row ends on the last value fed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import timeout

ROOT = Path(__file__).resolve().parent.parent


def test_updates_are_batched_and_every_row_is_current() -> None:
    proc = subprocess.run(
        [sys.executable, "bench/tui_updates.py", "--pairs", "50", "--rate", "100"]
        + ["--seconds", "1", "--budget-ms", "100000", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout(60),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(proc.stdout)
    print(r)
    assert r["frames_fed"] == 100 and r["rates_fed"] == 5000
    assert r["rows_shown"] == r["rows_current"] == 50
    assert 1 <= r["batches"] < r["frames_fed"]  # 100 frames/s, at most one batch per 50 ms
    assert r["frames"] >= 1 and r["cells_updated_per_s"] > 0

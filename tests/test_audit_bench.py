"""bench/audit_verify.py runs as bench/README.md says (small, so the suite stays fast)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import timeout

ROOT = Path(__file__).resolve().parent.parent


def test_the_benchmark_builds_verifies_and_finds_a_tampered_row(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "bench/audit_verify.py", "--records", "3000", "--tamper"]
        + ["--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout(120),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verify      3,000 records in" in proc.stdout
    assert "audit chain OK: 3000 records, 1..3000" in proc.stdout
    assert "tamper  record 1,501 changed" in proc.stdout
    assert "BROKEN at record 1501" in proc.stdout
    assert list(tmp_path.iterdir()) == []  # the temporary database is gone


def test_the_benchmark_fails_when_over_budget(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "bench/audit_verify.py", "--records", "500", "--budget", "0"]
        + ["--dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout(120),
    )
    assert proc.returncode == 1
    assert "FAILED (budget 0.0 s)" in proc.stderr

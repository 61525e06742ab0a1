"""``.ci/validate``, as CI runs it: a real ``ratehubd`` on free ports, the full suite
against it, JUnit XML written, the daemon stopped, validate's exit code returned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from ratectl.validate.registry import SPECS
from tests.conftest import timeout

ROOT = Path(__file__).resolve().parent.parent


def test_ci_script_runs_the_full_suite_against_a_real_daemon(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RATECTL_", "RATEHUB_")) and k != "API_SECRET_KEY"
    }
    env["VALIDATE_OUT"] = str(tmp_path / "out")
    env["RATEHUB_PYTHON"] = sys.executable
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "validate"), "-o", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout(90),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads(done.stdout)
    assert data["suite"] == "full" and data["summary"]["result"] == "passed"
    assert [c["id"] for c in data["checks"]] == [s.id for s in SPECS]
    assert {c["result"] for c in data["checks"]} <= {"pass", "warn"}  # warn: a slow event
    suite = ET.parse(tmp_path / "out" / "validate.xml").getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == str(len(SPECS))
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    log = (tmp_path / "out" / "ratehubd.log").read_text()
    assert "ready" in log and "draining" in log  # started, then stopped gracefully
    assert "ratehubd ready at http://127.0.0.1:" in done.stderr

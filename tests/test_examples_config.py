"""examples.toml documents every key with its default, and stays in step with the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ratehubd.config import Config, load_config
from ratehubd.genconfig import generate

ROOT = Path(__file__).resolve().parent.parent


def test_examples_toml_loads_to_the_defaults() -> None:
    assert load_config(ROOT / "examples.toml", env={}) == Config()


def test_examples_toml_is_the_generated_config() -> None:
    assert (ROOT / "examples.toml").read_text() == generate(), (
        "examples.toml is stale: run `ratehubd genconfig > examples.toml`"
    )


def test_every_key_is_documented() -> None:
    text = (ROOT / "examples.toml").read_text()
    cfg = Config()
    sections = ("server", "hub", "feed", "engine", "overrides", "audit", "store", "backplane")
    for section in (*sections, "security"):
        assert f"[{section}]" in text
        for name in type(getattr(cfg, section)).model_fields:
            assert f"\n{name} =" in text or f"\n# {name} =" in text, f"{section}.{name} missing"


def test_checkconfig_and_genconfig_commands(tmp_path: Path) -> None:
    run = [sys.executable, "-m", "ratehubd.cli"]
    out = subprocess.run(run + ["genconfig"], capture_output=True, text=True, check=True)
    assert out.stdout == generate()
    ok = subprocess.run(
        run + ["checkconfig", str(ROOT / "examples.toml")], capture_output=True, text=True
    )
    assert ok.returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nport = "x"\nbogus = 1\n[engine]\ndefault_spread = "2"\n')
    res = subprocess.run(run + ["checkconfig", str(bad)], capture_output=True, text=True)
    assert res.returncode == 1
    assert "server.port" in res.stderr and "server.bogus" in res.stderr
    assert "engine.default_spread" in res.stderr

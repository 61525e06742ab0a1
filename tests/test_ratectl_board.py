"""``ratectl board-url``: the URL of a store's rate board, with a board key only when asked,
reused while the daemon still has it. CliRunner against a real ``ratehubd``."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ADMIN_KEY, DaemonProcess
from tests.ratectl_support import ctl, daemon, env, ok  # noqa: F401


def as_json(*args: str) -> dict[str, Any]:
    return dict(json.loads(ok("board-url", "-o", "json", *args).stdout))


def test_without_create_key_the_url_has_no_key(daemon: DaemonProcess) -> None:  # noqa: F811
    result = ok("board-url", "--store", "s7", "--pair", "USD/CAD", "--theme", "light")
    assert result.stdout.strip() == f"{daemon.url}/board/s7?pairs=USD%2FCAD&theme=light"
    assert "token" in result.stderr and "--create-key" in result.stderr
    keys = httpx.get(f"{daemon.url}/api/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert not any(k["name"] == "board s7" for k in keys.json()["data"])  # nothing made


def test_create_key_makes_a_store_key_bound_to_the_page_origin_and_reuses_it(
    daemon: DaemonProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    first = as_json("--store", "s8", "--create-key")
    assert first["created"] is True and first["url"].startswith(f"{daemon.url}/board/s8?token=")
    page = httpx.get(first["url"])
    assert page.status_code == 200 and "Store s8" in page.text  # the URL opens the board
    keys = httpx.get(f"{daemon.url}/api/keys", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    made = next(k for k in keys.json()["data"] if k["id"] == first["keyId"])
    assert made["role"] == "store" and made["stores"] == ["s8"]
    assert made["origins"] == [daemon.url]

    again = as_json("--store", "s8", "--create-key")
    assert (again["created"], again["keyId"], again["url"]) == (False, first["keyId"], first["url"])
    saved = list((Path(os.environ["XDG_STATE_HOME"]) / "ratectl" / "board-keys").iterdir())
    assert len(saved) == 1 and stat.S_IMODE(saved[0].stat().st_mode) == 0o600

    # Revoked on the daemon: a new one, never the dead one.
    ok("keys", "revoke", first["keyId"])
    third = as_json("--store", "s8", "--create-key")
    assert third["created"] is True and third["keyId"] != first["keyId"]
    # Other origins asked for: another key, bound to them.
    fourth = as_json("--store", "s8", "--create-key", "--origin", "https://kiosk.example")
    assert fourth["created"] is True and fourth["keyId"] != third["keyId"]


def test_bad_input_says_what_to_do() -> None:
    bad = ctl("board-url", "--store", "s1", "--base-url", "ratehub:3000")
    assert bad.exit_code == 2 and "--base-url must be an http(s) URL" in bad.stderr
    missing = ctl("board-url")
    assert missing.exit_code == 2 and "--store" in missing.output


def test_table_mode_prints_the_url_alone_in_a_subprocess(daemon: DaemonProcess) -> None:  # noqa: F811
    done = subprocess.run(
        [sys.executable, "-m", "ratectl", "board-url", "--store", "s9", "--create-key"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    assert url.startswith(f"{daemon.url}/board/s9?token=rh_") and "\n" not in url
    assert "created board key" in done.stderr

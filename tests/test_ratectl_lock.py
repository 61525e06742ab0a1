"""``ratectl lock``: every subcommand, output mode and exit code through CliRunner against a
real ``ratehubd`` process (one for the module; each test uses its own store), and once as
a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ratectl.errors import UsageError
from ratectl.locks import expires, ttl_seconds
from tests.conftest import ADMIN_KEY, DaemonProcess, timeout
from tests.ratectl_support import ctl, daemon, env, ok, runner  # noqa: F401

HEADERS = ["ID", "PAIR", "STORE", "BUY", "SELL", "STATE", "EXPIRES", "REFERENCE"]


def create(store: str, *extra: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        ok("lock", "create", "USD/CAD", "--store", store, "-o", "json", *extra).stdout
    )
    return data


# -- create -----------------------------------------------------------------------------------


def test_create_locks_the_stores_current_rates_in_a_table() -> None:
    listed = json.loads(ok("rates", "-s", "l-tab", "-o", "json").stdout)
    usd = next(r for r in listed if r["currencyPair"] == "USD/CAD")
    r = ok("lock", "create", "usd-cad", "--ttl", "5m", "--store", "l-tab", "--reference", "TX1")
    header, row = r.stdout.splitlines()
    assert header.split() == HEADERS
    lock_id, pair, store, buy, sell, state, _in, expires_in, reference = row.split()
    assert (pair, store, state, reference) == ("USD/CAD", "l-tab", "active", "TX1")
    assert float(sell) < float(buy)
    assert abs(float(buy) - usd["buyRate"]) < 0.01  # the rate of the moment
    assert expires_in in ("5m00s", "4m59s", "4m58s")
    assert r.stderr.startswith(f"lock {lock_id}: USD/CAD at l-tab: buy {buy} sell {sell}, expires")


def test_create_json_has_the_wire_shape() -> None:
    lock = create("l-json", "--ttl", "90s", "--reference", "Customer transaction #TX123")
    assert lock["currencyPair"] == "USD/CAD" and lock["storeId"] == "l-json"
    assert lock["ttlSeconds"] == 90 and lock["state"] == "active"
    assert lock["reference"] == "Customer transaction #TX123"
    assert isinstance(lock["buyRate"], float) and isinstance(lock["sellRate"], float)
    assert lock["sellRate"] < lock["rate"] < lock["buyRate"]  # type: ignore[operator]


def test_store_comes_from_the_environment() -> None:
    r = ctl("lock", "create", "EURCAD", "-o", "json", env={"RATECTL_STORE": "l-env"})
    assert r.exit_code == 0 and json.loads(r.stdout)["storeId"] == "l-env"


def test_idempotency_key_returns_the_same_lock_and_refuses_another_request() -> None:
    first = create("l-idem", "--idempotency-key", "idem-1", "--ttl", "60")
    again = ctl(
        "lock", "create", "USD/CAD", "-s", "l-idem", "--idempotency-key", "idem-1", "--ttl", "1m"
    )
    assert again.exit_code == 0
    assert first["lockId"] in again.stdout
    assert "already created with this idempotency key" in again.stderr
    other = ctl(
        "lock", "create", "USD/CAD", "-s", "l-idem", "--idempotency-key", "idem-1", "--ttl", "2m"
    )
    assert other.exit_code == 5
    assert "idempotency key 'idem-1' was used for a different lock" in other.stderr
    assert "ratectl lock show" in other.stderr


@pytest.mark.parametrize(
    ("ttl", "message"),
    [
        ("soon", "--ttl 'soon' is not a duration; write it like 90s, 5m or 300 (seconds)"),
        ("0", "must be a whole number of seconds, at least 1"),
        ("1.5s", "must be a whole number of seconds, at least 1"),
    ],
)
def test_bad_ttl_is_a_usage_error(ttl: str, message: str) -> None:
    r = ctl("lock", "create", "USD/CAD", "--ttl", ttl, "-s", "l-bad")
    assert r.exit_code == 2 and message in r.stderr


def test_the_daemon_refusing_exits_1_with_its_reason() -> None:
    r = ctl("lock", "create", "USD/CAD", "--ttl", "2d", "-s", "l-long")
    assert r.exit_code == 1 and "maximum" in r.stderr
    r = ctl("lock", "create", "XAU/CAD", "-s", "l-long")
    assert r.exit_code == 1 and "XAU/CAD" in r.stderr


def test_ttl_forms() -> None:
    assert [ttl_seconds(t) for t in ("300", "90s", "5m", "1h", " 2m30s ")] == [
        300,
        90,
        300,
        3600,
        150,
    ]
    with pytest.raises(UsageError, match="TTL 'x'"):
        ttl_seconds("x", flag="TTL")


def test_expires_is_precise_to_the_second() -> None:
    at = "2026-01-05T12:05:00.000Z"
    start = 1767614400000  # 2026-01-05T12:00:00Z
    assert expires(start, at) == "in 5m00s"
    assert expires(start + 299_500, at) == "in 0s"
    assert expires(start + 301_000, at) == "1s ago"
    assert expires(start - 3_600_000, at) == "in 1h05m"


# -- list and show ----------------------------------------------------------------------------


def test_list_filters_by_store_and_state_in_every_output_mode() -> None:
    kept = create("l-list")
    ended = create("l-list")
    ok("lock", "release", str(ended["lockId"]))
    create("l-other")
    listed = json.loads(ok("lock", "list", "--store", "l-list", "-o", "json").stdout)
    assert [lk["lockId"] for lk in listed] == [kept["lockId"], ended["lockId"]]  # oldest first
    active = ok("lock", "list", "-s", "l-list", "--state", "active", "-o", "jsonl").stdout
    assert [json.loads(line)["lockId"] for line in active.splitlines()] == [kept["lockId"]]
    table = ok("lock", "list", "-s", "l-list").stdout.splitlines()
    assert len(table) == 3 and table[1].split()[5] == "active" and table[2].split()[5] == "released"
    assert table[2].split()[6] == "-"  # an ended lock has no expiry to count down
    wide = ok("lock", "list", "-s", "l-list", "-o", "wide").stdout
    assert "IDEMPOTENCY KEY" in wide and "ENDED BY" in wide
    yaml = ok("lock", "list", "-s", "l-list", "-o", "yaml").stdout
    assert yaml.startswith(f'- lockId: "{kept["lockId"]}"\n') or yaml.startswith(
        f"- lockId: {kept['lockId']}\n"
    )
    everything = json.loads(ok("lock", "list", "-o", "json").stdout)
    assert {"l-list", "l-other"} <= {lk["storeId"] for lk in everything}


def test_empty_list_says_so_on_stderr() -> None:
    r = ok("lock", "list", "--store", "l-none", "--state", "expired")
    assert r.stdout.split() == HEADERS
    assert r.stderr.strip() == "no expired locks at store l-none"
    assert ok("lock", "list", "-s", "l-none", "-o", "json").stdout == "[]\n"
    assert ctl("lock", "list", "--state", "gone").exit_code == 2


def test_show_and_a_missing_lock() -> None:
    lock = create("l-show", "--reference", "TX9")
    shown = json.loads(ok("lock", "show", str(lock["lockId"]), "-o", "json").stdout)
    assert shown == lock
    assert "TX9" in ok("lock", "show", str(lock["lockId"])).stdout
    missing = ctl("lock", "show", "no-such-lock")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == (
        "ratectl: no lock 'no-such-lock' (list them with `ratectl lock list`)"
    )


# -- consume and release ----------------------------------------------------------------------


def test_consume_once_then_conflict() -> None:
    lock_id = str(create("l-use")["lockId"])
    r = ok("lock", "consume", lock_id, "-o", "json")
    assert r.stderr.strip() == f"lock {lock_id} consumed"
    data = json.loads(r.stdout)
    assert data["state"] == "consumed" and data["endedBy"] == "env"
    twice = ctl("lock", "consume", lock_id)
    assert twice.exit_code == 5
    assert f"lock {lock_id} is consumed" in twice.stderr
    assert ctl("lock", "release", lock_id).exit_code == 5


def test_release_then_consume_is_a_conflict() -> None:
    lock_id = str(create("l-rel")["lockId"])
    r = ok("lock", "release", lock_id)
    assert r.stderr.strip() == f"lock {lock_id} released"
    assert r.stdout.splitlines()[1].split()[5] == "released"
    assert ctl("lock", "consume", lock_id).exit_code == 5


def test_consuming_an_expired_lock_exits_5() -> None:
    lock_id = str(create("l-exp", "--ttl", "1s")["lockId"])
    time.sleep(1.2)
    r = ctl("lock", "consume", lock_id)
    assert r.exit_code == 5 and "expired" in r.stderr


def test_a_missing_lock_cannot_be_consumed_or_released() -> None:
    assert ctl("lock", "consume", "nope").exit_code == 1
    assert ctl("lock", "release", "nope").exit_code == 1
    assert ctl("lock", "show", " ").exit_code == 2


# -- reaching the daemon ------------------------------------------------------------------------


def test_unreachable_exit_3_and_wrong_key_exit_4() -> None:
    down = ctl("--url", "http://127.0.0.1:9", "lock", "list")
    assert down.exit_code == 3 and "cannot reach ratehubd" in down.stderr
    denied = ctl("lock", "list", env={"RATECTL_TOKEN": "wrong"})
    assert denied.exit_code == 4 and "invalid or revoked API key" in denied.stderr
    denied = ctl("lock", "create", "USD/CAD", "-s", "l-auth", env={"RATECTL_TOKEN": "wrong"})
    assert denied.exit_code == 4


# -- as a real process ----------------------------------------------------------------------------


def test_lock_as_a_process_never_imports_textual(daemon: DaemonProcess, tmp_path: Path) -> None:
    proc_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RATECTL_", "RATEHUB_")) and k != "API_SECRET_KEY"
    }
    proc_env.update(
        RATECTL_URL=daemon.url,
        RATECTL_TOKEN=ADMIN_KEY,
        XDG_CONFIG_HOME=str(tmp_path / "cfg"),
        XDG_STATE_HOME=str(tmp_path / "xdg-state"),
    )
    code = (
        "import sys\n"
        "from ratectl.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
        "print('textual' in sys.modules, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            env=proc_env,
            capture_output=True,
            text=True,
            timeout=timeout(20),
        )

    made = run("lock", "create", "GBP/CAD", "-s", "l-proc", "--ttl", "2m", "-o", "json")
    assert made.returncode == 0, made.stderr
    assert made.stderr.splitlines()[-1] == "False"
    lock_id = json.loads(made.stdout)["lockId"]
    used = run("lock", "consume", lock_id)
    assert used.returncode == 0 and used.stderr.splitlines()[-1] == "False"
    assert "\x1b[" not in used.stdout  # piped: no colour
    again = run("lock", "consume", lock_id)
    assert again.returncode == 5 and "Traceback" not in again.stderr


def test_the_readme_lock_commands() -> None:
    """README "ratectl lock", line by line (ID from the create)."""
    made = ok(
        "lock",
        "create",
        "USD/CAD",
        "--ttl",
        "5m",
        "--store",
        "store123",
        "--reference",
        "Customer transaction #TX123",
    )
    lock_id = made.stdout.splitlines()[1].split()[0]
    active = ok("lock", "list", "--store", "store123", "--state", "active").stdout
    assert lock_id in active and "Customer transaction #TX123" in active
    assert lock_id in ok("lock", "show", lock_id).stdout
    assert ok("lock", "consume", lock_id).stderr.strip() == f"lock {lock_id} consumed"
    assert ctl("lock", "consume", lock_id).exit_code == 5  # used once
    other = create("store123")
    assert ok("lock", "release", str(other["lockId"])).stderr.strip().endswith("released")

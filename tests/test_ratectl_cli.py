"""Every ratectl command, output mode and exit code through CliRunner, against a real
``ratehubd`` process (one for the module; each test uses its own store)."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import Result

from tests.conftest import ADMIN_KEY, DaemonProcess
from tests.ratectl_support import ctl, daemon, env, ok, runner  # noqa: F401

PAIRS = {"USD/CAD", "EUR/CAD", "GBP/CAD", "BTC/CAD", "ETH/CAD"}


def set_rate(store: str, *extra: str) -> Result:
    return ctl("set-rate", "USD/CAD", "--buy", "1.37", "--sell", "1.33", "--store", store, *extra)


# -- reads in every output mode ------------------------------------------------------------------


def test_rates_table_is_the_default() -> None:
    lines = ok("rates").stdout.splitlines()
    assert lines[0].split() == ["PAIR", "BUY", "SELL", "MID", "SPREAD", "SOURCE", "AGE"]
    assert {line.split()[0] for line in lines[1:]} == PAIRS
    for line in lines[1:]:
        _, buy, sell, mid, *_ = line.split()
        assert float(sell) < float(mid) < float(buy)


def test_rates_wide_json_jsonl_yaml() -> None:
    assert "MARKET MID" in ok("rates", "-o", "wide").stdout
    data = json.loads(ok("rates", "-o", "json", "--store", "s-json").stdout)
    assert {r["currencyPair"] for r in data} == PAIRS
    assert {r["storeId"] for r in data} == {"s-json"}
    lines = ok("rates", "-o", "jsonl").stdout.splitlines()
    assert {json.loads(line)["currencyPair"] for line in lines} == PAIRS
    yaml = ok("rates", "-o", "yaml").stdout
    assert yaml.startswith("- currencyPair: ") and yaml.count("\n- currencyPair: ") == 4


def test_output_from_env_and_bad_output_is_usage_error() -> None:
    assert json.loads(ctl("rates", env={"RATECTL_OUTPUT": "json"}).stdout)
    bad = ctl("rates", "-o", "xml")
    assert bad.exit_code == 2


def test_market_table_and_json() -> None:
    lines = ok("market").stdout.splitlines()
    assert lines[0].split() == ["PAIR", "MID", "SOURCES", "AGE"]
    data = json.loads(ok("market", "-o", "json").stdout)
    assert {q["currencyPair"] for q in data} == PAIRS
    assert all(q["sources"] for q in data)


def test_status_table_and_json() -> None:
    out = ok("status").stdout
    for section in ("websocketHub", "rateEngine", "integration"):
        assert section in out
    data = json.loads(ok("status", "-o", "json").stdout)
    assert data["integration"]["status"] == "healthy"
    assert ok("status", "-o", "yaml").stdout.startswith("websocketHub:\n  running: true\n")


# -- overrides ---------------------------------------------------------------------------------


def test_set_rate_the_issue_example_then_list_and_clear() -> None:
    r = ok(
        "set-rate",
        "USD/CAD",
        "--buy",
        "1.37",
        "--sell",
        "1.33",
        "--store",
        "store123",
        "--valid-for",
        "1h",
        "--reason",
        "High demand period",
    )
    assert r.stderr.startswith("override set: USD/CAD at store123 until ")
    row = r.stdout.splitlines()[1].split()
    assert row[:3] == ["USD/CAD", "1.3700", "1.3300"] and row[5] == "manual"
    listed = json.loads(ok("overrides", "--store", "store123", "-o", "json").stdout)
    [ov] = [o for o in listed if o["storeId"] == "store123"]
    assert (ov["reason"], ov["buyRate"], ov["sellRate"]) == ("High demand period", 1.37, 1.33)
    until = datetime.fromisoformat(ov["validUntil"].replace("Z", "+00:00"))
    assert timedelta(minutes=58) < until - datetime.now(UTC) <= timedelta(hours=1)
    table = ok("overrides", "--store", "store123").stdout
    assert "High demand period" in table and "store123" in table
    assert "VERSION" in ok("overrides", "-s", "store123", "-o", "wide").stdout
    cleared = ok("clear-rate", "USD/CAD", "--store", "store123", "-o", "json")
    assert "override cleared: USD/CAD at store123" in cleared.stderr
    assert json.loads(cleared.stdout)["source"] != "manual"
    again = ctl("clear-rate", "usd-cad", "--store", "store123")
    assert again.exit_code == 1
    assert "no active override for USD/CAD at store123" in again.stderr


def test_set_rate_json_output_and_spread_form() -> None:
    data = json.loads(
        ok("set-rate", "EURCAD", "--spread", "3%", "-s", "s-spread", "-o", "json").stdout
    )
    assert data["currencyPair"] == "EUR/CAD" and data["storeId"] == "s-spread"
    assert data["provenance"]["override"]["spread"] == 0.03


def test_set_rate_store_from_env() -> None:
    r = ctl(
        "set-rate",
        "USD/CAD",
        "--buy",
        "1.37",
        "--sell",
        "1.33",
        "-o",
        "json",
        env={"RATECTL_STORE": "s-env"},
    )
    assert r.exit_code == 0 and json.loads(r.stdout)["storeId"] == "s-env"


def test_conflict_exits_5() -> None:
    assert set_rate("s-cas").exit_code == 0
    r = set_rate("s-cas", "--expected-version", "99")
    assert r.exit_code == 5
    assert "not 99" in r.stderr and "retry" in r.stderr
    assert set_rate("s-cas", "--expected-version", "1").exit_code == 0


def test_the_daemon_refusing_exits_1_with_its_reason() -> None:
    r = ctl("set-rate", "USD/CAD", "--buy", "1.30", "--sell", "1.33", "--store", "s-inv")
    assert r.exit_code == 1
    assert r.stderr.startswith("ratectl: buyRate 1.3 must be greater than sellRate 1.33")
    r = ctl("set-rate", "XAU/CAD", "--buy", "1", "--sell", "0.9")
    assert r.exit_code == 1 and "XAU/CAD" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--buy", "abc", "--sell", "1.33"], "--buy 'abc' is not a number"),
        (["--buy", "1.37", "--sell", "1.33", "--valid-for", "soon"], "not a duration"),
        (
            ["--buy", "1.37", "--sell", "1.33", "--valid-for", "1h", "--valid-until", "2030-01-01"],
            "not both",
        ),
        ([], "give --buy and --sell"),
    ],
)
def test_bad_set_rate_input_is_usage_error(args: list[str], message: str) -> None:
    r = ctl("set-rate", "USD/CAD", *args)
    assert r.exit_code == 2 and message in r.stderr


# -- failures ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", [["rates"], ["status"], ["tail", "--count", "1"]])
def test_unreachable_daemon_exits_3_with_one_line(command: list[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    r = ctl("--url", url, *command)
    assert r.exit_code == 3
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1
    assert "cannot reach" in r.stderr and url in r.stderr


@pytest.mark.parametrize(
    "command", [["rates"], ["set-rate", "USD/CAD", "--spread", "0.03"], ["tail"]]
)
def test_wrong_key_exits_4(command: list[str]) -> None:
    r = ctl(*command, env={"RATECTL_TOKEN": "not-the-key"})
    assert r.exit_code == 4
    assert "invalid or revoked API key" in r.stderr
    assert "not-the-key" not in r.output


def test_no_key_exits_4_and_says_where_keys_come_from() -> None:
    r = ctl("rates", env={"RATECTL_TOKEN": None})
    assert r.exit_code == 4
    assert "RATECTL_TOKEN" in r.stderr and "--token-file" in r.stderr


def test_token_file_flag(tmp_path: Path) -> None:
    key = tmp_path / "k"
    key.write_text(ADMIN_KEY + "\n")
    r = ctl("--token-file", str(key), "rates", "-o", "json", env={"RATECTL_TOKEN": None})
    assert r.exit_code == 0, r.output


def test_a_server_that_is_not_ratehubd_exits_1(daemon: DaemonProcess) -> None:
    assert daemon.hub_url is not None
    url = daemon.hub_url.replace("ws://", "http://").removesuffix("/api/rates/websocket")
    r = ctl("--url", url, "rates")
    assert r.exit_code == 1
    assert "not a ratehubd API envelope" in r.stderr


def test_timeout_flag_is_validated() -> None:
    assert ctl("--timeout", "0", "rates").exit_code == 2


# -- tail --------------------------------------------------------------------------------------


def test_tail_jsonl_starts_with_a_snapshot() -> None:
    lines = ok("tail", "--store", "s-tail", "-o", "jsonl", "--count", "1").stdout.splitlines()
    [first] = [json.loads(line) for line in lines]
    assert first["type"] == "rate_update" and first["data"]["snapshot"] is True
    assert {r["currencyPair"] for r in first["data"]["rates"]} == PAIRS
    assert isinstance(first["seq"], int) and first["epoch"]


def test_tail_filters_pairs() -> None:
    out = ok("tail", "--pairs", "usdcad,EUR/CAD", "-o", "json", "--count", "1").stdout
    msg = json.loads(out)
    assert {r["currencyPair"] for r in msg["data"]["rates"]} == {"USD/CAD", "EUR/CAD"}


def test_tail_events_filter_sees_an_override(daemon: DaemonProcess) -> None:
    def later() -> None:
        body = {"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33, "storeId": "s-ev"}
        httpx.post(
            f"{daemon.url}/api/rates/set",
            json=body,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )

    timer = threading.Timer(0.5, later)
    timer.start()
    try:
        r = ok("tail", "-s", "s-ev", "--events", "rate_override_set", "-o", "jsonl", "--count", "1")
    finally:
        timer.join()
    msg: dict[str, Any] = json.loads(r.stdout)
    assert msg["type"] == "rate_override_set"
    assert (msg["data"]["storeId"], msg["data"]["buyRate"]) == ("s-ev", 1.37)


def test_tail_table_lines() -> None:
    out = ok("tail", "--count", "1").stdout
    assert len(out.splitlines()) == len(PAIRS)
    assert all(" rate_update " in line and "snapshot" in line for line in out.splitlines())


def test_tail_warns_about_unknown_event_names() -> None:
    r = ok("tail", "--events", "rate_update,bogus_event", "--count", "1", "-o", "jsonl")
    assert "'bogus_event' is not a type this ratectl knows" in r.stderr


def test_tail_rejects_a_bad_pair() -> None:
    r = ctl("tail", "--pairs", "dollars")
    assert r.exit_code == 2 and "not a currency pair" in r.stderr


# -- completion --------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script(shell: str) -> None:
    out = ok("completion", shell).stdout
    assert "ratectl" in out and "set-rate" in out
    assert ctl("completion", "tcsh").exit_code == 2


def test_version_and_no_command() -> None:
    assert ok("--version").stdout == "ratectl 0.1.0\n"
    assert ctl().exit_code == 2


def parses_as(fmt: str, out: str) -> None:
    if fmt == "json":
        json.loads(out)
    elif fmt == "jsonl":
        assert out and all(json.loads(line) is not None for line in out.splitlines())
    elif fmt == "yaml":
        first = out.splitlines()[0]
        assert first.startswith(("- ", "---")) or first.endswith(":") or ": " in first
        assert "{" not in first  # block style, not JSON
    else:
        assert out.splitlines()[0].split()[0] in ("PAIR", "websocketHub", "KEY", "CURRENT")


@pytest.mark.parametrize("fmt", ["table", "wide", "json", "jsonl", "yaml"])
@pytest.mark.parametrize(
    "command",
    [
        ["rates"],
        ["market"],
        ["overrides"],
        ["status"],
        ["config", "view"],
        ["set-rate", "GBP/CAD", "--spread", "0.025", "-s", "s-fmt"],
        ["clear-rate", "GBP/CAD", "-s", "s-fmt"],
    ],
)
def test_every_command_in_every_output_format(command: list[str], fmt: str) -> None:
    if command[0] == "clear-rate":
        assert ctl("set-rate", "GBP/CAD", "--spread", "0.025", "-s", "s-fmt").exit_code == 0
    if command[0] == "overrides":
        assert ctl("set-rate", "GBP/CAD", "--spread", "0.025", "-s", "s-ov").exit_code == 0
    parses_as(fmt, ok(*command, "-o", fmt).stdout)


@pytest.mark.parametrize("fmt", ["table", "wide", "json", "jsonl", "yaml"])
def test_tail_in_every_output_format(fmt: str) -> None:
    out = ok("tail", "--pairs", "USD/CAD", "--count", "1", "-o", fmt).stdout
    if fmt in ("table", "wide"):
        assert out.split()[1:3] == ["rate_update", "USD/CAD"]
    elif fmt == "yaml":
        assert out.startswith("---\ntype: rate_update\n")
    else:
        assert json.loads(out)["type"] == "rate_update"


@pytest.mark.parametrize("fmt", ["table", "json", "yaml"])
def test_context_list_formats(fmt: str) -> None:
    assert ctl("context", "add", "here", "--url", "http://127.0.0.1:3000").exit_code == 0
    out = ok("context", "list", "-o", fmt).stdout
    if fmt == "table":
        assert out.splitlines()[1].split()[:2] == ["*", "here"]
    elif fmt == "json":
        assert json.loads(out)[0]["name"] == "here"
    else:
        assert out.startswith("- name: here\n")

"""``ratectl keys`` and ``ratectl audit``: every subcommand, output mode and exit code
through CliRunner against a real ``ratehubd`` (one for the module), a tampered chain in a
daemon of its own, and the pure renderers as text."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType

from ratectl import audit as trail
from ratectl import keys
from ratectl.cli_audit import RecordType
from ratectl.errors import UsageError
from ratehubd.engine.audit import AUDIT_TYPES
from tests.conftest import start_daemon
from tests.ratectl_support import ctl, daemon, env, ok, runner  # noqa: F401


def create(name: str, *args: str) -> dict[str, Any]:
    return dict(json.loads(ok("keys", "create", name, "-o", "json", *args).stdout))


# -- keys ------------------------------------------------------------------------------------


def test_create_prints_the_secret_once_with_a_warning() -> None:
    result = ok("keys", "create", "store9 pos", "--role", "store", "-s", "store9", "-s", "store10")
    secret = result.stdout.strip()
    assert secret.startswith("rh_") and "\n" not in secret  # alone: KEY=$(ratectl keys ...)
    assert "will not be shown again" in result.stderr
    assert "(store: store10, store9)" in result.stderr
    rates = ok("rates", "--store", "store9", env={"RATECTL_TOKEN": secret})
    assert "USD/CAD" in rates.stdout
    listed = ok("keys", "list", "-o", "json").stdout + ok("keys", "list", "-o", "wide").stdout
    assert secret not in listed and secret.split("_", 2)[2] not in listed


def test_create_json_has_the_secret_and_list_shows_every_key() -> None:
    made = create("dashboard", "--role", "read-only", "--origin", "https://dash.example.com")
    assert made["secret"].startswith(f"rh_{made['id']}_")
    assert made["origins"] == ["https://dash.example.com"]
    lines = ok("keys", "list").stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "ROLE", "STORES", "STATE"]
    assert any(line.startswith(made["id"]) and "read-only" in line for line in lines)
    assert any(line.startswith("env ") for line in lines)  # API_SECRET_KEY
    assert "ORIGINS" in ok("keys", "list", "-o", "wide").stdout


def test_revoke_then_again_is_a_conflict() -> None:
    made = create("old feed", "--role", "feed")
    result = ok("keys", "revoke", made["id"], "--reason", "rotated", "-o", "json")
    assert json.loads(result.stdout)["revokedAt"] is not None
    assert "WebSocket sessions were closed" in result.stderr
    again = ctl("keys", "revoke", made["id"])
    assert again.exit_code == 5 and "already revoked" in again.stderr
    missing = ctl("keys", "revoke", "nosuchkey")
    assert missing.exit_code == 1 and "ratectl keys list" in missing.stderr
    refused = ctl("market", env={"RATECTL_TOKEN": made["secret"]})
    assert refused.exit_code == 4


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (("keys", "create", "t", "--role", "store"), 1, "needs at least one store"),
        (("keys", "create", "t", "--role", "feed", "-s", "s1"), 1, "only store keys"),
        (("keys", "create", "t", "--role", "boss"), 2, "boss"),
        (("keys", "create", "t", "--role", "feed", "--origin", "x.io"), 1, "not a browser"),
    ],
)
def test_bad_create_says_what_to_change(args: tuple[str, ...], code: int, needle: str) -> None:
    result = ctl(*args)
    assert result.exit_code == code and needle in result.output


def test_a_store_key_may_not_manage_keys_or_read_the_audit_trail() -> None:
    secret = create("pos", "--role", "store", "-s", "s7")["secret"]
    for args in (("keys", "list"), ("audit",), ("audit", "verify")):
        result = ctl(*args, env={"RATECTL_TOKEN": secret})
        assert result.exit_code == 4, result.output
        assert "keys:manage" in result.stderr or "audit:read" in result.stderr


# -- audit -----------------------------------------------------------------------------------


def test_audit_filters_and_formats() -> None:
    made = create("audited", "--role", "feed")
    ok("keys", "revoke", made["id"], "--reason", "test")
    ok("set-rate", "USD/CAD", "--buy", "1.37", "--sell", "1.33", "--store", "s-audit")
    records = json.loads(
        ok("audit", "--type", "key_created", "--type", "key_revoked", "-o", "json").stdout
    )
    assert {r["type"] for r in records} == {"key_created", "key_revoked"}
    assert [r["seq"] for r in records] == sorted((r["seq"] for r in records), reverse=True)
    mine = json.loads(ok("audit", "--store", "s-audit", "--since", "1h", "-o", "json").stdout)
    assert [(r["type"], r["pair"]) for r in mine] == [("override_set", "USD/CAD")]
    assert json.loads(ok("audit", "--actor", "env", "--limit", "1", "-o", "json").stdout)
    assert json.loads(ok("audit", "--until", "2001-01-01T00:00:00Z", "-o", "json").stdout) == []
    table = ok("audit", "--pair", "usd-cad").stdout.splitlines()
    assert table[0].split() == ["SEQ", "TIME", "TYPE", "ACTOR", "STORE", "PAIR", "REASON"]
    assert any("override_set" in line and "s-audit" in line for line in table)
    rows = list(csv.DictReader(io.StringIO(ok("audit", "-o", "csv", "-t", "key_revoked").stdout)))
    revoked = next(r for r in rows if json.loads(r["before"])["id"] == made["id"])
    assert (
        revoked["reason"] == "test" and revoked["time"].endswith("Z") and len(revoked["hash"]) == 64
    )


def test_audit_bad_time_is_a_usage_error() -> None:
    result = ctl("audit", "--since", "yesterday")
    assert result.exit_code == 2 and "30m, 24h or 7d" in result.stderr


def test_verify_ok_then_a_tampered_record_is_named(tmp_path: Path) -> None:
    result = ok("audit", "verify")
    line = result.stdout.strip()
    assert line.startswith("audit chain OK: ") and "\n" not in line
    d = start_daemon(tmp_path / "state")  # its own daemon: this test breaks its chain
    try:
        env: dict[str, str | None] = {"RATECTL_URL": d.url}
        for name in ("a", "b", "c"):
            ok("keys", "create", name, "--role", "feed", env=env)
        assert ctl("audit", "verify", env=env).exit_code == 0
        with sqlite3.connect(d.state_dir / "ratehub.db") as db:
            db.execute("update audit set actor = 'someone-else' where seq = 2")
        broken = ctl("audit", "verify", env=env)
        assert broken.exit_code == 1
        assert "BROKEN at record 2" in broken.stderr and broken.stdout == ""
        data = ctl("audit", "verify", "-o", "json", env=env)
        assert data.exit_code == 1 and json.loads(data.stdout)["problem"]["seq"] == 2
        with sqlite3.connect(d.state_dir / "ratehub.db") as db:
            db.execute("delete from audit where seq = 2")
        assert "record 2" in ctl("audit", "verify", env=env).stderr
    finally:
        d.stop()
        if d.proc.stdout:
            d.proc.stdout.close()


# -- pure parts, as text ---------------------------------------------------------------------


def text(renderable: RenderableType, width: int = 160) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


RECORD = {
    "seq": 7,
    "ts_us": 1_767_614_400_123_456,
    "type": "override_set",
    "actor": "0a1b2c3d",
    "store_id": "store123",
    "pair": "USD/CAD",
    "before": {"buyRate": "1.37", "sellRate": "1.33", "version": 1},
    "after": {"buyRate": "1.38", "sellRate": "1.33", "version": 2},
    "reason": "High demand",
    "source": "manual",
    "prev_hash": "a" * 64,
    "hash": "b" * 64,
}


def test_record_table_as_text() -> None:
    assert text(trail.record_table([RECORD])).splitlines() == [
        "SEQ  TIME                      TYPE          ACTOR     STORE     PAIR     REASON",
        "7    2026-01-05T12:00:00.123Z  override_set  0a1b2c3d  store123  USD/CAD  High demand",
    ]
    wide = text(trail.record_table([RECORD], wide=True))
    assert "buyRate 1.37->1.38, version 1->2" in wide and "bbbbbbbbbbbb" in wide


def test_change_summaries() -> None:
    assert trail.change(None, {"id": "k1", "role": "feed", "stores": []}) == "new: id=k1 role=feed"
    assert trail.change({"a": 1}, None) == "gone: a=1"
    assert trail.change(None, None) == "-"
    assert trail.change({"a": "x" * 80}, {"a": "y"}, width=20) == "a " + "x" * 15 + "..."


def test_csv_rows() -> None:
    rows = list(csv.reader(io.StringIO(trail.to_csv([RECORD, {**RECORD, "before": None}]))))
    assert rows[0] == list(trail.CSV_FIELDS)
    assert rows[1][1] == "2026-01-05T12:00:00.123Z" and json.loads(rows[1][8])["version"] == 1
    assert rows[2][8] == ""


def test_verify_line() -> None:
    good = {"ok": True, "checked": 5, "start": {"seq": 0}, "end": {"seq": 5, "hash": "c" * 64}}
    assert trail.verify_line(good) == f"audit chain OK: 5 records, 1..5, head {'c' * 64}"
    assert trail.verify_line({"ok": True, "checked": 0}) == "audit chain OK: no records yet"
    bad = {"ok": False, "problem": {"seq": 2, "kind": "changed", "message": "record 2 was changed"}}
    assert trail.verify_line(bad) == "audit chain BROKEN at record 2: record 2 was changed"


def test_when_takes_times_and_ages() -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert trail.when("90m", "--since", now) == "2026-01-05T10:30:00Z"
    assert trail.when("1d12h", "--since", now) == "2026-01-04T00:00:00Z"
    assert trail.when("2026-01-01T08:00:00Z", "--since", now) == "2026-01-01T08:00:00Z"
    assert trail.when("2026-01-01T08:00:00", "--until", now) == "2026-01-01T08:00:00Z"
    with pytest.raises(UsageError, match="--until 'soon'"):
        trail.when("soon", "--until", now)


def test_key_table_as_text() -> None:
    rows = [
        {"id": "env", "name": "API_SECRET_KEY", "role": "admin", "stores": [], "origins": []},
        {
            "id": "0a1b2c3d",
            "name": "pos",
            "role": "store",
            "stores": ["s1", "s2"],
            "origins": ["https://a.example"],
            "createdAt": "2026-01-05T12:00:00.000Z",
            "revokedAt": "2026-01-06T12:00:00.000Z",
        },
    ]
    assert text(keys.key_table(rows)).splitlines() == [
        "ID        NAME            ROLE   STORES  STATE",
        "env       API_SECRET_KEY  admin  -       active",
        "0a1b2c3d  pos             store  s1, s2  revoked",
    ]
    wide = text(keys.key_table(rows, wide=True))
    assert "(environment)" in wide and "https://a.example" in wide and "any" in wide
    assert (
        keys.describe(rows[1])
        == 'key 0a1b2c3d "pos" (store: s1, s2; browsers from https://a.example)'
    )


def test_record_types_match_the_daemon() -> None:
    assert set(trail.TYPES) == AUDIT_TYPES == {t.value for t in RecordType}

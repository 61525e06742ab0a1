"""Fleet configuration: [store] and [backplane], their environment variables, and
service URLs whose passwords never show (errors, repr, status, banner, logs)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from ratehubd.adapters.redis_backplane import RedisBackplane
from ratehubd.config import Config, load_config
from ratehubd.errors import ConfigError
from ratehubd.urls import normalize_database_url, redact_url
from tests.conftest import ADMIN_KEY, timeout

PG = "postgresql+psycopg://ratehub:s3cret@db.example:5432/ratehub"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (PG, "postgresql+psycopg://ratehub:***@db.example:5432/ratehub"),
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("rediss://default:s3cret@cache:6380/1", "rediss://default:***@cache:6380/1"),
        (
            "postgresql+psycopg://u@h/db?password=s3cret&sslmode=require",
            "postgresql+psycopg://u@h/db?password=***&sslmode=require",
        ),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("", ""),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_usual_postgres_spellings_select_psycopg() -> None:
    for url in ("postgres://u@h/db", "postgresql://u@h/db"):
        assert normalize_database_url(url) == "postgresql+psycopg://u@h/db"


def test_defaults_are_one_node_on_sqlite() -> None:
    cfg = load_config(None, env={})
    assert cfg.store.url == "" and cfg.backplane.url == ""
    assert cfg.backplane.channel == "ratehub:events"


def test_environment_variables_set_up_a_fleet() -> None:
    env = {
        "RATEHUB_DATABASE_URL": "postgres://ratehub:s3cret@db/ratehub",
        "RATEHUB_REDIS_URL": "redis://cache:6379/0",
        "RATEHUB_NODE_ID": "node-2",
    }
    cfg = load_config(None, env=env)
    assert cfg.store.url == "postgresql+psycopg://ratehub:s3cret@db/ratehub"
    assert cfg.backplane.url == "redis://cache:6379/0"
    assert cfg.backplane.node_id == "node-2"


def test_repr_of_the_config_never_holds_a_password() -> None:
    cfg = load_config(
        None,
        env={"RATEHUB_DATABASE_URL": PG, "RATEHUB_REDIS_URL": "redis://:s3cret@cache/0"},
    )
    assert "s3cret" not in repr(cfg) and "s3cret" not in str(cfg.store)


def test_a_redis_backplane_without_postgresql_says_what_to_set() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, env={"RATEHUB_REDIS_URL": "redis://cache:6379/0"})
    assert "needs a shared database" in err.value.message
    assert "RATEHUB_DATABASE_URL" in err.value.message


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"RATEHUB_DATABASE_URL": "mysql://u:s3cret@h/db"}, "store.url: Value error, must be"),
        ({"RATEHUB_REDIS_URL": "http://u:s3cret@h/"}, "backplane.url: Value error, must be"),
        ({"RATEHUB_NODE_ID": "a|b"}, "backplane.node_id: Value error, may not contain"),
    ],
)
def test_bad_urls_are_refused_with_the_key_and_without_the_password(
    env: dict[str, str], words: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, env=env)
    assert words in err.value.message
    assert "environment variable RATEHUB_" in err.value.message
    assert "s3cret" not in err.value.message


def test_checkconfig_names_the_bad_url_without_its_password(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[store]\nurl = "mysql://u:s3cret@h/db"\n')
    out = subprocess.run(
        [sys.executable, "-m", "ratehubd.cli", "checkconfig", str(path)],
        capture_output=True,
        text=True,
        timeout=timeout(30),
    )
    assert out.returncode == 1
    assert "store.url" in out.stderr and "s3cret" not in out.stderr + out.stdout


async def test_backplane_status_and_logs_never_show_the_password(
    channel: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "ratehub.backplane")
    bp = RedisBackplane("redis://:s3cret@127.0.0.1:1/0", channel, "n1")
    try:
        assert await bp.start(0.2) is False
        assert bp.status()["url"] == "redis://:***@127.0.0.1:1/0"
    finally:
        await bp.stop()
    assert caplog.records and all("s3cret" not in r.getMessage() for r in caplog.records)


async def test_a_node_on_a_password_url_shows_it_redacted(
    make_config: Callable[..., Config], pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from ratehubd.cli import _banner
    from ratehubd.runtime import Runtime

    url = pg_url.replace("postgres@", "postgres:s3cret@", 1)  # trust auth ignores it
    rt = Runtime(make_config(store={"url": url}))
    await rt.start()
    try:
        _banner(rt)
        status = rt.status()
    finally:
        await rt.stop()
    banner = capsys.readouterr().out
    assert "postgres:***@" in banner and "s3cret" not in banner
    assert "s3cret" not in repr(status) and status["integration"]["database"] == "postgresql"
    assert ADMIN_KEY not in banner

"""The external services a few tests need: PostgreSQL and Redis on 127.0.0.1.

One rule for every such test, here and nowhere else: when the service is not
reachable the test is skipped with the reason, except under ``CI=true``, where a
missing service is a failure (CI has both; a skip there would hide a broken fleet).

``pg_url`` gives each test a fresh PostgreSQL schema (its URL sets ``search_path``)
and drops it afterwards; ``redis_url`` gives the server's URL, and ``channel`` a
channel name no other test uses. Addresses can be moved with RATEHUB_TEST_PG_URL
and RATEHUB_TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

PG_URL = os.environ.get("RATEHUB_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RATEHUB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(service: str, why: str) -> None:
    """Skip (on a developer's machine) or fail (in CI): a needed service is missing."""
    message = f"{service} is not available: {why}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: CI must provide it; see .ci/run)", pytrace=False)
    pytest.skip(message)


def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A SQLAlchemy URL to a fresh, empty schema; the schema is dropped afterwards."""
    try:
        import psycopg
    except ImportError as exc:
        unavailable("PostgreSQL", f"psycopg is not installed ({exc})")
    schema = f"ratehub_test_{secrets.token_hex(4)}"
    try:
        conn = psycopg.connect(_pg_conninfo(PG_URL), connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        unavailable("PostgreSQL", f"cannot connect to {PG_URL}: {exc}".strip())
    with conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(_pg_conninfo(PG_URL), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def redis_url() -> str:
    try:
        import redis
    except ImportError as exc:
        unavailable("Redis", f"redis-py is not installed ({exc})")
    parts = urlsplit(REDIS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 3):
            pass
        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except (OSError, redis.RedisError) as exc:
        unavailable("Redis", f"cannot reach {REDIS_URL}: {exc}")
    return REDIS_URL


@pytest.fixture
def channel() -> str:
    """A Redis channel of this test's own."""
    return f"ratehub-test-{secrets.token_hex(4)}"

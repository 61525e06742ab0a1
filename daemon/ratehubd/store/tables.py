"""SQLModel table models. These are storage rows, apart from the wire models.

Decimals are stored as text so SQLite keeps them exact; times as epoch
microseconds (an integer sorts and compares the same on SQLite and PostgreSQL),
in 64-bit columns (``BIG``: PostgreSQL's INTEGER is 32 bits). Sequence keys are
BIGINT on PostgreSQL and stay INTEGER PRIMARY KEY (the rowid) on SQLite.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlmodel import Field, SQLModel

BIG = BigInteger
SEQ = BigInteger().with_variant(Integer(), "sqlite")

SCHEMA_VERSION = 1


class MetaRow(SQLModel, table=True):
    __tablename__ = "meta"

    key: str = Field(primary_key=True)
    value: str


class OverrideRow(SQLModel, table=True):
    __tablename__ = "overrides"

    id: str = Field(primary_key=True)
    pair: str = Field(index=True)
    store_id: str | None = Field(default=None, index=True)
    buy: str | None = None
    sell: str | None = None
    spread: str | None = None
    valid_until_us: int = Field(sa_type=BIG)
    reason: str
    author: str
    source: str
    version: int
    created_us: int = Field(sa_type=BIG)
    # active -> cleared | expired; ended_us and ended_by say when and who.
    status: str = Field(default="active", index=True)
    ended_us: int | None = Field(default=None, sa_type=BIG)
    ended_by: str | None = None


class MarketRow(SQLModel, table=True):
    """The last accepted market quote per pair, so a restart resumes from it."""

    __tablename__ = "market"

    pair: str = Field(primary_key=True)
    mid: str
    sources: str
    ts_us: int = Field(sa_type=BIG)


class EventRow(SQLModel, table=True):
    """The hub's log of discrete events (overrides, locks, breaches), for resume."""

    __tablename__ = "events"

    seq: int = Field(primary_key=True, sa_type=SEQ, sa_column_kwargs={"autoincrement": False})
    store_id: str | None = Field(default=None, index=True)
    type: str
    payload: str
    ts_us: int = Field(sa_type=BIG)


class LockRow(SQLModel, table=True):
    """A rate lock; ``state`` moves once from active to consumed, released or expired."""

    __tablename__ = "locks"

    id: str = Field(primary_key=True)
    pair: str
    store_id: str | None = Field(default=None, index=True)
    buy: str
    sell: str
    mid: str
    reference: str
    author: str
    created_us: int = Field(sa_type=BIG)
    expires_us: int = Field(index=True, sa_type=BIG)
    idempotency_key: str | None = Field(default=None, unique=True)
    state: str = Field(default="active", index=True)
    ended_us: int | None = Field(default=None, sa_type=BIG)
    ended_by: str | None = None


class ApiKeyRow(SQLModel, table=True):
    """An API key: only a salted SHA-256 of its secret is kept."""

    __tablename__ = "api_keys"

    id: str = Field(primary_key=True)
    name: str
    role: str
    stores: str = ""  # comma-separated store ids for the store role
    origins: str = ""  # comma-separated browser origins the key may be used from; empty: any
    salt: str
    hash: str
    created_us: int = Field(sa_type=BIG)
    revoked_us: int | None = Field(default=None, sa_type=BIG)


class AuditRow(SQLModel, table=True):
    """One audit record, chained to the one before by ``prev_hash`` (ratehubd.engine.audit).

    Append-only: written by ratehubd.store.audit, never updated; only retention prunes the
    oldest. ``before``/``after`` hold canonical JSON text, hashed exactly as stored.
    """

    __tablename__ = "audit"

    seq: int = Field(primary_key=True, sa_type=SEQ, sa_column_kwargs={"autoincrement": False})
    ts_us: int = Field(index=True, sa_type=BIG)
    type: str
    actor: str = Field(index=True)
    store_id: str | None = Field(default=None, index=True)
    pair: str | None = Field(default=None, index=True)
    before: str | None = None
    after: str | None = None
    reason: str | None = None
    source: str | None = None
    prev_hash: str
    hash: str

"""API key rows: insert, revoke, load and list ``api_keys``. Only salted hashes are stored.

Writes take the caller's Session (the writer's transaction), so a key and the audit
record of its creation or revocation commit together.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, inspect, text
from sqlmodel import Session, select

from ratehubd import wire
from ratehubd.auth import ApiKey
from ratehubd.errors import Conflict, NotFound
from ratehubd.store.repository import from_us
from ratehubd.store.tables import ApiKeyRow


def ensure_schema(engine: Engine) -> None:
    """Databases created before keys had origins get the column (empty: any origin)."""
    columns = {c["name"] for c in inspect(engine).get_columns("api_keys")}
    if "origins" not in columns:
        with engine.begin() as conn:
            conn.execute(
                text("ALTER TABLE api_keys ADD COLUMN origins VARCHAR NOT NULL DEFAULT ''")
            )


def _split(text: str) -> frozenset[str]:
    return frozenset(x for x in text.split(",") if x)


def to_key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        row.id,
        row.name,
        row.role,
        row.salt,
        row.hash,
        _split(row.stores),
        revoked=row.revoked_us is not None,
        origins=_split(row.origins),
    )


def load_active(s: Session) -> list[ApiKey]:
    rows = s.exec(select(ApiKeyRow).where(ApiKeyRow.revoked_us.is_(None)))  # type: ignore[union-attr]
    return [to_key(r) for r in rows]


def load_all(s: Session) -> list[ApiKey]:
    """Every stored key, revoked ones flagged (what another node has done since)."""
    return [to_key(r) for r in s.exec(select(ApiKeyRow))]


def all_rows(s: Session) -> list[ApiKeyRow]:
    return list(s.exec(select(ApiKeyRow).order_by(ApiKeyRow.created_us, ApiKeyRow.id)))  # type: ignore[arg-type]


def insert(s: Session, key: ApiKey, created_us: int) -> ApiKeyRow:
    row = ApiKeyRow(
        id=key.id,
        name=key.name,
        role=key.role,
        stores=",".join(sorted(key.stores)),
        origins=",".join(sorted(key.origins)),
        salt=key.salt,
        hash=key.hash,
        created_us=created_us,
    )
    s.add(row)
    s.flush()
    return row


def revoke(s: Session, key_id: str, revoked_us: int) -> tuple[dict[str, Any], ApiKeyRow]:
    """Mark a key revoked; returns what it was before and the row. NotFound or Conflict."""
    row = s.get(ApiKeyRow, key_id)
    if row is None:
        raise NotFound(f"no API key {key_id!r}; list them with `ratectl keys list`")
    if row.revoked_us is not None:
        raise Conflict(
            f"API key {key_id} was already revoked at {wire.iso(from_us(row.revoked_us))}"
        )
    before = key_dict(row)
    row.revoked_us = revoked_us
    s.add(row)
    s.flush()
    return before, row


def key_dict(row: ApiKeyRow) -> dict[str, Any]:
    """The wire shape of a key: never its hash, salt or secret."""
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "stores": sorted(_split(row.stores)),
        "origins": sorted(_split(row.origins)),
        "createdAt": wire.iso(from_us(row.created_us)),
        "revokedAt": None if row.revoked_us is None else wire.iso(from_us(row.revoked_us)),
    }

"""Creating, listing and revoking API keys: durable write with its audit record, then
the key ring, then (on revocation) the key's live WebSocket sessions are closed.

A key's secret exists only in the reply to ``create``; the row and the audit record
hold the id, name, role, stores and origins, never the secret or its hash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from sqlmodel import Session

from ratehubd import auth
from ratehubd.adapters.writer import Writer
from ratehubd.engine.audit import AuditEvent, to_us
from ratehubd.errors import Conflict, InvalidRequest
from ratehubd.store import audit as audit_store
from ratehubd.store import keys as key_rows
from ratehubd.store.repository import Store

SOURCE = "api"
log = logging.getLogger("ratehub.keys")


class Clock(Protocol):
    def now(self) -> Any: ...


class KeyService:
    def __init__(
        self,
        ring: auth.KeyRing,
        store: Store,
        writer: Writer,
        clock: Clock,
        on_revoke: Callable[[str], None],
    ) -> None:
        self.ring = ring
        self.store = store
        self.writer = writer
        self.clock = clock
        self.on_revoke = on_revoke

    async def create(self, spec: auth.KeySpec, actor: str) -> dict[str, Any]:
        """A new key; the reply holds its secret, shown this once."""
        key, secret = auth.new_key(spec.name, spec.role, spec.stores, spec.origins)
        now = self.clock.now()

        def op(s: Session) -> dict[str, Any]:
            data = key_rows.key_dict(key_rows.insert(s, key, to_us(now)))
            event = AuditEvent(type="key_created", actor=actor, after=data, source=SOURCE)
            audit_store.append(s, event, now)
            return data

        data: dict[str, Any] = await self.writer.write(op)
        self.ring.add(key)
        return {**data, "secret": secret}

    async def revoke(self, key_id: str, actor: str, reason: str | None = None) -> dict[str, Any]:
        """Revoke a key: refused from then on, its WebSockets closed at once."""
        if key_id == auth.ENV_KEY_ID:
            raise InvalidRequest(
                "the API_SECRET_KEY admin key is not stored, so it cannot be revoked here: "
                "change API_SECRET_KEY and restart ratehubd"
            )
        self._keep_an_admin(key_id)
        now = self.clock.now()

        def op(s: Session) -> dict[str, Any]:
            before, row = key_rows.revoke(s, key_id, to_us(now))
            after = key_rows.key_dict(row)
            event = AuditEvent(
                type="key_revoked",
                actor=actor,
                before=before,
                after=after,
                reason=reason,
                source=SOURCE,
            )
            audit_store.append(s, event, now)
            return after

        data: dict[str, Any] = await self.writer.write(op)
        self.ring.revoke(key_id)
        self.on_revoke(key_id)
        return data

    async def sync(self) -> tuple[int, int]:
        """Take in what other nodes of a fleet did to the shared ``api_keys`` table: keys
        created there start working here, keys revoked there stop (their WebSockets
        close). Returns (added, revoked)."""

        def read() -> list[auth.ApiKey]:
            with self.store.session() as s:
                return key_rows.load_all(s)

        added = revoked = 0
        for key in await asyncio.to_thread(read):
            mine = self.ring.get(key.id)
            if key.revoked:
                if mine is not None:
                    self.ring.revoke(key.id)
                    self.on_revoke(key.id)
                    revoked += 1
            elif mine is None and not self.ring.known(key.id):
                self.ring.add(key)
                added += 1
        if added or revoked:
            log.info("API keys from the fleet: %d added, %d revoked", added, revoked)
        return added, revoked

    async def list(self) -> list[dict[str, Any]]:
        """Every stored key, revoked ones too, and the API_SECRET_KEY admin key if set."""

        def read() -> list[dict[str, Any]]:
            with self.store.session() as s:
                return [key_rows.key_dict(r) for r in key_rows.all_rows(s)]

        rows = await asyncio.to_thread(read)
        if self.ring.get(auth.ENV_KEY_ID) is not None:
            rows.insert(0, _env_dict())
        return rows

    def _keep_an_admin(self, key_id: str) -> None:
        key = self.ring.get(key_id)
        if key is None or key.role != auth.ADMIN:
            return
        others = [k for k in self.ring.all() if k.role == auth.ADMIN and not k.revoked]
        if len(others) <= 1:
            raise Conflict(
                f"key {key_id} is the last admin key; create another admin key first "
                "(ratectl keys create NAME --role admin)"
            )


def _env_dict() -> dict[str, Any]:
    return {
        "id": auth.ENV_KEY_ID,
        "name": "API_SECRET_KEY",
        "role": auth.ADMIN,
        "stores": [],
        "origins": [],
        "createdAt": None,
        "revokedAt": None,
    }

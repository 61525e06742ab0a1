"""API keys: parsing, hashing and verification. Pure; the store keeps the rows.

A key looks like ``rh_<id>_<secret>``. The daemon keeps ``sha256(salt + secret)``
only and compares in constant time. ``API_SECRET_KEY`` (the guide's variable) may
be any string: it is hashed at start and checked as the ``env`` admin key.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from daemon.errors import Forbidden, Unauthorized

ADMIN = "admin"
STORE = "store"
READ_ONLY = "read-only"
FEED = "feed"
ROLES = (ADMIN, STORE, READ_ONLY, FEED)
ENV_KEY_ID = "env"


def digest(salt: str, secret: str) -> str:
    return hashlib.sha256(f"{salt}:{secret}".encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    role: str
    salt: str
    hash: str
    stores: frozenset[str] = field(default_factory=frozenset)
    revoked: bool = False

    def can_read(self, store_id: str | None) -> bool:
        if self.role in (ADMIN, READ_ONLY):
            return True
        return self.role == STORE and (store_id is None or store_id in self.stores)

    def can_write(self, store_id: str | None) -> bool:
        if self.role == ADMIN:
            return True
        return self.role == STORE and store_id is not None and store_id in self.stores


def new_key(name: str, role: str, stores: frozenset[str] = frozenset()) -> tuple[ApiKey, str]:
    """A fresh key record and its full secret text (shown once, never stored)."""
    key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(24)
    salt = secrets.token_hex(8)
    return ApiKey(key_id, name, role, salt, digest(salt, secret), stores), f"rh_{key_id}_{secret}"


def env_key(secret: str) -> ApiKey:
    salt = secrets.token_hex(8)
    return ApiKey(ENV_KEY_ID, "API_SECRET_KEY", ADMIN, salt, digest(salt, secret))


class KeyRing:
    def __init__(self, keys: list[ApiKey] | None = None) -> None:
        self._keys = {k.id: k for k in keys or []}

    def add(self, key: ApiKey) -> None:
        self._keys[key.id] = key

    def get(self, key_id: str) -> ApiKey | None:
        return self._keys.get(key_id)

    def all(self) -> list[ApiKey]:
        return sorted(self._keys.values(), key=lambda k: k.id)

    def verify(self, presented: str | None) -> ApiKey:
        """The key record for a presented secret, or Unauthorized."""
        if not presented:
            raise Unauthorized(
                "missing API key: send 'Authorization: Bearer <key>' "
                "(or ?token=<key> on the WebSocket)"
            )
        key = self._match(presented.strip())
        if key is None or key.revoked:
            raise Unauthorized("invalid or revoked API key")
        return key

    def _match(self, presented: str) -> ApiKey | None:
        parts = presented.split("_", 2)
        if len(parts) == 3 and parts[0] == "rh":
            key = self._keys.get(parts[1])
            if key is not None and hmac.compare_digest(key.hash, digest(key.salt, parts[2])):
                return key
        env = self._keys.get(ENV_KEY_ID)
        if env is not None and hmac.compare_digest(env.hash, digest(env.salt, presented)):
            return env
        return None


def require_read(key: ApiKey, store_id: str | None) -> None:
    if not key.can_read(store_id):
        raise Forbidden(f"key {key.id} ({key.role}) may not read store {store_id!r}")


def require_write(key: ApiKey, store_id: str | None) -> None:
    if not key.can_write(store_id):
        where = f"store {store_id!r}" if store_id else "global rates (all stores)"
        raise Forbidden(
            f"key {key.id} ({key.role}) may not change {where}; needs admin or a store key for it"
        )


def require_admin(key: ApiKey, what: str) -> None:
    if key.role != ADMIN:
        raise Forbidden(f"key {key.id} ({key.role}) may not {what}; needs an admin key")

"""API keys and what each may do. Pure: the store keeps the rows, adapters ask here.

A key looks like ``rh_<id>_<secret>``. The daemon keeps ``sha256(salt + secret)``
only and compares in constant time. ``API_SECRET_KEY`` (the guide's variable) may
be any string: it is hashed at start and checked as the ``env`` admin key.

Authorization is a table (``GRANTS``): each role holds a set of permissions.
Two of them are scoped to a store (``rates:read``, ``rates:write``): a ``store`` key
holds them only for the stores it is bound to; asking for them without a store means
every store, which is the ``rates:read-all`` / ``rates:write-all`` permission. A
refusal names the permission that is missing, so the 403 says what would be needed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from ratehubd.errors import Forbidden, InvalidRequest, Unauthorized

ADMIN = "admin"
STORE = "store"
READ_ONLY = "read-only"
FEED = "feed"
ROLES = (ADMIN, STORE, READ_ONLY, FEED)
ENV_KEY_ID = "env"

# Permissions. The first two are per store; the others are global.
RATES_READ = "rates:read"  # a store's rates, overrides and locks
RATES_WRITE = "rates:write"  # a store's overrides and locks
RATES_READ_ALL = "rates:read-all"  # global rates, every store's overrides and locks, breaches
RATES_WRITE_ALL = "rates:write-all"  # global overrides and locks
MARKET_READ = "market:read"
MARKET_PUSH = "market:push"
MARKET_RESET = "market:reset"  # close a pair's circuit breaker
STATUS_READ = "status:read"
AUDIT_READ = "audit:read"
KEYS_MANAGE = "keys:manage"
SCOPED = {RATES_READ: RATES_READ_ALL, RATES_WRITE: RATES_WRITE_ALL}

GRANTS: dict[str, frozenset[str]] = {
    ADMIN: frozenset(
        {
            RATES_READ,
            RATES_WRITE,
            RATES_READ_ALL,
            RATES_WRITE_ALL,
            MARKET_READ,
            MARKET_PUSH,
            MARKET_RESET,
            STATUS_READ,
            AUDIT_READ,
            KEYS_MANAGE,
        }
    ),
    READ_ONLY: frozenset({RATES_READ, RATES_READ_ALL, MARKET_READ, STATUS_READ}),
    STORE: frozenset({RATES_READ, RATES_WRITE, MARKET_READ}),  # only for its own stores
    FEED: frozenset({MARKET_PUSH}),
}

_DOING = {
    RATES_READ: "read the rates of store {store!r}",
    RATES_WRITE: "change the rates or locks of store {store!r}",
    RATES_READ_ALL: "read the global rates or every store's data",
    RATES_WRITE_ALL: "change the global rates (all stores)",
    MARKET_READ: "read market data",
    MARKET_PUSH: "push market data",
    MARKET_RESET: "reset a pair's circuit breaker",
    STATUS_READ: "read the system status",
    AUDIT_READ: "read the audit trail",
    KEYS_MANAGE: "manage API keys",
}


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
    origins: frozenset[str] = field(default_factory=frozenset)

    def allows(self, permission: str, store_id: str | None = None) -> bool:
        """Whether this key holds ``permission`` (for ``store_id``, if it is per store)."""
        if permission in SCOPED and store_id is None:
            permission = SCOPED[permission]
        if permission not in GRANTS.get(self.role, frozenset()):
            return False
        return self.role != STORE or permission not in SCOPED or store_id in self.stores

    def can_read(self, store_id: str | None) -> bool:
        return self.allows(RATES_READ, store_id)

    def can_write(self, store_id: str | None) -> bool:
        return self.allows(RATES_WRITE, store_id)

    def own_store(self) -> str | None:
        """A store key's store when it has exactly one (what "no storeId" means for it)."""
        if self.role == STORE and len(self.stores) == 1:
            return next(iter(self.stores))
        return None

    def allows_origin(self, origin: str | None) -> bool:
        """Keys with allowed origins refuse browsers (an Origin header) from elsewhere."""
        return not origin or not self.origins or origin.lower() in self.origins


def require(key: ApiKey, permission: str, store_id: str | None = None) -> None:
    """Forbidden (403), naming the missing permission, unless ``key`` holds it."""
    if key.allows(permission, store_id):
        return
    scoped = permission in SCOPED and store_id is not None
    need = permission if scoped else SCOPED.get(permission, permission)
    doing = _DOING[need].format(store=store_id)
    if key.role == STORE and scoped and need in GRANTS[STORE]:
        mine = ", ".join(repr(s) for s in sorted(key.stores))
        raise Forbidden(
            f"key {key.id} (store key for {mine}) may not {doing}: it needs {need!r} on "
            f"store {store_id!r} and holds it only for {mine}",
            permission=need,
            storeId=store_id,
        )
    if need in SCOPED and store_id is not None:
        holders = f"admin, or a store key bound to {store_id!r}"
        if need == RATES_READ:
            holders = f"admin, read-only, or a store key bound to {store_id!r}"
    else:
        holders = ", ".join(r for r in ROLES if need in GRANTS[r])
    raise Forbidden(
        f"key {key.id} ({key.role}) may not {doing}: it needs the {need!r} permission "
        f"(held by: {holders})",
        permission=need,
        **({"storeId": store_id} if store_id is not None else {}),
    )


def require_some(key: ApiKey, permission: str) -> None:
    """Forbidden unless the key's role holds ``permission`` at all (for some store): the
    check to make before looking up an object whose store decides the rest."""
    if permission in GRANTS.get(key.role, frozenset()):
        return
    holders = ", ".join(r for r in ROLES if permission in GRANTS[r])
    doing = _DOING[permission].replace(" of store {store!r}", "").format()
    raise Forbidden(
        f"key {key.id} ({key.role}) may not {doing}: it needs the {permission!r} permission "
        f"(held by: {holders})",
        permission=permission,
    )


def require_read(key: ApiKey, store_id: str | None) -> None:
    require(key, RATES_READ, store_id)


def require_write(key: ApiKey, store_id: str | None) -> None:
    require(key, RATES_WRITE, store_id)


def require_origin(key: ApiKey, origin: str | None) -> None:
    if not key.allows_origin(origin):
        allowed = ", ".join(sorted(key.origins))
        raise Forbidden(
            f"key {key.id} may not be used from origin {origin!r}: its allowed origins are "
            f"{allowed}",
            permission="origin",
        )


def read_scope(key: ApiKey, store_id: str | None) -> str | None:
    """The store a read is about: as asked, or a one-store key's own store when none is
    asked (a store key cannot read everything, so that is what it means)."""
    return store_id if store_id is not None else key.own_store()


# -- making keys --------------------------------------------------------------------------------

_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
_STORE_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")


@dataclass(frozen=True, slots=True)
class KeySpec:
    """A validated request for a new key."""

    name: str
    role: str
    stores: frozenset[str]
    origins: frozenset[str]


def key_spec(name: str, role: str, stores: Iterable[str], origins: Iterable[str]) -> KeySpec:
    """Check a key request; InvalidRequest (400) saying what to change."""
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidRequest("name must be 1-64 printable characters, e.g. 'store123 terminal'")
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    store_set = frozenset(s.strip() for s in stores)
    bad = sorted(s for s in store_set if not _STORE_ID.match(s))
    if bad:
        raise InvalidRequest(
            f"store ids are 1-64 letters, digits or _.:@- characters; got {bad[0]!r}"
        )
    if role == STORE and not store_set:
        raise InvalidRequest("a store key needs at least one store: add stores ['store123']")
    if role != STORE and store_set:
        raise InvalidRequest(
            f"only store keys are bound to stores; a {role} key takes no stores "
            "(drop them, or use role 'store')"
        )
    return KeySpec(name, role, store_set, frozenset(origin(o) for o in origins))


def origin(text: str) -> str:
    """A browser origin, ``scheme://host[:port]``, lower-cased; InvalidRequest otherwise."""
    raw = text.strip().lower()
    parts = urlsplit(raw)
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise InvalidRequest(
            f"origin {text!r} is not a browser origin; write it like https://dash.example.com "
            "or http://localhost:3000 (scheme, host and port only, no path)"
        )
    return raw


def new_key(
    name: str,
    role: str,
    stores: frozenset[str] = frozenset(),
    origins: frozenset[str] = frozenset(),
) -> tuple[ApiKey, str]:
    """A fresh key record and its full secret text (shown once, never stored)."""
    key_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(24)
    salt = secrets.token_hex(8)
    key = ApiKey(key_id, name, role, salt, digest(salt, secret), stores, origins=origins)
    return key, f"rh_{key_id}_{secret}"


def env_key(secret: str) -> ApiKey:
    salt = secrets.token_hex(8)
    return ApiKey(ENV_KEY_ID, "API_SECRET_KEY", ADMIN, salt, digest(salt, secret))


def key_id_of(text: str) -> str | None:
    """The id part of a ``rh_<id>_<secret>`` key text, if it is one."""
    parts = text.strip().split("_", 2)
    return parts[1] if len(parts) == 3 and parts[0] == "rh" else None


class KeyRing:
    def __init__(self, keys: list[ApiKey] | None = None) -> None:
        self._keys = {k.id: k for k in keys or []}
        # Revoked here before this ring ever held them (created on another node of a
        # fleet, not synced yet): a sync that read the table earlier must not add them.
        self._revoked_ids: set[str] = set()

    def add(self, key: ApiKey) -> None:
        self._keys[key.id] = key

    def get(self, key_id: str) -> ApiKey | None:
        key = self._keys.get(key_id)
        return None if key is None or key.revoked else key

    def known(self, key_id: str) -> bool:
        """Whether the ring has heard of ``key_id`` at all, revoked or not."""
        return key_id in self._keys or key_id in self._revoked_ids

    def revoke(self, key_id: str) -> None:
        key = self._keys.get(key_id)
        if key is not None:
            self._keys[key_id] = replace(key, revoked=True)
        else:
            self._revoked_ids.add(key_id)

    def all(self) -> list[ApiKey]:
        return sorted(self._keys.values(), key=lambda k: k.id)

    def verify(self, presented: str | None) -> ApiKey:
        """The key record for a presented secret, or Unauthorized. The message never
        repeats what was presented."""
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

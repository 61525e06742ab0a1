"""API keys for ratectl: the ``/api/keys`` endpoints as client calls, and the key table.

:class:`KeyClient` adds create, list and revoke to :class:`ratectl.client.Client`; errors
are translated by the client's one ``_call`` (a key conflict keeps the daemon's own
advice). The table never has a secret to show: the daemon only sends one in the reply to
``create``, and ``ratectl keys create`` prints it once.

Used by ``ratectl keys`` (:mod:`ratectl.cli_keys`); imported lazily (it pulls in httpx).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

from rich.table import Table
from rich.text import Text

from ratectl.client import Client
from ratectl.errors import ConflictError, CtlError
from ratectl.render import table
from ratehubd import wire

T = TypeVar("T")
ROLES = ("admin", "store", "read-only", "feed")
NOT_AGAIN = "save this key now: it will not be shown again"


class KeyClient(Client):
    """The daemon's key endpoints (admin keys only)."""

    def __enter__(self) -> KeyClient:
        return self

    def keys(self) -> list[Any]:
        return _a(list, self._call("GET", "/api/keys"))

    def create_key(self, body: dict[str, Any]) -> dict[str, Any]:
        return _a(dict, self._call("POST", "/api/keys", json=body))

    def revoke_key(self, key_id: str, reason: str | None) -> dict[str, Any]:
        path = f"/api/keys/{quote(key_id, safe='')}/revoke"
        return _a(dict, self._call("POST", path, json={"reason": reason} if reason else None))

    def _failure(self, status: int, env: wire.Envelope) -> CtlError:
        if status == 409:  # already revoked, the last admin key: the daemon says what to do
            return ConflictError(env.error or "conflict")
        if status == 404:
            return CtlError(env.error or "no such key")
        return super()._failure(status, env)


def _a(kind: type[T], data: Any) -> T:
    if not isinstance(data, kind):
        raise CtlError(f"the daemon sent {type(data).__name__} where {kind.__name__} was expected")
    return data


def create_body(
    name: str, role: str, stores: Sequence[str], origins: Sequence[str]
) -> dict[str, Any]:
    """The ``POST /api/keys`` body; the daemon checks the rules (stores only for store keys)."""
    return {"name": name, "role": role, "stores": list(stores), "origins": list(origins)}


def describe(key: Mapping[str, Any]) -> str:
    """``key 0a1b2c3d "store123 terminal" (store: store123)``."""
    scope = ", ".join(key.get("stores") or []) if key.get("role") == "store" else ""
    where = f": {scope}" if scope else ""
    origins = key.get("origins") or []
    browsers = f"; browsers from {', '.join(origins)}" if origins else ""
    return f'key {key.get("id")} "{key.get("name")}" ({key.get("role")}{where}{browsers})'


def key_table(keys: Sequence[Mapping[str, Any]], *, wide: bool = False) -> Table:
    headers = ["ID", "NAME", "ROLE", "STORES", "STATE"]
    if wide:
        headers += ["ORIGINS", "CREATED", "REVOKED"]
    t = table(*headers)
    for k in keys:
        revoked = k.get("revokedAt")
        state = Text("revoked", style="red") if revoked else Text("active", style="green")
        row: list[str | Text] = [
            Text(str(k.get("id")), style="bold"),
            str(k.get("name")),
            str(k.get("role")),
            ", ".join(k.get("stores") or []) or "-",
            state,
        ]
        if wide:
            row += [
                ", ".join(k.get("origins") or []) or "any",
                str(k.get("createdAt") or "(environment)"),
                str(revoked or "-"),
            ]
        t.add_row(*row)
    return t

"""What both WebSocket listeners check before the upgrade: origin, key, query."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ratehubd import wire
from ratehubd.auth import (
    RATES_READ_ALL,
    STORE,
    ApiKey,
    KeyRing,
    read_scope,
    require_origin,
    require_read,
)
from ratehubd.errors import Forbidden, InvalidRequest, Unauthorized
from ratehubd.hub.session import CLIENT_TYPES

WS_PATH = "/api/rates/websocket"


@dataclass(frozen=True, slots=True)
class Handshake:
    key: ApiKey
    client_type: str
    store_id: str | None
    last_seq: int | None
    epoch: str | None


def check_origin(origin: str | None, allowed: tuple[str, ...]) -> None:
    """Browsers send Origin; when CORS_ORIGINS is set, only those may connect."""
    if origin and allowed and "*" not in allowed and origin not in allowed:
        raise Forbidden(f"origin {origin!r} is not allowed (CORS_ORIGINS)")


def handshake(
    query: Mapping[str, str],
    headers: Mapping[str, str],
    keys: KeyRing,
    allowed_origins: tuple[str, ...],
) -> Handshake:
    """Validate an upgrade request; raises Forbidden, Unauthorized or InvalidRequest."""
    check_origin(headers.get("origin"), allowed_origins)
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    presented = token if scheme.lower() == "bearer" and token else query.get("token")
    if not presented:
        raise Unauthorized(
            "missing API key: send 'Authorization: Bearer <key>' or add ?token=<key> to the URL"
        )
    key = keys.verify(presented)
    require_origin(key, headers.get("origin"))
    client_type = query.get("clientType", "dashboard")
    if client_type not in CLIENT_TYPES:
        raise InvalidRequest(
            f"clientType must be one of {', '.join(CLIENT_TYPES)}, got {client_type!r}"
        )
    store_id = read_scope(key, query.get("storeId") or None)
    if store_id is None and key.role == STORE:
        mine = ", ".join(sorted(key.stores))
        raise Forbidden(
            f"key {key.id} is a store key for several stores ({mine}) and may not read "
            f"every store ('{RATES_READ_ALL}'): add storeId=<one of them> to the URL",
            permission=RATES_READ_ALL,
        )
    require_read(key, store_id)
    last_seq = None
    if "lastSeq" in query:
        try:
            last_seq = int(query["lastSeq"])
        except ValueError:
            last_seq = -1
        if not 0 <= last_seq <= wire.MAX_SEQ:
            raise InvalidRequest(
                "lastSeq must be a non-negative integer (the seq of the last message received)"
            )
    return Handshake(key, client_type, store_id, last_seq, query.get("epoch") or None)


__all__ = ["WS_PATH", "Handshake", "check_origin", "handshake", "Unauthorized"]

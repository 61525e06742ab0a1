"""``/api/keys``: create, list and revoke API keys (admin keys only).

``POST /api/keys`` answers with the new key's secret, the only time it is ever shown;
``GET /api/keys`` lists every key without secrets; ``POST /api/keys/{id}/revoke``
refuses the key from then on and closes its live WebSockets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from daemon import auth
from daemon.adapters.http_security import authenticate
from daemon.auth import ApiKey, require

if TYPE_CHECKING:
    from daemon.runtime import Runtime

Key = Annotated[ApiKey, Depends(authenticate)]


class KeyCreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="What the key is for, e.g. 'store123 terminal'.")
    role: str = Field(description="admin, store, read-only or feed.")
    stores: list[str] = Field(default_factory=list, description="A store key's store ids.")
    origins: list[str] = Field(
        default_factory=list, description="Browser origins it may be used from; empty: any."
    )


class KeyRevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, description="Why; kept in the audit trail.")


def add_routes(app: FastAPI, rt: Runtime) -> None:
    from daemon.adapters.http_api import _json_body, _validate, ok

    @app.post("/api/keys", tags=["keys"], status_code=201)
    async def create_key(key: Key, request: Request) -> JSONResponse:
        """A new key; the reply's ``secret`` is shown this once and never again."""
        require(key, auth.KEYS_MANAGE)
        req = _validate(KeyCreateRequest, await _json_body(request))
        spec = auth.key_spec(req.name, req.role, req.stores, req.origins)
        resp = ok(await rt.key_service.create(spec, key.id))
        resp.status_code = 201
        return resp

    @app.get("/api/keys", tags=["keys"])
    async def list_keys(key: Key) -> JSONResponse:
        """Every key, revoked ones too; never a secret."""
        require(key, auth.KEYS_MANAGE)
        return ok(await rt.key_service.list())

    @app.post("/api/keys/{key_id}/revoke", tags=["keys"])
    async def revoke_key(key: Key, key_id: str, request: Request) -> JSONResponse:
        """Refuse the key from now on and close its WebSockets (1008)."""
        require(key, auth.KEYS_MANAGE)
        raw = await request.body()
        req = _validate(KeyRevokeRequest, await _json_body(request)) if raw.strip() else None
        return ok(await rt.key_service.revoke(key_id, key.id, req.reason if req else None))

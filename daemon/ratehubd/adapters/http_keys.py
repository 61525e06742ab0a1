"""``/api/keys``: create, list and revoke API keys (admin keys only).

``POST /api/keys`` answers with the new key's secret, the only time it is ever shown;
``GET /api/keys`` lists every key without secrets; ``POST /api/keys/{id}/revoke``
refuses the key from then on and closes its live WebSockets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ratehubd import auth
from ratehubd.adapters.http_contract import AUTHED, body, errors, returns
from ratehubd.adapters.http_security import authenticate
from ratehubd.auth import ApiKey, require
from ratehubd.errors import InvalidRequest

if TYPE_CHECKING:
    from ratehubd.runtime import Runtime

Key = Annotated[ApiKey, Depends(authenticate)]
M = TypeVar("M", bound=BaseModel)


class KeyCreateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="What the key is for, e.g. 'store123 terminal'.")
    role: str = Field(
        description="admin, store, read-only or feed.", json_schema_extra={"enum": list(auth.ROLES)}
    )
    stores: list[str] = Field(default_factory=list, description="A store key's store ids.")
    origins: list[str] = Field(
        default_factory=list, description="Browser origins it may be used from; empty: any."
    )


class KeyRevokeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, description="Why; kept in the audit trail.")


def parse(model: type[M], body: Any) -> M:
    """The body as ``model``, or InvalidRequest naming the field and, for an unknown one,
    the fields this endpoint accepts."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            accepted = ", ".join(model.model_fields)
            raise InvalidRequest(f"unknown field {where!r} (accepted: {accepted})") from None
        raise InvalidRequest(f"{where}: {err['msg']}") from None


def add_routes(app: FastAPI, rt: Runtime) -> None:
    from ratehubd.adapters.http_api import _json_body, ok

    @app.post(
        "/api/keys",
        tags=["keys"],
        status_code=201,
        responses={
            **returns(dict[str, Any], 201, "The new key, with its secret"),
            **errors(400, 409, *AUTHED),
        },
        openapi_extra=body(KeyCreateRequest),
    )
    async def create_key(key: Key, request: Request) -> JSONResponse:
        """A new key; the reply's ``secret`` is shown this once and never again."""
        require(key, auth.KEYS_MANAGE)
        req = parse(KeyCreateRequest, await _json_body(request))
        spec = auth.key_spec(req.name, req.role, req.stores, req.origins)
        resp = ok(await rt.key_service.create(spec, key.id))
        resp.status_code = 201
        return resp

    @app.get(
        "/api/keys", tags=["keys"], responses={**returns(list[dict[str, Any]]), **errors(*AUTHED)}
    )
    async def list_keys(key: Key) -> JSONResponse:
        """Every key, revoked ones too; never a secret."""
        require(key, auth.KEYS_MANAGE)
        return ok(await rt.key_service.list())

    @app.post(
        "/api/keys/{key_id}/revoke",
        tags=["keys"],
        responses={**returns(dict[str, Any]), **errors(400, 404, 409, *AUTHED)},
        openapi_extra=body(KeyRevokeRequest, required=False),
    )
    async def revoke_key(key: Key, key_id: str, request: Request) -> JSONResponse:
        """Refuse the key from now on and close its WebSockets (1008)."""
        require(key, auth.KEYS_MANAGE)
        raw = await request.body()
        req = parse(KeyRevokeRequest, await _json_body(request)) if raw.strip() else None
        return ok(await rt.key_service.revoke(key_id, key.id, req.reason if req else None))

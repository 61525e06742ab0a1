"""The HTTP API (FastAPI): the guide's endpoints, its envelope, and our additions.

Each handler is thin: authenticate, parse, call the service, wrap. Errors are
translated in one place (``_ratehub_error`` and friends) into the guide's
envelope ``{success: false, error, code, timestamp}`` with the error's status.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route

from ratehubd import auth, wire
from ratehubd.adapters import http_board, http_docs, http_keys, http_security
from ratehubd.adapters.http_contract import AUTHED, body, errors, install, returns
from ratehubd.auth import ApiKey, read_scope, require
from ratehubd.errors import InvalidRequest, RatehubError, RateLimited
from ratehubd.store.audit import AuditQuery

if TYPE_CHECKING:
    from ratehubd.runtime import Runtime

VERSION = "0.1.0"
M = TypeVar("M", bound=BaseModel)


def ok(data: Any) -> JSONResponse:
    return JSONResponse({"success": True, "data": data, "error": None, "timestamp": _ms()})


def _ms() -> int:
    return int(time.time() * 1000)


def _fail(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> JSONResponse:
    body: dict[str, Any] = {
        "success": False,
        "data": None,
        "error": message,
        "code": code,
        "timestamp": _ms(),
    }
    if details:
        body["details"] = details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _field_errors(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        if err.get("type") == "json_invalid":
            return "request body is not valid JSON"
        if err.get("type") == "extra_forbidden":
            accepted = ", ".join(wire.SetRateRequest.model_fields)
            parts.append(f"unknown field {loc!r} (accepted: {accepted})")
        else:
            parts.append(f"{loc or 'body'}: {err.get('msg')}")
    return "; ".join(parts) or "invalid request"


Key = Annotated[ApiKey, Depends(http_security.authenticate)]
StoreQ = Annotated[str | None, Query(description="store id; omit for the global rates")]


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(
        title="ratehub",
        version=VERSION,
        description="Rates for a chain of currency-exchange stores. Envelope: "
        "{success, data, error, timestamp}. Auth: Authorization: Bearer <key>.",
        docs_url=None,  # http_docs serves /docs from the daemon, not from a CDN
        redoc_url=None,
    )
    http_security.add_cors(app, rt.config.server.cors_origins)

    @app.exception_handler(RatehubError)
    async def _ratehub_error(_: Request, exc: RatehubError) -> JSONResponse:
        resp = _fail(exc.status, exc.code, exc.message, exc.details or None)
        if isinstance(exc, RateLimited):
            resp.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _fail(400, InvalidRequest.code, _field_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        resp = _fail(exc.status_code, "http_error", str(exc.detail))
        resp.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # Starlette's Allow names the first route on the path; a path with a route per
            # method (GET and POST /api/keys) takes them all.
            resp.headers["Allow"] = ", ".join(_methods(app, request.url.path))
        return resp

    app.state.runtime = rt

    @app.get("/healthz", tags=["system"], responses=returns(dict[str, Any]))
    async def healthz() -> JSONResponse:
        return ok({"status": "ok", "version": VERSION})

    @app.get(
        "/api/rates/get",
        tags=["rates"],
        responses={**returns(list[wire.Rate]), **errors(400, *AUTHED)},
    )
    async def get_rates(key: Key, storeId: StoreQ = None) -> JSONResponse:
        store = read_scope(key, storeId or None)
        require(key, auth.RATES_READ, store)
        return ok(rt.service.rates(store))

    @app.get(
        "/api/stores",
        tags=["stores"],
        responses={**returns(list[wire.StoreScreens]), **errors(*AUTHED)},
    )
    async def stores(key: Key) -> JSONResponse:
        rows = [r for r in rt.stores() if key.can_read(r["storeId"])]
        return ok([wire.StoreScreens(**r).model_dump() for r in rows])

    @app.get(
        "/api/stores/{store_id}/terminals",
        tags=["stores"],
        responses={**returns(list[wire.Terminal]), **errors(*AUTHED)},
    )
    async def store_terminals(key: Key, store_id: str) -> JSONResponse:
        require(key, auth.RATES_READ, store_id)
        return ok([wire.Terminal(**t).model_dump() for t in rt.terminals(store_id)])

    @app.post(
        "/api/rates/set",
        tags=["rates"],
        responses={**returns(wire.Rate), **errors(400, 409, *AUTHED)},
        openapi_extra=body(wire.SetRateRequest),
    )
    async def set_rate(key: Key, request: Request) -> JSONResponse:
        req = _validate(wire.SetRateRequest, await _json_body(request))
        require(key, auth.RATES_WRITE, req.storeId or None)
        return ok(await rt.service.set_override(req, key.id))

    @app.post(
        "/api/rates/clear",
        tags=["rates"],
        responses={**returns(wire.Rate), **errors(400, 404, 409, *AUTHED)},
        openapi_extra=body(wire.ClearRateRequest),
    )
    async def clear_rate(key: Key, request: Request) -> JSONResponse:
        req = _validate(wire.ClearRateRequest, await _json_body(request))
        require(key, auth.RATES_WRITE, req.storeId or None)
        return ok(await rt.service.clear_override(req.currencyPair, req.storeId or None, key.id))

    @app.get(
        "/api/rates/overrides",
        tags=["rates"],
        responses={**returns(list[dict[str, Any]]), **errors(400, *AUTHED)},
    )
    async def list_overrides(key: Key, storeId: StoreQ = None) -> JSONResponse:
        store = read_scope(key, storeId or None)
        require(key, auth.RATES_READ, store)
        return ok(rt.service.overrides(store))

    @app.post(
        "/api/rates/lock",
        tags=["locks"],
        responses={
            **returns(wire.RateLock, 201, "A new lock"),
            **returns(wire.RateLock, 200, "The lock this idempotency key already made"),
            **errors(400, 409, *AUTHED),
        },
        openapi_extra=body(wire.LockCreateRequest),
    )
    @app.post(
        "/api/rates/locks",
        tags=["locks"],
        deprecated=True,
        summary="Create Lock (alias of POST /api/rates/lock)",
        responses={
            **returns(wire.RateLock, 201, "A new lock"),
            **returns(wire.RateLock, 200, "The lock this idempotency key already made"),
            **errors(400, 409, *AUTHED),
        },
        openapi_extra=body(wire.LockCreateRequest),
    )
    async def create_lock(key: Key, request: Request) -> JSONResponse:
        """The guide's createRateLock: freeze a store's buy/sell for ttlSeconds."""
        body = await _json_body(request)
        if isinstance(body, dict) and "idempotencyKey" not in body:
            header = request.headers.get("idempotency-key")
            if header:
                body["idempotencyKey"] = header
        req = _validate(wire.LockCreateRequest, body)
        require(key, auth.RATES_WRITE, req.storeId or None)
        data, created = await rt.service.create_lock(req, key.id)
        resp = ok(data)
        resp.status_code = 201 if created else 200
        return resp

    @app.get(
        "/api/rates/locks",
        tags=["locks"],
        responses={**returns(list[wire.RateLock]), **errors(400, *AUTHED)},
    )
    async def list_locks(
        key: Key, storeId: StoreQ = None, state: str | None = None
    ) -> JSONResponse:
        store = read_scope(key, storeId or None)
        require(key, auth.RATES_READ, store)
        return ok(rt.service.locks(store, state))

    @app.get(
        "/api/rates/locks/{lock_id}",
        tags=["locks"],
        responses={**returns(wire.RateLock), **errors(404, *AUTHED)},
    )
    async def show_lock(key: Key, lock_id: str) -> JSONResponse:
        auth.require_some(key, auth.RATES_READ)
        data = rt.service.lock(lock_id)
        require(key, auth.RATES_READ, data["storeId"])
        return ok(data)

    @app.post(
        "/api/rates/locks/{lock_id}/consume",
        tags=["locks"],
        responses={**returns(wire.RateLock), **errors(404, 409, *AUTHED)},
    )
    async def consume_lock(key: Key, lock_id: str) -> JSONResponse:
        auth.require_some(key, auth.RATES_WRITE)
        require(key, auth.RATES_WRITE, rt.service.lock(lock_id)["storeId"])
        return ok(await rt.service.consume_lock(lock_id, key.id))

    @app.post(
        "/api/rates/locks/{lock_id}/release",
        tags=["locks"],
        responses={**returns(wire.RateLock), **errors(404, 409, *AUTHED)},
    )
    async def release_lock(key: Key, lock_id: str) -> JSONResponse:
        auth.require_some(key, auth.RATES_WRITE)
        require(key, auth.RATES_WRITE, rt.service.lock(lock_id)["storeId"])
        return ok(await rt.service.release_lock(lock_id, key.id))

    @app.get(
        "/api/rates/breaches",
        tags=["rates"],
        responses={**returns(list[dict[str, Any]]), **errors(*AUTHED)},
    )
    async def breaches(key: Key) -> JSONResponse:
        """Every active breach; a store key sees its stores' and the global ones."""
        auth.require_some(key, auth.RATES_READ)
        data = rt.service.breaches()
        if not key.allows(auth.RATES_READ_ALL):
            data = [
                b for b in data if b["storeId"] is None or key.allows(auth.RATES_READ, b["storeId"])
            ]
        return ok(data)

    @app.get(
        "/api/rates/market",
        tags=["rates"],
        responses={**returns(list[wire.MarketData]), **errors(*AUTHED)},
    )
    async def market(key: Key) -> JSONResponse:
        require(key, auth.MARKET_READ)
        return ok(rt.service.market())

    @app.get(
        "/api/audit",
        tags=["audit"],
        responses={**returns(list[dict[str, Any]]), **errors(400, *AUTHED)},
    )
    async def audit_records(
        key: Key,
        since: str | None = None,
        until: str | None = None,
        storeId: str | None = None,
        pair: str | None = None,
        actor: str | None = None,
        type: Annotated[list[str] | None, Query()] = None,
        # Bounded by the databases' INTEGER: a larger seq was a 500 (OverflowError).
        afterSeq: Annotated[int | None, Query(ge=0, le=wire.MAX_SEQ)] = None,
        beforeSeq: Annotated[int | None, Query(ge=0, le=wire.MAX_SEQ)] = None,
        limit: Annotated[int, Query(ge=1, le=wire.MAX_SEQ)] = 1000,
        order: str = "desc",
    ) -> JSONResponse:
        """The audit trail, newest first; filters combine with AND (``type`` may repeat or
        list types with commas)."""
        require(key, auth.AUDIT_READ)
        q = AuditQuery(
            since=_time_param("since", since),
            until=_time_param("until", until),
            store_id=storeId,
            pair=str(rt.engine.pair(pair)) if pair else None,
            actor=actor,
            types=tuple(t for item in type or () for t in item.split(",") if t),
            after_seq=afterSeq,
            before_seq=beforeSeq,
            limit=limit,
            order=order,
        )
        return ok(await rt.audit_query(q))

    @app.get(
        "/api/audit/verify",
        tags=["audit"],
        responses={**returns(dict[str, Any]), **errors(*AUTHED)},
    )
    async def audit_verify(key: Key) -> JSONResponse:
        """Check the whole hash chain; ``ok`` false names the first bad record."""
        require(key, auth.AUDIT_READ)
        return ok(await rt.audit_verify())

    @app.get(
        "/api/system/status",
        tags=["system"],
        responses={**returns(dict[str, Any]), **errors(*AUTHED)},
    )
    async def status(key: Key) -> JSONResponse:
        require(key, auth.STATUS_READ)
        return ok(rt.status())

    http_keys.add_routes(app, rt)
    http_board.add_routes(app, rt)
    http_docs.add_routes(app)
    install(app)
    return app


def _methods(app: FastAPI, path: str) -> list[str]:
    """Every method some route of ``path`` takes."""
    found: set[str] = set()
    for route in app.routes:
        if isinstance(route, Route) and route.path_regex.match(path):
            found |= route.methods or set()
    return sorted(found)


def _validate(model: type[M], body: Any) -> M:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


def _time_param(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return wire.parse_time(int(value) if value.isdigit() else value)
    except ValueError:
        raise InvalidRequest(
            f"{name} must be ISO 8601 or epoch milliseconds, got {value!r}"
        ) from None


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest(
            "request body is not valid JSON; send a JSON object such as "
            '{"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33}'
        ) from None

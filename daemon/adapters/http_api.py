"""The HTTP API (FastAPI): the guide's endpoints, its envelope, and our additions.

Each handler is thin: authenticate, parse, call the service, wrap. Errors are
translated in one place (``_ratehub_error`` and friends) into the guide's
envelope ``{success: false, error, code, timestamp}`` with the error's status.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from daemon import wire
from daemon.auth import ApiKey, require_read, require_write
from daemon.errors import InvalidRequest, RatehubError, RateLimited

if TYPE_CHECKING:
    from daemon.runtime import Runtime

VERSION = "0.1.0"


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


def authenticate(request: Request) -> ApiKey:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    presented = token if scheme.lower() == "bearer" else None
    rt: Runtime = request.app.state.runtime
    return rt.keys.verify(presented)


Key = Annotated[ApiKey, Depends(authenticate)]
StoreQ = Annotated[str | None, Query(description="store id; omit for the global rates")]


def create_app(rt: Runtime) -> FastAPI:
    app = FastAPI(
        title="ratehub",
        version=VERSION,
        description="Rates for a chain of currency-exchange stores. Envelope: "
        "{success, data, error, timestamp}. Auth: Authorization: Bearer <key>.",
    )
    if rt.config.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(rt.config.server.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )

    @app.exception_handler(RatehubError)
    async def _ratehub_error(_: Request, exc: RatehubError) -> JSONResponse:
        resp = _fail(exc.status, exc.code, exc.message, exc.details or None)
        if isinstance(exc, RateLimited):
            resp.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _fail(400, InvalidRequest.code, _field_errors(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _fail(exc.status_code, "http_error", str(exc.detail))

    app.state.runtime = rt

    @app.get("/healthz", tags=["system"])
    async def healthz() -> JSONResponse:
        return ok({"status": "ok", "version": VERSION})

    @app.get("/api/rates/get", tags=["rates"])
    async def get_rates(key: Key, storeId: StoreQ = None) -> JSONResponse:
        require_read(key, storeId)
        return ok(rt.service.rates(storeId or None))

    @app.post("/api/rates/set", tags=["rates"])
    async def set_rate(key: Key, request: Request) -> JSONResponse:
        body = await _json_body(request)
        try:
            req = wire.SetRateRequest.model_validate(body)
        except Exception as exc:
            if hasattr(exc, "errors"):
                raise RequestValidationError(exc.errors()) from None
            raise
        require_write(key, req.storeId or None)
        return ok(await rt.service.set_override(req, key.id))

    @app.post("/api/rates/clear", tags=["rates"])
    async def clear_rate(key: Key, request: Request) -> JSONResponse:
        body = await _json_body(request)
        try:
            req = wire.ClearRateRequest.model_validate(body)
        except Exception as exc:
            if hasattr(exc, "errors"):
                raise RequestValidationError(exc.errors()) from None
            raise
        require_write(key, req.storeId or None)
        return ok(await rt.service.clear_override(req.currencyPair, req.storeId or None, key.id))

    @app.get("/api/rates/overrides", tags=["rates"])
    async def list_overrides(key: Key, storeId: StoreQ = None) -> JSONResponse:
        require_read(key, storeId)
        return ok(rt.service.overrides(storeId or None))

    @app.get("/api/rates/market", tags=["rates"])
    async def market(key: Key) -> JSONResponse:
        return ok(rt.service.market())

    @app.get("/api/system/status", tags=["system"])
    async def status(key: Key) -> JSONResponse:
        return ok(rt.status())

    return app


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest(
            "request body is not valid JSON; send a JSON object such as "
            '{"currencyPair": "USD/CAD", "buyRate": 1.37, "sellRate": 1.33}'
        ) from None

"""HTTP endpoints for market data: pushed prices, source health, breaker reset."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, RootModel

from ratehubd import auth
from ratehubd.adapters.http_api import Key, _json_body, ok
from ratehubd.adapters.http_contract import AUTHED, body, errors, returns
from ratehubd.auth import ApiKey, require
from ratehubd.errors import InvalidRequest

if TYPE_CHECKING:
    from ratehubd.runtime import Runtime


class PushQuote(BaseModel):
    symbol: str = Field(description="the base currency, e.g. BTC")
    priceCAD: float = Field(description="its price in CAD")


class PushQuotes(BaseModel):
    quotes: list[PushQuote]


class PushBody(RootModel[PushQuote | PushQuotes]):
    """One quote, or several."""


class BreakerReset(BaseModel):
    reason: str | None = Field(default=None, description="why; kept in the audit trail")


def require_feed(key: ApiKey) -> None:
    require(key, auth.MARKET_PUSH)


def add_market_routes(app: FastAPI, rt: Runtime) -> None:
    @app.post(
        "/api/rates/push",
        tags=["market"],
        responses={**returns(Any), **errors(400, *AUTHED)},
        openapi_extra=body(PushBody),
    )
    async def push(key: Key, request: Request) -> JSONResponse:
        """A script's (or the dashboard's pushRateData) price: ``{"symbol": "BTC",
        "priceCAD": 97000}`` or ``{"quotes": [...]}``; only feed and admin keys."""
        require_feed(key)
        body = await _json_body(request)
        items = body.get("quotes") if isinstance(body, dict) and "quotes" in body else [body]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InvalidRequest('send {"symbol": "BTC", "priceCAD": 97000} or {"quotes": [...]}')
        results: list[dict[str, Any]] = [
            rt.service.push(i.get("symbol"), i.get("priceCAD"), key.id) for i in items
        ]
        return ok(results if "quotes" in body else results[0])

    @app.get(
        "/api/rates/sources",
        tags=["market"],
        responses={**returns(dict[str, Any]), **errors(*AUTHED)},
    )
    async def sources(key: Key) -> JSONResponse:
        """Per pair: status (live, stale, frozen), breaker, the sources used and each
        source's route health."""
        require(key, auth.MARKET_READ)
        return ok(rt.service.source_health())

    @app.post(
        "/api/rates/sources/{base}/{quote}/reset",
        tags=["market"],
        responses={**returns(dict[str, Any]), **errors(400, 404, *AUTHED)},
        openapi_extra=body(BreakerReset, required=False),
    )
    async def reset(key: Key, base: str, quote: str, request: Request) -> JSONResponse:
        """An operator closes a pair's circuit breaker (admin only; audited)."""
        require(key, auth.MARKET_RESET)
        raw = await request.body()
        body = await _json_body(request) if raw.strip() else {}
        reason = body.get("reason") if isinstance(body, dict) else None
        return ok(await rt.service.reset_breaker(f"{base}/{quote}", key.id, reason))

"""What the HTTP API declares in its OpenAPI document, from the models it runs on.

Handlers read their bodies themselves, after the key is checked and with the guide's error
envelope on bad input, so FastAPI cannot see them. Each route says here which model it
validates its body with (``body``), what its ``data`` is (``returns``) and which error
statuses it answers (``errors``); ``install`` writes them into ``/openapi.json``: request
bodies with their schemas, the success envelope around each ``data``, the error envelope
with the ``code`` values each status can carry (read off the exception tree, so a new
error class shows up by itself), and no 422 (the API answers 400).
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from ratehubd.errors import RatehubError

T = TypeVar("T")
REF = "#/components/schemas/{model}"


class Ok(BaseModel, Generic[T]):
    """The guide's envelope around a success."""

    success: Literal[True]
    data: T
    error: None = None
    timestamp: int = Field(description="epoch milliseconds")


class ErrorEnvelope(BaseModel):
    """The guide's envelope around a failure; ``code`` says which, ``error`` what to do."""

    success: Literal[False]
    data: None = None
    error: str
    code: str
    details: dict[str, Any] | None = None
    timestamp: int = Field(description="epoch milliseconds")


WHY = {
    400: "The request is malformed or breaks a rule; `error` names the field.",
    401: "No key, or a key that is unknown or revoked.",
    403: "The key may not do this here (role, store or origin).",
    404: "No such resource.",
    405: "The path does not take this method; `Allow` lists those it takes.",
    409: "It conflicts with the current state (a version, a lock that ended).",
    413: "The body is too large.",
    429: "Too many requests for this key; `Retry-After` says when to retry.",
    502: "A market-data source failed.",
    503: "The daemon cannot do it now (draining, its database unavailable).",
}


def codes(status: int) -> list[str]:
    """Every ``code`` an error with ``status`` carries, from the exception tree."""
    found: set[str] = {"http_error"} if status in (404, 405) else set()
    stack: list[type[RatehubError]] = [RatehubError]
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.status == status:
            found.add(cls.code)
    return sorted(found)


def errors(*statuses: int, media: str = "application/json") -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with the error envelope and its codes (a
    page for people, ``media="text/html"``, explains the error in HTML instead)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        schema: dict[str, Any] = {"type": "string"}
        if media == "application/json":
            schema = {
                "allOf": [{"$ref": REF.format(model="ErrorEnvelope")}],
                "properties": {"code": {"type": "string", "enum": codes(status)}},
            }
        out[status] = {"description": WHY[status], "content": {media: {"schema": schema}}}
    return out


# Every route that reads a key answers these; one with a body or a query adds 400.
AUTHED = (401, 403, 429, 503)


def body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra=`` for a route that validates its JSON body with ``model``."""
    _BODIES.add(model)
    schema = {"$ref": REF.format(model=model.__name__)}
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": schema}},
        }
    }


def returns(data: Any, status: int = 200, description: str = "Success") -> dict[int | str, Any]:
    """``responses=`` for a route's success: the envelope around ``data``'s type."""
    return {status: {"model": Ok[data], "description": description}}


_BODIES: set[type[BaseModel]] = set()


def install(app: FastAPI) -> None:
    """Serve the document with the bodies and the error envelope, without FastAPI's 422."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        mode: Literal["validation"] = "validation"
        wanted: list[type[BaseModel]] = [*sorted(_BODIES, key=str), ErrorEnvelope]
        models = [(m, mode) for m in wanted]
        _, defs = models_json_schema(models, ref_template=REF)
        schemas.update(defs.get("$defs", {}))
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for path in doc.get("paths", {}).values():
            for op in path.values():
                op.get("responses", {}).pop("422", None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]

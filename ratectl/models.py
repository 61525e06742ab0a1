"""The daemon's replies as ``ratehubd.wire`` models, for rendering.

JSON output prints the daemon's data as sent; tables are rendered from these models,
so a reply that does not have the wire shape is reported instead of half-drawn.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ratectl.errors import CtlError
from ratehubd import wire

M = TypeVar("M", bound=BaseModel)


class OverrideRow(wire.OverrideInfo):
    """An active override as ``GET /api/rates/overrides`` lists it."""

    currencyPair: str
    source: str = "manual"
    createdAt: str | None = None


def parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CtlError(
            f"the daemon's reply is not a {model.__name__} ({where}: {first['msg']}); "
            "is ratectl older than the daemon? Try -o json"
        ) from None


def parse_list(model: type[M], data: Any) -> list[M]:
    if not isinstance(data, list):
        raise CtlError(f"expected a list of {model.__name__} from the daemon, got {type(data)}")
    return [parse(model, item) for item in data]


def rate(data: Any) -> wire.Rate:
    return parse(wire.Rate, data)


def rates(data: Any) -> list[wire.Rate]:
    return parse_list(wire.Rate, data)


def market(data: Any) -> list[wire.MarketData]:
    return parse_list(wire.MarketData, data)


def overrides(data: Any) -> list[OverrideRow]:
    return parse_list(OverrideRow, data)


def terminals(data: Any) -> list[wire.Terminal]:
    return parse_list(wire.Terminal, data)


def stores(data: Any) -> list[wire.StoreScreens]:
    return parse_list(wire.StoreScreens, data)

"""The checks, one module per group; ``RUN`` maps every check id to its coroutine."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ratectl.validate.checks import audit, connectivity, flow, market, websocket
from ratectl.validate.context import Ctx
from ratectl.validate.model import Outcome

CheckFn = Callable[[Ctx], Awaitable[Outcome]]

RUN: dict[str, CheckFn] = {
    **connectivity.RUN,
    **websocket.RUN,
    **market.RUN,
    **flow.RUN,
    **audit.RUN,
}

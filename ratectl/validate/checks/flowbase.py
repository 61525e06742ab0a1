"""What the flow steps share: constants, and waiting for the frame a change causes.

Each step takes the inbox's ``mark()`` *before* it makes a change and then waits for
the event the change should cause (:func:`arrive`); the latency is measured from the
request, and :func:`slow` turns latencies over ``SLOW_S`` into warnings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ratectl.validate.context import SLOW_S, Ctx, ms
from ratectl.validate.hub import Frame, HubClient, NotArrived
from ratectl.validate.model import Fail

SOURCE = "ratectl-validate"  # the override's source
REFERENCE = "ratectl validate: "  # every lock the flow makes says so: cleanup finds them
OVERRIDE_LIFETIME_MS = 10 * 60 * 1000  # if every cleanup fails, the override still ends
CONSUME_TTL_S = 120
SWEEP_S = 1.0  # the daemon ends due locks once a second


def now() -> float:
    return asyncio.get_running_loop().time()


def hub_of(ctx: Ctx) -> HubClient:
    assert ctx.flow.hub is not None
    return ctx.flow.hub


async def arrive(
    ctx: Ctx, match: Callable[[Frame], bool], what: str, since: int, limit: float | None = None
) -> Frame:
    try:
        return await hub_of(ctx).wait(match, what, limit or ctx.timeout, since)
    except NotArrived as exc:
        raise Fail(exc.message) from None


def event(type_: str, **fields: Any) -> Callable[[Frame], bool]:
    return lambda f: f.type == type_ and all(f.data.get(k) == v for k, v in fields.items())


def rate_of(frame: Frame, pair: str) -> dict[str, Any] | None:
    if frame.type != "rate_update":
        return None
    return next((r for r in frame.data.get("rates") or [] if r.get("currencyPair") == pair), None)


def override_id(rate: dict[str, Any] | None) -> str | None:
    ov = ((rate or {}).get("provenance") or {}).get("override")
    return ov.get("id") if isinstance(ov, dict) and ov.get("storeId") else None


def slow(latencies: dict[str, float], limit: float = SLOW_S) -> list[str]:
    return [f"{what} took {ms(s)} (over {limit:g} s)" for what, s in latencies.items() if s > limit]

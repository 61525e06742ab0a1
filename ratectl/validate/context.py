"""What every check gets: the run's options, the HTTP probe, and the flow's state.

The business flow is several checks in a row on one scratch store; :class:`FlowState`
carries what one step leaves for the next (the WebSocket, the override, the locks) and
what the cleanup must undo. Each step records the audit records it caused, which
``audit.flow`` then looks for.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from ratectl.validate.hub import HubClient
from ratectl.validate.model import Fail, Skip
from ratectl.validate.probe import Probe

SLOW_S = 1.0  # an event slower than this over the WebSocket is a warning (--timeout: failure)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def scratch_store() -> str:
    return f"validate-{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Options:
    url: str
    token: str | None
    token_source: str
    timeout: float
    store: str
    suite: str = "full"
    checks: tuple[str, ...] = ()
    fail_fast: bool = False

    @property
    def suite_name(self) -> str:
        """The suite, or ``custom`` when --check chose the checks."""
        return "custom" if self.checks else self.suite


@dataclass
class FlowState:
    hub: HubClient | None = None
    pair: str | None = None
    buy: Decimal | None = None
    sell: Decimal | None = None
    override_set: bool = False
    override_cleared: bool = False
    locks: dict[str, str] = field(default_factory=dict)  # role ("consume", "expire") -> id
    created: dict[str, float] = field(default_factory=dict)  # role -> loop time of the request
    audit: list[tuple[str, str | None]] = field(default_factory=list)  # (type, lockId)
    passed: set[str] = field(default_factory=set)  # flow steps that passed

    @property
    def started(self) -> bool:
        return self.hub is not None or self.override_set or bool(self.locks)

    def need(self, step: str) -> None:
        """Skip this step unless ``step`` passed earlier in this run."""
        if step not in self.passed:
            raise Skip(f"needs {step}, which did not pass")


@dataclass
class Ctx:
    opts: Options
    probe: Probe
    flow: FlowState = field(default_factory=FlowState)

    @property
    def timeout(self) -> float:
        return self.opts.timeout

    @property
    def store(self) -> str:
        return self.opts.store

    async def status(self) -> dict[str, Any]:
        data = await self.probe.api("GET", "/api/system/status")
        if not isinstance(data, dict) or not all(
            isinstance(data.get(k), dict) for k in ("websocketHub", "rateEngine", "integration")
        ):
            raise Fail(
                "GET /api/system/status lacks the guide's sections "
                "(websocketHub, rateEngine, integration)"
            )
        return data

    async def hub(self, store: str | None = None, client_type: str = "store_os") -> HubClient:
        return await HubClient.open(
            self.opts.url, self.opts.token, self.timeout, store=store, client_type=client_type
        )

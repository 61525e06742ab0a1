"""Every check, in the order it runs, and how a run chooses them. Pure.

Ids are stable (``group.name``): CI dashboards key on them. ``smoke`` holds the quick
read-only checks; ``full`` holds everything. ``--check`` takes ids or whole groups
(``--check flow``); a check pulls in the checks it builds on (``needs``), so
``--check flow.expire`` also runs the flow steps before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ratectl.errors import UsageError

SMOKE = "smoke"
FULL = "full"
SUITES = (SMOKE, FULL)


@dataclass(frozen=True)
class Spec:
    id: str
    title: str
    smoke: bool = False  # in the smoke suite (quick and read-only)
    needs: tuple[str, ...] = ()  # pulled in when this one is selected
    always: bool = False  # runs even after --fail-fast or an abort (cleanup)
    extra_s: float = 0.0  # budget beyond --timeout (a lock's ttl to wait out)

    @property
    def group(self) -> str:
        return self.id.partition(".")[0]


EXPIRE_TTL_S = 2  # the flow's short lock: created, then left to expire
# A terminal that stops acking is stale hub.confirm_timeout_ms (3 s by default) after the
# next table, which the market sends within a few seconds.
TERMINAL_WAIT_S = 8.0

SPECS: tuple[Spec, ...] = (
    Spec("connectivity.health", "GET /healthz answers (no key needed)", smoke=True),
    Spec("connectivity.api", "the API answers with the given key", smoke=True),
    Spec("connectivity.auth", "a request without a key (or a wrong one) gets 401", smoke=True),
    Spec("connectivity.version", "versions agree: /healthz, status, OpenAPI, ratectl", smoke=True),
    Spec("websocket.handshake", "the hub accepts the key and sends welcome", smoke=True),
    Spec("websocket.subscribe", "subscribe is acknowledged; a rate_update follows", smoke=True),
    Spec("websocket.ping", "ping is answered with pong", smoke=True),
    Spec("websocket.heartbeat", "a heartbeat arrives within its interval"),
    Spec("market.fresh", "every pair's market data is fresh; /readyz is ready", smoke=True),
    Spec("market.breakers", "no market-data circuit breaker is open", smoke=True),
    Spec(
        "engine.invariants",
        "every rate keeps sellRate < mid < buyRate, its spread and its tick",
        smoke=True,
    ),
    Spec("flow.override", "an override on the scratch store arrives over the WebSocket"),
    Spec("flow.lock", "two locks are created; rate_lock_created arrives", needs=("flow.override",)),
    Spec(
        "flow.consume", "a lock is consumed once; rate_lock_consumed arrives", needs=("flow.lock",)
    ),
    Spec(
        "flow.expire",
        "a short lock expires; rate_lock_expired arrives",
        needs=("flow.lock",),
        extra_s=EXPIRE_TTL_S + 1.0,
    ),
    Spec(
        "flow.terminals",
        "the flow's terminal is current after its ack, stale (terminal_stale) when it stops",
        needs=("flow.override",),
        extra_s=TERMINAL_WAIT_S,
    ),
    Spec(
        "flow.clear",
        "clearing the override brings the store back to market",
        needs=("flow.override",),
    ),
    Spec("flow.cleanup", "the flow leaves nothing behind but audit records", always=True),
    Spec("audit.verify", "the audit hash chain verifies"),
    Spec(
        "audit.flow",
        "the audit trail holds the flow's records",
        needs=("flow.override", "flow.lock", "flow.consume", "flow.expire", "flow.clear"),
    ),
)
BY_ID = {s.id: s for s in SPECS}
GROUPS = tuple(dict.fromkeys(s.group for s in SPECS))


def select(suite: str, wanted: Iterable[str] = ()) -> list[Spec]:
    """The checks to run, in registry order: the suite's, or the ``wanted`` ids and
    groups with everything they need. Any flow step brings the cleanup with it."""
    if suite not in SUITES:
        raise UsageError(f"--suite {suite!r}: choose {' or '.join(SUITES)}")
    wanted = [w.strip() for w in wanted if w.strip()]
    if not wanted:
        chosen = {s.id for s in SPECS if suite == FULL or s.smoke}
    else:
        chosen = set()
        for w in wanted:
            chosen |= _resolve(w)
        chosen = _closure(chosen)
    if any(BY_ID[i].group == "flow" for i in chosen):
        chosen.add("flow.cleanup")
    return [s for s in SPECS if s.id in chosen]


def _resolve(word: str) -> set[str]:
    if word in BY_ID:
        return {word}
    members = {s.id for s in SPECS if s.group == word}
    if members:
        return members
    raise UsageError(
        f"--check {word!r} is not a check id or group; groups: {', '.join(GROUPS)}; "
        f"ids: {', '.join(BY_ID)}"
    )


def _closure(ids: set[str]) -> set[str]:
    todo, seen = list(ids), set(ids)
    while todo:
        for need in BY_ID[todo.pop()].needs:
            if need not in seen:
                seen.add(need)
                todo.append(need)
    return seen

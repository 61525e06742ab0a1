"""Rate locks for ratectl: the lock endpoints as client calls, the lock table, the TTL.

:class:`LockClient` adds the ``/api/rates/lock*`` endpoints and ``/api/rates/breaches`` to
:class:`ratectl.client.Client`; errors are translated by the client's one ``_call`` (a
lock conflict gets its own hint). ``last_status`` tells a created lock (201) from one
returned again for a retried idempotency key (200).

Used by ``ratectl lock`` (:mod:`ratectl.cli_lock`) and the TUI's lock dialog; imported
lazily, as it pulls in httpx.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from rich.table import Table
from rich.text import Text

from ratectl import models, params
from ratectl.client import Client
from ratectl.errors import ConflictError, CtlError, UsageError
from ratectl.render import num, table
from ratehubd import wire

T = TypeVar("T")
STATES = ("active", "consumed", "released", "expired")
_STATE_STYLE = {"active": "green", "consumed": "cyan", "released": "dim", "expired": "yellow"}


class LockClient(Client):
    """The daemon's lock endpoints. ``last_status``: the HTTP status of the last reply."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_status: int | None = None
        self._http.event_hooks["response"].append(self._remember)

    def __enter__(self) -> LockClient:
        return self

    def _remember(self, resp: httpx.Response) -> None:
        self.last_status = resp.status_code

    def create_lock(self, body: dict[str, Any]) -> dict[str, Any]:
        return _a(dict, self._call("POST", "/api/rates/lock", json=body))

    def locks(self, store: str | None, state: str | None) -> list[Any]:
        query = {k: v for k, v in (("storeId", store), ("state", state)) if v}
        return _a(list, self._call("GET", "/api/rates/locks", params=query or None))

    def lock(self, lock_id: str) -> dict[str, Any]:
        return _a(dict, self._call("GET", f"/api/rates/locks/{_id(lock_id)}"))

    def consume_lock(self, lock_id: str) -> dict[str, Any]:
        return _a(dict, self._call("POST", f"/api/rates/locks/{_id(lock_id)}/consume"))

    def release_lock(self, lock_id: str) -> dict[str, Any]:
        return _a(dict, self._call("POST", f"/api/rates/locks/{_id(lock_id)}/release"))

    def breaches(self) -> list[Any]:
        return _a(list, self._call("GET", "/api/rates/breaches"))

    def _failure(self, status: int, env: wire.Envelope) -> CtlError:
        message = env.error or f"request failed with HTTP {status}"
        if status == 409:
            return ConflictError(f"{message} (see it with `ratectl lock show ID`)")
        if status == 404:
            return CtlError(f"{message} (list them with `ratectl lock list`)")
        return super()._failure(status, env)


def _a(kind: type[T], data: Any) -> T:
    if not isinstance(data, kind):
        raise CtlError(
            f"the daemon sent {type(data).__name__} data where {kind.__name__} was expected; "
            "is ratectl older than the daemon?"
        )
    return data


def _id(lock_id: str) -> str:
    text = lock_id.strip()
    if not text:
        raise UsageError("a lock id is required; list them with `ratectl lock list`")
    return quote(text, safe="")


# -- input ------------------------------------------------------------------------------------


def ttl_seconds(text: str, flag: str = "--ttl") -> int:
    """``300`` (seconds), ``90s``, ``5m``, ``1h`` -> whole seconds, at least 1."""
    raw = text.strip()
    try:
        seconds = int(raw) if raw.isdigit() else params.duration(raw).total_seconds()
    except UsageError:
        raise UsageError(
            f"{flag} {text!r} is not a duration; write it like 90s, 5m or 300 (seconds)"
        ) from None
    if seconds < 1 or seconds != int(seconds):
        raise UsageError(f"{flag} {text!r} must be a whole number of seconds, at least 1")
    return int(seconds)


def create_body(
    pair: str,
    *,
    ttl: int,
    store: str | None,
    reference: str | None,
    idempotency_key: str | None,
) -> dict[str, Any]:
    """The ``POST /api/rates/lock`` body."""
    body: dict[str, Any] = {"currencyPair": pair.strip(), "ttlSeconds": ttl}
    if store:
        body["storeId"] = store
    if reference:
        body["reference"] = reference
    if idempotency_key:
        body["idempotencyKey"] = idempotency_key
    return body


# -- output -----------------------------------------------------------------------------------


def parse(data: Any) -> wire.RateLock:
    return models.parse(wire.RateLock, data)


def parse_list(data: Any) -> list[wire.RateLock]:
    return models.parse_list(wire.RateLock, data)


def lock_table(locks: Sequence[wire.RateLock], *, now_ms: int, wide: bool = False) -> Table:
    """kubectl-style: ID first (to copy), then what the store honours and until when."""
    headers = ["ID", "PAIR", "STORE", "BUY", "SELL", "STATE", "EXPIRES", "REFERENCE"]
    if wide:
        headers += ["MID", "TTL", "CREATED", "ENDED", "ENDED BY", "AUTHOR", "IDEMPOTENCY KEY"]
    t = table(*headers)
    for lk in locks:
        row: list[str | Text] = [
            lk.lockId,
            Text(lk.currencyPair, style="bold"),
            lk.storeId or "(global)",
            num(lk.buyRate),
            num(lk.sellRate),
            Text(lk.state, style=_STATE_STYLE.get(lk.state, "")),
            expires(now_ms, lk.expiresAt) if lk.state == "active" else "-",
            lk.reference or "-",
        ]
        if wide:
            row += [
                num(lk.rate),
                f"{lk.ttlSeconds}s",
                lk.createdAt,
                lk.endedAt or "-",
                lk.endedBy or "-",
                lk.author,
                lk.idempotencyKey or "-",
            ]
        t.add_row(*row)
    return t


def expires(now_ms: int, iso_time: str) -> str:
    """``in 4m59s`` (to the second: a lock is short), or ``12s ago``."""
    ms = int(wire.parse_time(iso_time).timestamp() * 1000) - now_ms
    s = abs(ms) // 1000
    if s >= 3600:
        text = f"{s // 3600}h{s % 3600 // 60:02d}m"
    else:
        text = f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
    return f"in {text}" if ms >= 0 else f"{text} ago"


def summary(lk: wire.RateLock, now_ms: int) -> str:
    """One line for stderr: what was locked, at what rates, until when."""
    where = lk.storeId or "all stores"
    rates = f"buy {num(lk.buyRate)} sell {num(lk.sellRate)}"
    if lk.state == "active":
        return f"{lk.currencyPair} at {where}: {rates}, expires {expires(now_ms, lk.expiresAt)}"
    return f"{lk.currencyPair} at {where}: {rates}, {lk.state}"

"""The daemon's HTTP API as the dashboard uses it: blocking calls for thread workers.

Each call opens its own short-lived client (no state shared between worker threads)
and fails with a :class:`ratectl.errors.CtlError` whose message says what to do, as in
the CLI: the dialogs show it in place.
"""

from __future__ import annotations

from typing import Any

from ratectl.locks import LockClient
from ratectl.tui.options import TuiOptions


class Api:
    def __init__(self, options: TuiOptions) -> None:
        self.options = options

    def _client(self) -> LockClient:
        o = self.options
        return LockClient(o.url, o.token, o.timeout, token_source=o.token_source)

    def set_rate(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._client() as c:
            return c.set_rate(body)

    def create_lock(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._client() as c:
            return c.create_lock(body)

    def stores(self) -> list[Any]:
        with self._client() as c:
            return c.stores()

    def terminals(self, store: str) -> list[Any]:
        with self._client() as c:
            return c.terminals(store)

    def breaches(self) -> list[Any]:
        with self._client() as c:
            return c.breaches()

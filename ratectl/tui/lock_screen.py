"""LockScreen: lock the selected pair's buy/sell at the current store for a while.

Each attempt carries an idempotency key derived from this dialog and the request, so
resending the same request (after a timeout, say) never creates a second lock, while a
changed request gets a new key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from ratectl.tui import forms
from ratectl.tui.form_screen import Field, FormScreen, Submit


class LockScreen(FormScreen):
    """Create a rate lock: pair, time to live, reference."""

    TITLE_TEXT = "Create a rate lock"
    SUBMIT_LABEL = "Lock rates"

    def __init__(
        self, *, pair: str, store: str | None, known: Collection[str], hint: str, submit: Submit
    ) -> None:
        where = f"store {store}" if store else "all stores (global)"
        held = "The store's buy/sell now, held for a customer transaction."
        super().__init__(subtitle=f"At {where}. {hint}\n{held}", submit=submit)
        self.pair, self.store, self.known = pair, store, known
        self.nonce = uuid.uuid4()

    def fields(self) -> Sequence[Field]:
        return (
            Field("pair", "Pair", "USD/CAD", self.pair),
            Field("ttl", "Hold for", "90s, 5m or 300 (seconds)", "5m"),
            Field("reference", "Reference", "Customer transaction #TX123"),
        )

    def check(self, values: dict[str, str]) -> tuple[forms.Errors, dict[str, Any] | None]:
        return forms.lock(values, known=self.known, store=self.store)

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        same = json.dumps(body, sort_keys=True)
        return {**body, "idempotencyKey": f"tui-{uuid.uuid5(self.nonce, same)}"}

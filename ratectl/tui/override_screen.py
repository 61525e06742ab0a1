"""OverrideScreen: set an override for the selected pair at the current store.

Fixed buy and sell (a spread too, optionally), or a spread alone to follow the market;
an optional lifetime and reason. Checked in place (numbers, buy above sell, durations)
before the daemon sees it; the daemon's own refusals (spread bounds, tick) appear in
the dialog.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from ratectl.tui import forms
from ratectl.tui.form_screen import Field, FormScreen, Submit


class OverrideScreen(FormScreen):
    """Set an override: buy/sell or spread, lifetime, reason."""

    TITLE_TEXT = "Set an override"
    SUBMIT_LABEL = "Set override"

    def __init__(
        self,
        *,
        pair: str,
        store: str | None,
        known: Collection[str],
        hint: str,
        now: Callable[[], datetime],
        submit: Submit | None,
    ) -> None:
        where = f"store {store}" if store else "all stores (global)"
        explain = "Buy: what a customer pays (the higher); sell: what they receive."
        super().__init__(subtitle=f"For {where}. {hint}\n{explain}", submit=submit)
        self.pair, self.store, self.known, self.now = pair, store, known, now

    def fields(self) -> Sequence[Field]:
        return (
            Field("pair", "Pair", "USD/CAD", self.pair),
            Field("buy", "Buy", "1.3700"),
            Field("sell", "Sell", "1.3300"),
            Field("spread", "Spread", "3% or 0.03: instead of buy/sell, follows the market"),
            Field("valid_for", "Valid for", "1h (empty: the daemon's default)"),
            Field("reason", "Reason", "kept in the audit trail"),
        )

    def check(self, values: dict[str, str]) -> tuple[forms.Errors, dict[str, Any] | None]:
        return forms.override(values, known=self.known, store=self.store, now=self.now())

"""StoreScreen: switch the store whose rates and events the dashboard shows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ratectl.tui import forms
from ratectl.tui.form_screen import Field, FormScreen


class StoreScreen(FormScreen):
    """Pick a store id; empty for the global rates. Dismissed with ``{"storeId": ...}``."""

    TITLE_TEXT = "Switch store"
    SUBMIT_LABEL = "Switch"

    def __init__(self, *, store: str | None) -> None:
        now = f"now: {store}" if store else "now: the global rates"
        super().__init__(subtitle=f"{now}. Empty for the global rates.", submit=None)
        self.store = store

    def fields(self) -> Sequence[Field]:
        return (Field("store", "Store", "store123", self.store or ""),)

    def check(self, values: dict[str, str]) -> tuple[forms.Errors, dict[str, Any] | None]:
        return forms.store(values)

"""Checking what was typed into the dialogs. Pure: values in, errors or a request body out.

Each checker returns ``(errors, body)``: ``errors`` maps a field to what is wrong with it
and what to type instead (shown under that field); ``body`` is the request for the daemon,
or None while anything is wrong. The daemon still has the last word (spread bounds,
staleness, permissions); its refusals are shown in the dialog too.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from ratectl import params
from ratectl.errors import UsageError
from ratectl.locks import create_body, ttl_seconds
from ratectl.stream import normalize_pair

Errors = dict[str, str]
_STORE = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")  # as the daemon's keys name stores


def pair(text: str, known: Collection[str]) -> str:
    """A pair as typed -> ``USD/CAD``; a UsageError if it is not one the daemon prices."""
    if not text.strip():
        raise UsageError("which pair? e.g. USD/CAD")
    name = normalize_pair(text)
    if known and name not in known:
        raise UsageError(f"{name} is not priced here; pick one of {', '.join(sorted(known))}")
    return name


def _number(errors: Errors, values: Mapping[str, str], key: str, label: str) -> Decimal | None:
    text = values.get(key, "").strip()
    if not text:
        return None
    try:
        return params.decimal(text, label)
    except UsageError as exc:
        errors[key] = exc.message
        return None


def override(
    values: Mapping[str, str], *, known: Collection[str], store: str | None, now: datetime
) -> tuple[Errors, dict[str, Any] | None]:
    """The set-rate dialog: fixed buy and sell (spread optional), or a spread alone."""
    errors: Errors = {}
    body: dict[str, Any] = {}
    try:
        body["currencyPair"] = pair(values.get("pair", ""), known)
    except UsageError as exc:
        errors["pair"] = exc.message
    buy = _number(errors, values, "buy", "buy")
    sell = _number(errors, values, "sell", "sell")
    spread = _spread(errors, values.get("spread", ""))
    typed = {k for k in ("buy", "sell", "spread") if values.get(k, "").strip()}
    if not typed:
        errors["buy"] = "give buy and sell (fixed rates), or only a spread (follows the market)"
    elif "buy" in typed and "sell" not in typed and "sell" not in errors:
        errors["sell"] = "give sell too (what a customer receives), or clear buy"
    elif "sell" in typed and "buy" not in typed and "buy" not in errors:
        errors["buy"] = "give buy too (what a customer pays), or clear sell"
    if buy is not None and sell is not None and buy <= sell:
        errors["buy"] = (
            f"buy {buy} must be greater than sell {sell}: buy is what a customer pays for one "
            "unit (the higher price), sell what they receive (the lower)"
        )
    valid_for = values.get("valid_for", "").strip()
    if valid_for:
        try:
            body["validUntil"] = params.iso(now + params.duration(valid_for))
        except UsageError:
            errors["valid_for"] = f"{valid_for!r} is not a duration; write it like 90s, 30m or 1h"
    if errors:
        return errors, None
    if buy is not None and sell is not None:
        body["buyRate"], body["sellRate"] = float(buy), float(sell)
    if spread is not None:
        body["spread"] = float(spread)
    if store:
        body["storeId"] = store
    if values.get("reason", "").strip():
        body["reason"] = values["reason"].strip()
    return errors, body


def _spread(errors: Errors, text: str) -> Decimal | None:
    if not text.strip():
        return None
    try:
        value = params.spread(text)
    except UsageError as exc:
        errors["spread"] = exc.message.replace("--spread", "spread")
        return None
    if value >= 1:
        errors["spread"] = f"spread {text.strip()} is {value:.0%} of the mid; write 3% or 0.03"
        return None
    return value


def lock(
    values: Mapping[str, str], *, known: Collection[str], store: str | None
) -> tuple[Errors, dict[str, Any] | None]:
    """The lock dialog: a pair, how long, and what for."""
    errors: Errors = {}
    name = ""
    ttl = 0
    try:
        name = pair(values.get("pair", ""), known)
    except UsageError as exc:
        errors["pair"] = exc.message
    try:
        ttl = ttl_seconds(values.get("ttl", "").strip() or "5m", flag="TTL")
    except UsageError as exc:
        errors["ttl"] = exc.message
    if errors:
        return errors, None
    reference = values.get("reference", "").strip() or None
    body = create_body(name, ttl=ttl, store=store, reference=reference, idempotency_key=None)
    return errors, body


def store(values: Mapping[str, str]) -> tuple[Errors, dict[str, Any] | None]:
    """The store switcher: a store id, or nothing for the global rates."""
    text = values.get("store", "").strip()
    if text and not _STORE.match(text):
        return {
            "store": f"{text!r} is not a store id: 1-64 letters, digits or _.:@- characters"
        }, None
    return {}, {"storeId": text or None}

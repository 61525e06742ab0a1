"""The one wire schema, shared by the daemon and ratectl.

Shapes follow the integration guide (``seed/integration-guide.md``): camelCase
keys, timestamps in epoch milliseconds, money as JSON numbers. Inside the
engine money is Decimal; it becomes a float only here, at encoding, and every
published rate has at most 15 significant digits, so the float prints exactly
the decimal it came from.

The pydantic models document and validate the shapes (HTTP bodies, OpenAPI,
ratectl parsing); the hot path builds plain dicts with the ``*_dict``
functions, which a test checks against the models.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from ratehubd.engine.cross import KINDS, Quote
from ratehubd.engine.locks import Lock
from ratehubd.engine.model import MarketQuote, Override, StoreRate
from ratehubd.engine.pairs import parse_pair
from ratehubd.engine.thresholds import Breach

PROTOCOL_VERSION = 1


def _decimal_in(value: Any) -> Any:
    # JSON floats go through repr so 1.37 stays Decimal("1.37").
    if isinstance(value, float):
        return repr(value)
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_decimal_in),
    PlainSerializer(float, return_type=float, when_used="json"),
]


def now_ms(now: datetime) -> int:
    return int(now.timestamp() * 1000)


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as JavaScript's Date.toJSON writes it."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def parse_time(value: str | int | float) -> datetime:
    """Accept epoch milliseconds or an ISO 8601 string (a naive one is taken as UTC)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
        return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    raise ValueError(f"expected epoch milliseconds or an ISO 8601 time, got {value!r}")


# The largest seq (and any other integer the databases keep): their signed 64-bit INTEGER.
MAX_SEQ = 2**63 - 1


class WireModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


# -- rates -------------------------------------------------------------------------------


class OverrideInfo(WireModel):
    id: str
    storeId: str | None
    author: str
    reason: str
    validUntil: str
    version: int
    buyRate: Money | None = None
    sellRate: Money | None = None
    spread: Money | None = None


class Provenance(WireModel):
    marketMid: Money
    marketSources: list[str]
    marketTimestamp: int
    spreadApplied: Money
    tick: Money
    override: OverrideInfo | None = None
    legs: list[str] = Field(default_factory=list, description="how a cross rate was built")


class Rate(WireModel):
    """A published rate: what a store shows and honours."""

    currencyPair: str
    baseCurrency: str
    targetCurrency: str
    rate: Money = Field(description="mid rate")
    buyRate: Money = Field(description="what a customer pays for one unit of the base currency")
    sellRate: Money = Field(description="what a customer receives for one unit of the base")
    spread: Money = Field(description="relative total spread, (buyRate - sellRate) / rate")
    source: str
    storeId: str | None
    validUntil: str | None
    timestamp: int
    stale: bool = False
    provenance: Provenance | None = None


class Terminal(WireModel):
    """One connection on a store's channel and what it confirmed (``ack``)."""

    sessionId: int
    clientType: str
    keyName: str | None
    node: str | None = Field(description="the fleet node it is connected to")
    remoteAddr: str | None
    connectedAt: str
    lastSentSeq: int
    ackSeq: int | None
    ackChecksum: str | None = Field(description="the last table it confirmed")
    current: bool | None = Field(description="null: it never acknowledges (unconfirmed)")
    staleSinceMs: int | None = Field(description="epoch ms since when it is stale")
    state: Literal["current", "confirming", "stale", "unconfirmed"]
    expectedChecksum: str | None = Field(description="the newest table sent to it")
    acks: int


class StoreScreens(WireModel):
    """``GET /api/stores``: a store with connections and its terminals' states."""

    storeId: str
    terminals: int
    confirming: int = Field(description="terminals that acknowledge (current or not)")
    current: int
    stale: int
    unconfirmed: int


class MarketData(WireModel):
    currencyPair: str
    baseCurrency: str
    targetCurrency: str
    rate: Money
    sources: list[str]
    timestamp: int


def override_dict(ov: Override) -> dict[str, Any]:
    return {
        "id": ov.id,
        "currencyPair": str(ov.pair),
        "storeId": ov.store_id,
        "author": ov.author,
        "reason": ov.reason,
        "source": ov.source,
        "validUntil": iso(ov.valid_until),
        "version": ov.version,
        "createdAt": iso(ov.created_at),
        "buyRate": None if ov.buy is None else float(ov.buy),
        "sellRate": None if ov.sell is None else float(ov.sell),
        "spread": None if ov.spread is None else float(ov.spread),
    }


def rate_dict(r: StoreRate) -> dict[str, Any]:
    ov = r.override
    return {
        "currencyPair": str(r.pair),
        "baseCurrency": r.pair.base,
        "targetCurrency": r.pair.quote,
        "rate": float(r.mid),
        "buyRate": float(r.buy),
        "sellRate": float(r.sell),
        "spread": float(round(r.spread, 8)),
        "source": r.source,
        "storeId": r.store_id,
        "validUntil": iso(r.valid_until) if r.valid_until else None,
        "timestamp": now_ms(r.timestamp),
        "stale": r.stale,
        "provenance": {
            "marketMid": float(r.market.mid),
            "marketSources": list(r.market.sources),
            "marketTimestamp": now_ms(r.market.timestamp),
            "spreadApplied": float(round(r.spread_applied, 8)),
            "tick": float(r.tick),
            "override": None if ov is None else override_dict(ov),
            "legs": list(r.legs),
        },
    }


def lock_dict(lk: Lock) -> dict[str, Any]:
    return {
        "lockId": lk.id,
        "currencyPair": str(lk.pair),
        "baseCurrency": lk.pair.base,
        "targetCurrency": lk.pair.quote,
        "storeId": lk.store_id,
        "buyRate": float(lk.buy),
        "sellRate": float(lk.sell),
        "rate": float(lk.mid),
        "reference": lk.reference,
        "state": lk.state,
        "createdAt": iso(lk.created_at),
        "expiresAt": iso(lk.expires_at),
        "ttlSeconds": lk.ttl_seconds,
        "idempotencyKey": lk.idempotency_key,
        "endedAt": iso(lk.ended_at) if lk.ended_at else None,
        "endedBy": lk.ended_by,
        "author": lk.author,
    }


def breach_dict(b: Breach) -> dict[str, Any]:
    return {
        "kind": b.key.kind,
        "currencyPair": str(b.key.pair),
        "storeId": b.key.store_id,
        "state": b.state,
        "value": None if b.value is None else float(b.value),
        "threshold": float(b.threshold),
        "detail": b.detail,
        "at": iso(b.at),
    }


def market_dict(q: MarketQuote) -> dict[str, Any]:
    return {
        "currencyPair": str(q.pair),
        "baseCurrency": q.pair.base,
        "targetCurrency": q.pair.quote,
        "rate": float(q.mid),
        "sources": list(q.sources),
        "timestamp": now_ms(q.timestamp),
    }


def quote_wire(q: Quote) -> dict[str, Any]:
    """A source quote between the nodes of a fleet: exact decimals, the source's time."""
    return {
        "pair": str(q.pair),
        "mid": str(q.mid),
        "source": q.source,
        "timestamp": q.timestamp.isoformat(),
        "kind": q.kind,
        "bid": None if q.bid is None else str(q.bid),
        "ask": None if q.ask is None else str(q.ask),
    }


def quote_from_wire(d: dict[str, Any]) -> Quote:
    kind = d["kind"]
    if kind not in KINDS:
        raise ValueError(f"unknown quote kind {kind!r}")
    return Quote(
        pair=parse_pair(d["pair"]),
        mid=Decimal(d["mid"]),
        source=d["source"],
        timestamp=datetime.fromisoformat(d["timestamp"]),
        kind=kind,
        bid=None if d.get("bid") is None else Decimal(d["bid"]),
        ask=None if d.get("ask") is None else Decimal(d["ask"]),
    )


# -- HTTP --------------------------------------------------------------------------------


class Envelope(WireModel):
    success: bool
    data: Any = None
    error: str | None = None
    code: str | None = None
    details: dict[str, Any] | None = None
    timestamp: int


class SetRateRequest(WireModel):
    """Body of ``POST /api/rates/set``: the guide's body, plus optional policy fields."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    currencyPair: str
    buyRate: Money | None = None
    sellRate: Money | None = None
    spread: Money | None = None
    source: str = "manual"
    storeId: str | None = None
    validUntil: str | int | None = Field(
        default=None, description="ISO 8601 time or epoch ms; default: the configured lifetime"
    )
    reason: str | None = None
    expectedVersion: int | None = Field(
        default=None, description="compare-and-set: the override version you last saw"
    )


class ClearRateRequest(WireModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    currencyPair: str
    storeId: str | None = None
    reason: str | None = None


class LockCreateRequest(WireModel):
    """Body of ``POST /api/rates/lock``: the guide's createRateLock(pair, ttl, store, ref)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    currencyPair: str
    ttlSeconds: int = Field(default=300, description="how long the rates hold")
    storeId: str | None = None
    reference: str = Field(default="", description="e.g. 'Customer transaction #TX123'")
    idempotencyKey: str | None = Field(
        default=None, description="retry-safe: the same key and request return the same lock"
    )


class RateLock(WireModel):
    lockId: str
    currencyPair: str
    baseCurrency: str
    targetCurrency: str
    storeId: str | None
    buyRate: Money
    sellRate: Money
    rate: Money
    reference: str
    state: Literal["active", "consumed", "released", "expired"]
    createdAt: str
    expiresAt: str
    ttlSeconds: int
    idempotencyKey: str | None
    endedAt: str | None
    endedBy: str | None
    author: str


# -- audit -------------------------------------------------------------------------------

# Every kind of audit record (GET /api/audit?type=..., ratectl audit --type ...).
AUDIT_TYPES = (
    "override_set",
    "override_cleared",
    "override_expired",
    "lock_created",
    "lock_consumed",
    "lock_released",
    "lock_expired",
    "breach_begun",
    "breach_cleared",
    "breaker_opened",
    "breaker_reset",
    "key_created",
    "key_revoked",
    "config_reloaded",
    "terminal_stale",
    "terminal_current",
)


# -- WebSocket ---------------------------------------------------------------------------

ClientType = Literal["dashboard", "store_os"]

# Message and event type names from the guide.
RATE_UPDATE = "rate_update"
RATE_OVERRIDE_SET = "rate_override_set"
RATE_OVERRIDE_CLEARED = "rate_override_cleared"
RATE_OVERRIDE_EXPIRED = "rate_override_expired"
RATE_THRESHOLD_BREACH = "rate_threshold_breach"
# A confirming terminal that has not acknowledged the newest table in time, and its return.
TERMINAL_STALE = "terminal_stale"
TERMINAL_CURRENT = "terminal_current"
RATE_LOCK_CREATED = "rate_lock_created"
RATE_LOCK_EXPIRED = "rate_lock_expired"
RATE_LOCK_CONSUMED = "rate_lock_consumed"
RATE_LOCK_RELEASED = "rate_lock_released"
MARKET_DATA_UPDATE = "market_data_update"
SYSTEM_STATUS = "system_status"
HEARTBEAT = "heartbeat"
PING = "ping"
PONG = "pong"
ERROR = "error"
WELCOME = "welcome"
SUBSCRIBED = "subscribed"


class WsMessage(WireModel):
    type: str
    data: Any = None
    timestamp: int | None = None
    seq: int | None = None
    epoch: str | None = None


class SubscribeData(WireModel):
    symbols: list[str] = Field(default_factory=list)
    subscriptionType: str = "rates"
    storeId: str | None = None
    frequency: int | None = Field(
        default=None,
        ge=0,
        le=3_600_000,
        description="minimum ms between rate updates (0 to 3,600,000; 0 or absent: every window)",
    )
    provenance: Literal["changes", "always"] | None = Field(
        default=None,
        description="changes (default): a rate carries provenance, storeId, validUntil and "
        "stale in the snapshot and when they change; always: in every frame",
    )


class RateSubscribeData(WireModel):
    currencies: list[str] = Field(default_factory=list)
    storeId: str | None = None
    includeMarketData: bool = False
    rateType: Literal["buy", "sell", "both"] = "both"
    provenance: Literal["changes", "always"] | None = Field(
        default=None,
        description="changes (default): a rate carries provenance, storeId, validUntil and "
        "stale in the snapshot and when they change; always: in every frame",
    )


def message(type_: str, data: Any, ts: int, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_, "data": data, "timestamp": ts}
    out.update(extra)
    return out


def encode(msg: dict[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False)

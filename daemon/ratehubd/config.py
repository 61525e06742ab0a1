"""Typed configuration, loaded and validated once.

Precedence: command-line flag > environment variable > TOML file > default.
The defaults are exactly what ``examples.toml`` documents (a test loads it and
compares). The guide's environment variables keep their meaning:

====================================  ==========================================
``API_HOST`` (``host[:port]``)        ``server.host`` / ``server.port``
``WEBSOCKET_PORT``                    ``server.hub_port`` (extra hub listener)
``WEBSOCKET_HEARTBEAT_INTERVAL`` ms   ``hub.heartbeat_interval_ms``
``RATE_UPDATE_FREQUENCY`` ms          ``feed.update_frequency_ms``
``DEFAULT_SPREAD``                    ``engine.default_spread``
``API_SECRET_KEY``                    admin key (never stored, only its hash)
``CORS_ORIGINS`` (comma-separated)    ``server.cors_origins``
``DEBUG_WEBSOCKET`` (true/false)      ``server.debug_websocket``
====================================  ==========================================

``RATEHUB_STATE_DIR`` and ``RATEHUB_CONFIG`` name the state directory and the file;
``RATEHUB_DATABASE_URL``, ``RATEHUB_REDIS_URL`` and ``RATEHUB_NODE_ID`` set up a fleet
(``store.url``, ``backplane.url``, ``backplane.node_id``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from ratehubd.adapters.feeds.settings import SourcesSettings
from ratehubd.engine.pairs import Pair, parse_pair
from ratehubd.engine.policy import OverridePolicy, PairPolicy
from ratehubd.engine.thresholds import ThresholdPolicy
from ratehubd.errors import ConfigError, UnknownPair
from ratehubd.urls import check_database_url, check_redis_url, redact_url


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _f(default: Any, description: str, **kw: Any) -> Any:
    return Field(default=default, description=description, **kw)


class ServerConfig(_Section):
    host: str = _f("127.0.0.1", "Address to listen on. Env: API_HOST (host or host:port).")
    port: int = _f(
        3000, "API port (HTTP and /api/rates/websocket); 0 picks a free port.", ge=0, le=65535
    )
    hub_port: int = _f(
        3001,
        "Extra hub-only WebSocket listener (WEBSOCKET_PORT); 0 picks a free port, -1 turns it off.",
        ge=-1,
        le=65535,
    )
    state_dir: str = _f(
        "", "Database and admin key; empty: $XDG_STATE_HOME/ratehub. Env: RATEHUB_STATE_DIR."
    )
    cors_origins: tuple[str, ...] = _f(
        (),
        "Browser origins allowed for HTTP and the WebSocket; empty allows any. Env: CORS_ORIGINS.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = _f("info", "Log level.")
    log_format: Literal["text", "json"] = _f("text", "Log format on stderr (json for journald).")
    debug_websocket: bool = _f(
        False, "Log every WebSocket open, close and message. Env: DEBUG_WEBSOCKET."
    )
    drain_timeout_s: float = _f(10.0, "Seconds a graceful stop may take before it is forced.", gt=0)
    tls_cert_file: str = _f(
        "", "PEM certificate (chain): serve https and wss on every listener; empty: plain."
    )
    tls_key_file: str = _f("", "PEM private key of tls_cert_file; empty: it is in tls_cert_file.")


class HubConfig(_Section):
    heartbeat_interval_ms: int = _f(
        30000, "App-level heartbeat period. Env: WEBSOCKET_HEARTBEAT_INTERVAL.", ge=100
    )
    ping_interval_s: float = _f(5.0, "Protocol ping period (detects dead clients).", gt=0)
    ping_timeout_s: float = _f(
        5.0, "A client that does not answer a ping in time is dropped.", gt=0
    )
    close_timeout_s: float = _f(
        2.0,
        "How long to wait for a dropped client's TCP close (dead client gone in <= 12 s).",
        gt=0,
    )
    batch_window_ms: int = _f(50, "Rate changes within a window leave as one frame.", ge=1, le=1000)
    max_frame_bytes: int = _f(65536, "Largest inbound frame; bigger ones close with 1009.", ge=1024)
    queue_frames: int = _f(64, "Frames held for a client whose socket is not draining.", ge=4)
    messages_per_second: float = _f(20.0, "Inbound messages a client may send per second.", gt=0)
    message_burst: int = _f(40, "Inbound burst allowance above that rate.", ge=1)
    max_connections_per_key: int = _f(10000, "Open WebSockets one API key may hold.", ge=1)
    max_connections_per_store: int = _f(1000, "Open WebSockets on one store's channel.", ge=1)
    send_buffer_bytes: int = _f(
        0, "SO_SNDBUF for hub-port clients (bounds kernel memory per client); 0 = OS default.", ge=0
    )
    status_interval_s: float = _f(10.0, "Period of the system_status event to dashboards.", gt=0)
    confirm_timeout_ms: int = _f(
        3000,
        "A terminal that acknowledges (ack) and has not confirmed the newest table this long "
        "after it was sent is stale.",
        ge=100,
    )
    resume_retention_s: int = _f(
        86400,
        "How far back a reconnecting client can resume (lastSeq): events are kept in the "
        "database's log this long, for every store, then pruned; older is a gap.",
        ge=60,
    )


class FeedConfig(_Section):
    kind: Literal["simulated"] = _f("simulated", "Market data source.")
    update_frequency_ms: int = _f(
        5000, "Simulated fiat tick period. Env: RATE_UPDATE_FREQUENCY.", ge=10
    )
    crypto_speedup: int = _f(5, "Crypto pairs tick this many times per fiat tick.", ge=1)
    seed: int | None = _f(None, "Random seed for a reproducible simulated feed.")


class EngineConfig(_Section):
    default_spread: Decimal = _f(
        Decimal("0.02"),
        "Relative total spread, (buy - sell) / mid; 0.02 = 2 %. Env: DEFAULT_SPREAD.",
    )
    min_spread: Decimal = _f(Decimal("0.001"), "Smallest spread an override may have.")
    max_spread: Decimal = _f(Decimal("0.10"), "Largest spread an override may have.")

    @field_validator("default_spread", "min_spread", "max_spread")
    @classmethod
    def _fraction(cls, v: Decimal) -> Decimal:
        if not (Decimal(0) < v < Decimal(1)):
            raise ValueError("must be a fraction between 0 and 1 (0.02 means 2 %)")
        return v


class OverridesConfig(_Section):
    default_lifetime_s: int = _f(3600, "Lifetime of an override set without validUntil.", ge=1)
    max_lifetime_s: int = _f(7 * 86400, "Longest lifetime an override may ask for.", ge=1)
    require_reason: bool = _f(False, "Stricter policy: refuse overrides without a reason.")
    require_store: bool = _f(False, "Stricter policy: refuse global overrides (no storeId).")
    deviation_action: Literal["reject", "warn"] = _f(
        "reject",
        "An override beyond a pair's max_override_deviation: reject it, or warn (accept it and "
        "report an override_deviation breach).",
    )


class StoreSpreads(_Section):
    spread: Decimal | None = _f(None, "This store's spread for every pair; unset: each pair's.")
    pairs: dict[str, Decimal] = _f({}, 'Spread per pair at this store, e.g. "USD/CAD" = "0.03".')

    @field_validator("pairs")
    @classmethod
    def _pair_names(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        try:
            return {str(parse_pair(name)): spread for name, spread in v.items()}
        except UnknownPair as exc:
            raise ValueError(exc.message) from None


class AuditConfig(_Section):
    retention_years: int = _f(
        5, "Keep audit records this long (FINTRAC: at least five years), then prune.", ge=1
    )
    prune_interval_s: float = _f(3600.0, "How often old audit records are pruned.", gt=0)


class StoreConfig(_Section):
    url: str = _f(
        "",
        "Database URL; empty: SQLite in the state dir. A fleet shares one PostgreSQL: "
        "postgresql+psycopg://USER:PASSWORD@HOST/DB. Env: RATEHUB_DATABASE_URL.",
        repr=False,
    )

    write_timeout_ms: int = _f(
        5000,
        "PostgreSQL: the deadline of a write, from its request to its commit (statement and "
        "lock timeouts too). One the database cannot commit in time is rolled back and "
        "answered 503, never committed later.",
        ge=100,
        le=600_000,
    )
    connect_timeout_s: int = _f(
        5, "PostgreSQL: seconds to wait for a new connection before giving up.", ge=1, le=600
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_database_url(v)


class BackplaneConfig(_Section):
    url: str = _f(
        "",
        "Redis URL for fan-out between the nodes of a fleet (redis://HOST:6379/0); empty: "
        "in-process, one node. Env: RATEHUB_REDIS_URL.",
        repr=False,
    )
    channel: str = _f("ratehub:events", "Redis pub/sub channel every node of the fleet uses.")
    node_id: str = _f(
        "",
        "This node's name in the fleet; empty: HOSTNAME-PID. Env: RATEHUB_NODE_ID.",
        max_length=64,
    )
    reorder_wait_ms: int = _f(
        500,
        "How long an event may wait for a missing lower seq before it is read from the database.",
        ge=1,
    )
    poll_interval_s: float = _f(
        2.0, "How often a node checks the database for events it was not told about.", gt=0
    )
    queue_messages: int = _f(
        10000, "Messages held for Redis while it is unreachable (the oldest go first).", ge=1
    )
    key_sync_interval_s: float = _f(
        1.0,
        "How often a node reads the shared API keys for keys created or revoked on other "
        "nodes (a key revoked elsewhere works here at most this long).",
        gt=0,
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return check_redis_url(v)

    @field_validator("node_id")
    @classmethod
    def _node(cls, v: str) -> str:
        if "|" in v or any(c.isspace() for c in v):
            raise ValueError("may not contain '|' or spaces")
        return v


class PairConfig(_Section):
    start: Decimal = Field(gt=0, description="Simulated feed's starting (and mean) mid.")
    tick: Decimal = Field(gt=0, description="Rounding tick; buy rounds up, sell down.")
    kind: Literal["fiat", "crypto"] = _f(
        "fiat", "Pair class: crypto ticks faster, locks are shorter."
    )
    spread: Decimal | None = _f(None, "This pair's spread; unset uses engine.default_spread.")
    volatility: Decimal = _f(Decimal("0.0002"), "Simulated feed: relative move per tick (1 sigma).")
    sanity_min: Decimal | None = _f(None, "Reject market mids below this; unset: start / 3.")
    sanity_max: Decimal | None = _f(None, "Reject market mids above this; unset: start x 3.")
    max_jump: Decimal = _f(Decimal("0.05"), "Reject a tick that moves more than this (relative).")
    max_override_deviation: Decimal = _f(
        Decimal("0.05"), "How far an override's mid may sit from the market mid (relative)."
    )
    staleness_s: float = _f(300.0, "Market data older than this marks the pair stale.", gt=0)
    max_lock_s: int = _f(1800, "Longest rate lock for this pair.", ge=1)
    warn_deviation: Decimal = _f(
        Decimal("0.03"), "Breach: an override's mid further than this from market (relative)."
    )
    jump_threshold: Decimal = _f(
        Decimal("0.02"), "Breach: the market moved more than this within jump_window_s."
    )
    jump_window_s: float = _f(60.0, "Window for the market-jump breach.", gt=0)
    buy_share: Decimal = _f(
        Decimal("0.5"),
        "Share of the spread above the mid (buy side); 0.5 is symmetric.",
        gt=0,
        lt=1,
    )


def _default_pairs() -> dict[str, PairConfig]:
    fiat = {"tick": Decimal("0.0001"), "volatility": Decimal("0.0002")}
    crypto = {
        "tick": Decimal("0.01"),
        "kind": "crypto",
        "volatility": Decimal("0.001"),
        "max_jump": Decimal("0.10"),
        "max_override_deviation": Decimal("0.10"),
        "staleness_s": 60.0,
        "max_lock_s": 300,
        "warn_deviation": Decimal("0.05"),
        "jump_threshold": Decimal("0.05"),
    }
    return {
        "USD/CAD": PairConfig(start=Decimal("1.35"), **fiat),
        "EUR/CAD": PairConfig(start=Decimal("1.49"), **fiat),
        "GBP/CAD": PairConfig(start=Decimal("1.76"), **fiat),
        "BTC/CAD": PairConfig(start=Decimal("135000"), **crypto),
        "ETH/CAD": PairConfig(start=Decimal("4500"), **crypto),
    }


class SecurityConfig(_Section):
    api_secret_key: SecretStr | None = Field(
        default=None, exclude=True, description="Admin key. Env only: API_SECRET_KEY."
    )
    api_secret_key_file: str = _f(
        "", "File holding the admin key (e.g. a systemd credential); instead of API_SECRET_KEY."
    )
    requests_per_second: float = _f(
        50.0, "HTTP requests one API key may make per second (429 beyond); 0: no limit.", ge=0
    )
    burst: int = _f(100, "HTTP requests one API key may make at once above that rate.", ge=1)


class BoardConfig(_Section):
    enabled: bool = _f(True, "Serve the store rate board at /board (a page for store screens).")
    title: str = _f("Exchange rates", "The board's heading.", min_length=1, max_length=80)
    we_buy_label: str = _f(
        "We buy",
        "Column of the rate the store buys a currency at (the customer's sellRate).",
        min_length=1,
        max_length=40,
    )
    we_sell_label: str = _f(
        "We sell",
        "Column of the rate the store sells a currency at (the customer's buyRate).",
        min_length=1,
        max_length=40,
    )
    offline_after_ms: int = _f(
        5000,
        "A board disconnected this long hides its rates and says it is not live.",
        ge=1000,
        le=600000,
    )


class Config(_Section):
    server: ServerConfig = ServerConfig()
    hub: HubConfig = HubConfig()
    feed: FeedConfig = FeedConfig()
    engine: EngineConfig = EngineConfig()
    overrides: OverridesConfig = OverridesConfig()
    audit: AuditConfig = AuditConfig()
    sources: SourcesSettings = SourcesSettings()
    stores: dict[str, StoreSpreads] = _f(
        {}, "Spreads per store: DEFAULT_SPREAD, then the pair's, then the store's."
    )
    store: StoreConfig = StoreConfig()
    backplane: BackplaneConfig = BackplaneConfig()
    pairs: dict[str, PairConfig] = Field(default_factory=_default_pairs)
    security: SecurityConfig = SecurityConfig()
    board: BoardConfig = BoardConfig()

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, v: dict[str, PairConfig]) -> dict[str, PairConfig]:
        out = {}
        for name, pc in v.items():
            try:
                out[str(parse_pair(name))] = pc
            except UnknownPair as exc:
                raise ValueError(exc.message) from None
        if not out:
            raise ValueError("at least one pair must be configured")
        return out

    # -- derived values -------------------------------------------------------------------

    @property
    def state_path(self) -> Path:
        return state_dir(self.server.state_dir)

    def pair_policies(self) -> dict[Pair, PairPolicy]:
        eng = self.engine
        out = {}
        for name, pc in self.pairs.items():
            pair = parse_pair(name)
            out[pair] = PairPolicy(
                pair=pair,
                tick=pc.tick,
                spread=pc.spread if pc.spread is not None else eng.default_spread,
                min_spread=eng.min_spread,
                max_spread=eng.max_spread,
                max_override_deviation=pc.max_override_deviation,
                sanity_min=pc.sanity_min if pc.sanity_min is not None else pc.start / 3,
                sanity_max=pc.sanity_max if pc.sanity_max is not None else pc.start * 3,
                max_jump=pc.max_jump,
                staleness_seconds=pc.staleness_s,
                max_lock_seconds=pc.max_lock_s,
                buy_share=pc.buy_share,
                kind=pc.kind,
            )
        return out

    def store_spreads(self) -> dict[str, dict[Pair | None, Decimal]]:
        out: dict[str, dict[Pair | None, Decimal]] = {}
        for store, sc in self.stores.items():
            spreads: dict[Pair | None, Decimal] = {parse_pair(p): v for p, v in sc.pairs.items()}
            if sc.spread is not None:
                spreads[None] = sc.spread
            out[store] = spreads
        return out

    def threshold_policies(self) -> dict[Pair, ThresholdPolicy]:
        return {
            parse_pair(name): ThresholdPolicy(
                warn_deviation=pc.warn_deviation,
                jump=pc.jump_threshold,
                jump_window_s=pc.jump_window_s,
            )
            for name, pc in self.pairs.items()
        }

    def override_policy(self) -> OverridePolicy:
        o = self.overrides
        return OverridePolicy(
            default_lifetime_seconds=o.default_lifetime_s,
            max_lifetime_seconds=o.max_lifetime_s,
            require_reason=o.require_reason,
            require_store=o.require_store,
            deviation_action=o.deviation_action,
        )

    @property
    def heartbeat(self) -> timedelta:
        return timedelta(milliseconds=self.hub.heartbeat_interval_ms)


def state_dir(configured: str = "", env: Mapping[str, str] = os.environ) -> Path:
    """``configured``, else ``$XDG_STATE_HOME/ratehub``, else ``~/.local/state/ratehub``."""
    if configured:
        return Path(configured).expanduser()
    xdg = env.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "ratehub"


# -- loading --------------------------------------------------------------------------------

_BOOL = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


def _split_host(text: str) -> tuple[str, str]:
    """``host``, ``host:port``, ``:port``, ``[v6]:port`` or a bare IPv6 address."""
    if text.startswith("["):
        name, _, rest = text[1:].partition("]")
        return name, rest.removeprefix(":")
    if text.count(":") == 1:
        name, _, port = text.partition(":")
        return name, port
    return text, ""


def _env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """Map the guide's environment variables onto config keys."""
    layer: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        layer.setdefault(section, {})[key] = value

    if host := env.get("API_HOST"):
        name, port = _split_host(host.strip())
        if name:
            put("server", "host", name)
        if port:
            put("server", "port", port)
    if v := env.get("WEBSOCKET_PORT"):
        put("server", "hub_port", v)
    if v := env.get("WEBSOCKET_HEARTBEAT_INTERVAL"):
        put("hub", "heartbeat_interval_ms", v)
    if v := env.get("RATE_UPDATE_FREQUENCY"):
        put("feed", "update_frequency_ms", v)
    if v := env.get("DEFAULT_SPREAD"):
        put("engine", "default_spread", v)
    if v := env.get("CORS_ORIGINS"):
        put("server", "cors_origins", [o.strip() for o in v.split(",") if o.strip()])
    if v := env.get("DEBUG_WEBSOCKET"):
        put("server", "debug_websocket", _BOOL.get(v.strip().lower(), v))
    if v := env.get("RATEHUB_STATE_DIR"):
        put("server", "state_dir", v)
    if v := env.get("API_SECRET_KEY"):
        put("security", "api_secret_key", v)
    if v := env.get("RATEHUB_DATABASE_URL"):
        put("store", "url", v)
    if v := env.get("RATEHUB_REDIS_URL"):
        put("backplane", "url", v)
    if v := env.get("RATEHUB_NODE_ID"):
        put("backplane", "node_id", v)
    return layer


_ENV_NAMES = {
    ("server", "host"): "API_HOST",
    ("server", "port"): "API_HOST",
    ("server", "hub_port"): "WEBSOCKET_PORT",
    ("hub", "heartbeat_interval_ms"): "WEBSOCKET_HEARTBEAT_INTERVAL",
    ("feed", "update_frequency_ms"): "RATE_UPDATE_FREQUENCY",
    ("engine", "default_spread"): "DEFAULT_SPREAD",
    ("server", "cors_origins"): "CORS_ORIGINS",
    ("server", "debug_websocket"): "DEBUG_WEBSOCKET",
    ("server", "state_dir"): "RATEHUB_STATE_DIR",
    ("security", "api_secret_key"): "API_SECRET_KEY",
    ("store", "url"): "RATEHUB_DATABASE_URL",
    ("backplane", "url"): "RATEHUB_REDIS_URL",
    ("backplane", "node_id"): "RATEHUB_NODE_ID",
}


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _origin(
    loc: tuple[str | int, ...], env: dict[str, Any], flags: dict[str, Any], path: Path | None
) -> str:
    section = env.get(str(loc[0])) if loc else None
    if len(loc) >= 2 and isinstance(section, dict) and loc[1] in section:
        return f"environment variable {_ENV_NAMES.get((str(loc[0]), str(loc[1])), '?')}"
    fsection = flags.get(str(loc[0])) if loc else None
    if len(loc) >= 2 and isinstance(fsection, dict) and loc[1] in fsection:
        return "command-line flag"
    if len(loc) == 1 and loc[0] in flags:
        return "command-line flag"
    return f"file {path}" if path else "defaults"


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def load_config(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Mapping[str, Any]] | None = None,
) -> Config:
    """Build the one Config: defaults < file < environment < flags. Raises ConfigError
    listing every problem, each with the key and where its value came from."""
    env = os.environ if env is None else env
    if path is None and env.get("RATEHUB_CONFIG"):
        path = Path(env["RATEHUB_CONFIG"])
    file_layer = read_toml(path) if path is not None else {}
    env_layer = _env_layer(env)
    flag_layer = {k: dict(v) for k, v in (flags or {}).items()}
    merged = _merge(_merge(file_layer, env_layer), flag_layer)
    found: list[tuple[tuple[str | int, ...], str]] = []
    cfg = None
    try:
        cfg = Config.model_validate(merged)
    except ValidationError as exc:
        found = [(tuple(err["loc"]), _explain(err)) for err in exc.errors()]
    if cfg is not None:
        found = _cross_check(cfg)
    if not found:
        assert cfg is not None
        return cfg
    problems = [
        f"{'.'.join(str(p) for p in loc)}: {msg} (from {_origin(loc, env_layer, flag_layer, path)})"
        for loc, msg in found
    ]
    raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems), problems)


def _explain(err: Any) -> str:
    """Pydantic's message, with the value given, or the keys allowed where one is unknown."""
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        model: Any = Config
        if len(loc) == 2:
            model = Config.model_fields[str(loc[0])].annotation
        elif len(loc) == 3 and loc[0] == "pairs":
            model = PairConfig
        return f"unknown key; the keys here are {', '.join(model.model_fields)}"
    secret = loc[:2] == ("security", "api_secret_key")  # never repeat a secret
    if isinstance(err.get("input"), str | int | float) and err["type"] != "missing" and not secret:
        value = err["input"]
        if loc[1:2] == ("url",) and isinstance(value, str):
            value = redact_url(value)  # a URL's password is a secret too
        return f"{err['msg']}, got {value!r}"
    return str(err["msg"])


def _cross_check(cfg: Config) -> list[tuple[tuple[str | int, ...], str]]:
    """Rules across keys: every spread within [min_spread, max_spread], lifetimes in order."""
    eng = cfg.engine
    out: list[tuple[tuple[str | int, ...], str]] = []
    bounds = f"[engine.min_spread {eng.min_spread}, engine.max_spread {eng.max_spread}]"
    if eng.min_spread >= eng.max_spread:
        out.append((("engine", "max_spread"), f"{eng.max_spread} must exceed min_spread"))
    elif not eng.min_spread <= eng.default_spread <= eng.max_spread:
        out.append((("engine", "default_spread"), f"{eng.default_spread} is outside {bounds}"))
    for name, pc in cfg.pairs.items():
        if pc.spread is not None and not eng.min_spread <= pc.spread <= eng.max_spread:
            out.append((("pairs", name, "spread"), f"{pc.spread} is outside {bounds}"))
        if pc.tick >= pc.start:
            out.append((("pairs", name, "tick"), f"{pc.tick} must be below start {pc.start}"))
    for store, sc in cfg.stores.items():
        for where, spread in [
            ("spread", sc.spread),
            *((f"pairs.{p}", v) for p, v in sc.pairs.items()),
        ]:
            if spread is not None and not eng.min_spread <= spread <= eng.max_spread:
                out.append((("stores", store, where), f"{spread} is outside {bounds}"))
        for p in sc.pairs:
            if p not in cfg.pairs:
                out.append((("stores", store, "pairs"), f"{p} is not a configured pair"))
    if cfg.server.tls_key_file and not cfg.server.tls_cert_file:
        out.append((("server", "tls_key_file"), "is set but server.tls_cert_file is not"))
    if cfg.backplane.url and not cfg.store.url.startswith("postgresql"):
        out.append(
            (
                ("backplane", "url"),
                "a fleet (a Redis backplane) needs a shared database: set store.url "
                "(RATEHUB_DATABASE_URL) to postgresql+psycopg://USER:PASSWORD@HOST/DB",
            )
        )
    o = cfg.overrides
    if o.default_lifetime_s > o.max_lifetime_s:
        out.append(
            (
                ("overrides", "default_lifetime_s"),
                f"{o.default_lifetime_s} exceeds overrides.max_lifetime_s {o.max_lifetime_s}",
            )
        )
    return out

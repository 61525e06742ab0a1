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

``RATEHUB_STATE_DIR`` and ``RATEHUB_CONFIG`` name the state directory and the file.
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

from daemon.engine.pairs import Pair, parse_pair
from daemon.engine.policy import OverridePolicy, PairPolicy
from daemon.errors import ConfigError, UnknownPair


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=0, le=65535)
    hub_port: int = Field(
        default=3001, ge=-1, le=65535, description="extra hub listener; 0 any free port, -1 off"
    )
    state_dir: str = ""
    cors_origins: tuple[str, ...] = ()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    debug_websocket: bool = False
    drain_timeout_s: float = Field(default=10.0, gt=0)


class HubConfig(_Section):
    heartbeat_interval_ms: int = Field(default=30000, ge=100)
    ping_interval_s: float = Field(default=5.0, gt=0)
    ping_timeout_s: float = Field(default=10.0, gt=0)
    batch_window_ms: int = Field(default=50, ge=1, le=1000)
    max_frame_bytes: int = Field(default=65536, ge=1024)
    queue_frames: int = Field(default=64, ge=4)
    messages_per_second: float = Field(default=20.0, gt=0)
    message_burst: int = Field(default=40, ge=1)


class FeedConfig(_Section):
    kind: Literal["simulated"] = "simulated"
    update_frequency_ms: int = Field(default=5000, ge=10)
    crypto_speedup: int = Field(default=5, ge=1)
    seed: int | None = None


class EngineConfig(_Section):
    default_spread: Decimal = Decimal("0.02")
    min_spread: Decimal = Decimal("0.001")
    max_spread: Decimal = Decimal("0.10")

    @field_validator("default_spread", "min_spread", "max_spread")
    @classmethod
    def _fraction(cls, v: Decimal) -> Decimal:
        if not (Decimal(0) < v < Decimal(1)):
            raise ValueError("must be a fraction between 0 and 1 (0.02 means 2 %)")
        return v


class OverridesConfig(_Section):
    default_lifetime_s: int = Field(default=3600, ge=1)
    max_lifetime_s: int = Field(default=7 * 86400, ge=1)
    require_reason: bool = False
    require_store: bool = False


class PairConfig(_Section):
    start: Decimal = Field(gt=0, description="simulated feed's starting mid")
    tick: Decimal = Field(gt=0)
    kind: Literal["fiat", "crypto"] = "fiat"
    spread: Decimal | None = None
    volatility: Decimal = Decimal("0.0002")
    sanity_min: Decimal | None = None
    sanity_max: Decimal | None = None
    max_jump: Decimal = Decimal("0.05")
    max_override_deviation: Decimal = Decimal("0.05")
    staleness_s: float = Field(default=300.0, gt=0)
    max_lock_s: int = Field(default=1800, ge=1)


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
    }
    return {
        "USD/CAD": PairConfig(start=Decimal("1.35"), **fiat),
        "EUR/CAD": PairConfig(start=Decimal("1.49"), **fiat),
        "GBP/CAD": PairConfig(start=Decimal("1.76"), **fiat),
        "BTC/CAD": PairConfig(start=Decimal("135000"), **crypto),
        "ETH/CAD": PairConfig(start=Decimal("4500"), **crypto),
    }


class SecurityConfig(_Section):
    api_secret_key: SecretStr | None = Field(default=None, exclude=True)


class Config(_Section):
    server: ServerConfig = ServerConfig()
    hub: HubConfig = HubConfig()
    feed: FeedConfig = FeedConfig()
    engine: EngineConfig = EngineConfig()
    overrides: OverridesConfig = OverridesConfig()
    pairs: dict[str, PairConfig] = Field(default_factory=_default_pairs)
    security: SecurityConfig = SecurityConfig()

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
                kind=pc.kind,
            )
        return out

    def override_policy(self) -> OverridePolicy:
        o = self.overrides
        return OverridePolicy(
            default_lifetime_seconds=o.default_lifetime_s,
            max_lifetime_seconds=o.max_lifetime_s,
            require_reason=o.require_reason,
            require_store=o.require_store,
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


def _env_layer(env: Mapping[str, str]) -> dict[str, Any]:
    """Map the guide's environment variables onto config keys."""
    layer: dict[str, Any] = {}

    def put(section: str, key: str, value: Any) -> None:
        layer.setdefault(section, {})[key] = value

    if host := env.get("API_HOST"):
        name, _, port = host.rpartition(":") if ":" in host else (host, "", "")
        put("server", "host", name or host)
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
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(p) for p in loc)
            problems.append(
                f"{key}: {err['msg']} (from {_origin(loc, env_layer, flag_layer, path)})"
            )
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems), problems) from None

"""Where ratectl's settings come from, and which one wins.

Each setting resolves flag > environment (``RATECTL_*``) > the active context in the
config file > the file's top level > default, and remembers its source so that
``ratectl config view --show-source`` can say where every value came from.

The config file is TOML at ``$RATECTL_CONFIG``, else ``$XDG_CONFIG_HOME/ratectl/config.toml``
(``~/.config/ratectl/config.toml``)::

    current_context = "local"
    output = "table"            # any key below may also sit at the top level
    timeout = 10.0

    [contexts.local]
    url = "http://127.0.0.1:3000"
    store = "store123"          # default --store
    token_file = "~/.config/ratectl/local.key"

Secrets never sit in the file or in a flag value. The key is the first of:
``--token-file``, ``RATECTL_TOKEN``, ``RATECTL_TOKEN_FILE``, the context's ``token_file``,
``API_SECRET_KEY``, and, for a daemon on this machine (loopback URL), the admin key the
daemon wrote in its state directory (``$RATEHUB_STATE_DIR``, else
``$XDG_STATE_HOME/ratehub``, else ``~/.local/state/ratehub``; file ``admin.key``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ratectl.errors import AuthError, CtlError, UsageError

DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_TIMEOUT = 10.0


class Output(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    jsonl = "jsonl"
    yaml = "yaml"


OUTPUTS = tuple(o.value for o in Output)
KEYS = ("url", "store", "output", "timeout", "token_file")
ADMIN_KEY_FILE = "admin.key"
_DEFAULTS: dict[str, Any] = {
    "url": DEFAULT_URL,
    "store": None,
    "output": "table",
    "timeout": DEFAULT_TIMEOUT,
}


@dataclass(frozen=True, slots=True)
class Sourced:
    """A resolved value and where it came from."""

    value: Any
    source: str


@dataclass(frozen=True)
class ConfigFile:
    path: Path
    exists: bool = False
    top: dict[str, Any] = field(default_factory=dict)
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)
    current_context: str | None = None

    def to_toml_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.current_context:
            data["current_context"] = self.current_context
        data.update(self.top)
        if self.contexts:
            data["contexts"] = {name: dict(c) for name, c in sorted(self.contexts.items())}
        return data


@dataclass(frozen=True)
class Settings:
    url: Sourced
    store: Sourced
    output: Sourced
    timeout: Sourced
    context: Sourced
    token: Sourced  # value: the secret, or None
    config: ConfigFile

    def values(self) -> dict[str, Sourced]:
        """Every setting as data (the key redacted), with its source."""
        file_state = "exists" if self.config.exists else "absent"
        return {
            "url": self.url,
            "context": self.context,
            "store": self.store,
            "output": self.output,
            "timeout": self.timeout,
            "token": Sourced("<redacted>" if self.token.value else None, self.token.source),
            "config_file": Sourced(str(self.config.path), file_state),
        }

    def rows(self) -> list[tuple[str, str, str]]:
        """(key, printable value, source), for a table."""
        return [(k, _printable(k, v.value), v.source) for k, v in self.values().items()]


def _printable(key: str, value: Any) -> str:
    if value is None:
        return {"context": "(none)", "store": "(global)", "token": "(none)"}.get(key, "-")
    return f"{value:g}" if isinstance(value, float) else str(value)


# -- paths -----------------------------------------------------------------------------------


def config_path(env: Mapping[str, str]) -> Path:
    if env.get("RATECTL_CONFIG"):
        return Path(env["RATECTL_CONFIG"]).expanduser()
    xdg = env.get("XDG_CONFIG_HOME")
    base = Path(xdg) if xdg else Path.home() / ".config"
    return base / "ratectl" / "config.toml"


def daemon_state_dir(env: Mapping[str, str]) -> Path:
    """Where a local ratehubd keeps its state (the same rule as ``ratehubd.config``)."""
    if env.get("RATEHUB_STATE_DIR"):
        return Path(env["RATEHUB_STATE_DIR"]).expanduser()
    xdg = env.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    return base / "ratehub"


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


# -- the file --------------------------------------------------------------------------------


def load_file(path: Path) -> ConfigFile:
    if not path.exists():
        return ConfigFile(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CtlError(f"cannot read config file {path}: {exc}") from None
    contexts = data.pop("contexts", {})
    current = data.pop("current_context", None)
    _check_keys(path, "the top level (besides current_context and [contexts.NAME])", data)
    if not isinstance(contexts, dict) or not all(isinstance(c, dict) for c in contexts.values()):
        raise CtlError(f"{path}: [contexts.NAME] must be tables of {', '.join(KEYS)}")
    for name, ctx in contexts.items():
        _check_keys(path, f"[contexts.{name}]", ctx)
    if current is not None and not isinstance(current, str):
        raise CtlError(f"{path}: current_context must be a context name (a string)")
    return ConfigFile(path, True, data, contexts, current)


def _check_keys(path: Path, where: str, table: dict[str, Any]) -> None:
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        raise CtlError(
            f"{path}: unknown key {unknown[0]!r} in {where}; accepted: {', '.join(KEYS)}"
        )


def save_file(cf: ConfigFile) -> None:
    """Write the file atomically, readable by its owner only."""
    import tomli_w

    cf.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = cf.path.with_name(cf.path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        tomli_w.dump(cf.to_toml_data(), fh)
    os.replace(tmp, cf.path)


# -- resolution ------------------------------------------------------------------------------


def resolve(flags: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting. ``flags`` holds the command-line values (None: not given)."""
    env = os.environ if env is None else env
    path = Path(flags["config"]) if flags.get("config") else config_path(env)
    cf = load_file(path)
    context = _context(flags, env, cf)
    ctx_table = cf.contexts.get(context.value, {}) if context.value else {}

    def pick(key: str) -> Sourced:
        if flags.get(key) is not None:
            return Sourced(flags[key], f"flag --{key.replace('_', '-')}")
        env_name = f"RATECTL_{key.upper()}"
        if env.get(env_name):
            return Sourced(env[env_name], f"env {env_name}")
        if key in ctx_table:
            return Sourced(ctx_table[key], f"config {path} [contexts.{context.value}]")
        if key in cf.top:
            return Sourced(cf.top[key], f"config {path}")
        return Sourced(_DEFAULTS.get(key), "default")

    url = check_url(pick("url"))
    return Settings(
        url=url,
        store=pick("store"),
        output=_check_output(pick("output")),
        timeout=_check_timeout(pick("timeout")),
        context=context,
        token=_token(flags, env, pick("token_file"), url.value),
        config=cf,
    )


def for_command(root: Mapping[str, Any] | None, **flags: Any) -> Settings:
    """Resolve with the global flags (``root``) and a command's own (enums by value)."""
    given = {k: v.value if isinstance(v, Enum) else v for k, v in flags.items()}
    return resolve({**(root or {}), **given})


def _context(flags: Mapping[str, Any], env: Mapping[str, str], cf: ConfigFile) -> Sourced:
    if flags.get("context"):
        ctx = Sourced(flags["context"], "flag --context")
    elif env.get("RATECTL_CONTEXT"):
        ctx = Sourced(env["RATECTL_CONTEXT"], "env RATECTL_CONTEXT")
    elif cf.current_context:
        ctx = Sourced(cf.current_context, f"config {cf.path} current_context")
    else:
        return Sourced(None, "default")
    if ctx.value not in cf.contexts:
        known = ", ".join(sorted(cf.contexts)) or "none yet"
        raise UsageError(
            f"unknown context {ctx.value!r} ({ctx.source}); known: {known}. "
            "Add one with: ratectl context add NAME --url URL"
        )
    return ctx


def check_url(url: Sourced) -> Sourced:
    text = str(url.value).strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"url {url.value!r} ({url.source}) is not an HTTP URL; use e.g. {DEFAULT_URL}"
        )
    return Sourced(text, url.source)


def _check_output(out: Sourced) -> Sourced:
    if out.value not in OUTPUTS:
        raise UsageError(f"output {out.value!r} ({out.source}) is not one of {', '.join(OUTPUTS)}")
    return out


def _check_timeout(t: Sourced) -> Sourced:
    try:
        value = float(t.value)
    except (TypeError, ValueError):
        value = -1.0
    if not value > 0:
        raise UsageError(f"timeout {t.value!r} ({t.source}) must be a number of seconds > 0")
    return Sourced(value, t.source)


def _token(
    flags: Mapping[str, Any], env: Mapping[str, str], token_file: Sourced, url: str
) -> Sourced:
    if flags.get("token_file"):
        return _read_token(Path(flags["token_file"]), "flag --token-file")
    if env.get("RATECTL_TOKEN"):
        return Sourced(env["RATECTL_TOKEN"].strip(), "env RATECTL_TOKEN")
    if token_file.value:
        return _read_token(Path(str(token_file.value)), token_file.source)
    if env.get("API_SECRET_KEY"):
        return Sourced(env["API_SECRET_KEY"].strip(), "env API_SECRET_KEY")
    local = daemon_state_dir(env) / ADMIN_KEY_FILE
    if is_loopback(url) and local.is_file():
        return _read_token(local, "the local daemon's admin key")
    return Sourced(None, "none found")


def _read_token(path: Path, how: str) -> Sourced:
    path = path.expanduser()
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AuthError(f"cannot read the key file {path} ({how}): {exc.strerror}") from None
    if not secret:
        raise AuthError(f"the key file {path} ({how}) is empty")
    return Sourced(secret, f"file {path} ({how})")


def no_token_hint(env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    local = daemon_state_dir(env) / ADMIN_KEY_FILE
    return (
        "no API key found: set RATECTL_TOKEN or RATECTL_TOKEN_FILE, pass --token-file FILE, "
        f"or run ratectl as the daemon's user on its host (it reads {local})"
    )

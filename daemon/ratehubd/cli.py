"""``ratehubd``: the daemon's command line.

``ratehubd`` alone runs the daemon. Flags beat environment variables, which beat
the config file, which beats the defaults (see ``ratehubd.config``).
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ratehubd.config import Config, load_config
from ratehubd.errors import ConfigError
from ratehubd.urls import redact_url

VERSION = "0.1.0"

app = typer.Typer(
    name="ratehubd",
    help="The ratehub daemon: rate engine, WebSocket hub and HTTP API.",
    add_completion=False,
    no_args_is_help=False,
    invoke_without_command=True,
    rich_markup_mode=None,
)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(32), 127)} | {10: "\\n", 13: "\\r", 9: "\\t"}


class TextFormatter(logging.Formatter):
    """One event, one line: control characters in the message (a store id with a newline,
    say) are escaped, so a client's value cannot forge a log line. A traceback, added
    after the message, keeps its lines."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        return super().formatMessage(record).translate(_CONTROL)


def setup_logging(cfg: Config) -> None:
    from ratehubd.logredact import install

    key = cfg.security.api_secret_key
    install([key.get_secret_value()] if key is not None else [])
    handler = logging.StreamHandler(sys.stderr)
    if cfg.server.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = (
        "debug"
        if cfg.server.debug_websocket and cfg.server.log_level == "info"
        else cfg.server.log_level
    )
    root.setLevel(level.upper())
    if not cfg.server.debug_websocket:
        logging.getLogger("websockets").setLevel(logging.WARNING)


def _banner(rt: Any) -> None:
    host = rt.config.server.host
    http, ws = ("https", "wss") if rt.tls is not None else ("http", "ws")
    lines = [
        f"ratehubd {VERSION} ready",
        f"  API        {http}://{host}:{rt.api_port}  (OpenAPI: /docs)",
        f"  WebSocket  {ws}://{host}:{rt.api_port}/api/rates/websocket",
    ]
    if rt.hub_port is not None:
        lines.append(
            f"  hub port   {ws}://{host}:{rt.hub_port}/api/rates/websocket  (WEBSOCKET_PORT)"
        )
    lines.append(f"  state      {rt.state_dir}")
    if rt.config.store.url:
        lines.append(f"  database   {redact_url(rt.config.store.url)}")
    if rt.fleet is not None:
        bp = rt.fleet.backplane
        lines.append(f"  fleet      node {bp.node_id} on {redact_url(bp.url)} ({bp.channel})")
    if rt.admin_key_file is not None:
        lines.append(f"  admin key  {rt.admin_key_file}  (ratectl finds it by itself)")
    else:
        lines.append("  admin key  from API_SECRET_KEY")
    lines.append("  try        ratectl rates    |    Ctrl-C stops")
    print("\n".join(lines), flush=True)


def _flags(host: str | None, port: int | None, state_dir: Path | None) -> dict[str, dict[str, Any]]:
    server: dict[str, Any] = {}
    if host is not None:
        server["host"] = host
    if port is not None:
        server["port"] = port
    if state_dir is not None:
        server["state_dir"] = str(state_dir)
    return {"server": server} if server else {}


@app.callback()
def main_command(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Address to listen on (API_HOST).")] = None,
    port: Annotated[
        int | None, typer.Option(help="API port; 0 picks a free one. [default: 3000]")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Where the database and admin key live.")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file.")] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    """Run the daemon (when no command is given)."""
    if version:
        print(f"ratehubd {VERSION}")
        raise typer.Exit(0)
    if ctx.invoked_subcommand is not None:
        return
    try:
        cfg = load_config(config, flags=_flags(host, port, state_dir))
    except ConfigError as exc:
        print(f"ratehubd: {exc.message}", file=sys.stderr)
        raise typer.Exit(2) from None
    setup_logging(cfg)
    # Every file the daemon makes (the database and its WAL, key files) is its own: an
    # audit trail and override history are not for other local users, systemd or not.
    os.umask(0o077)
    # A watchdog kill is SIGABRT: dump every thread's stack so the journal shows the hang.
    faulthandler.enable()
    from ratehubd.runtime import run

    def reload_config() -> Config:
        return load_config(config, flags=_flags(host, port, state_dir))

    try:
        run(cfg, on_ready=_banner, reload_config=reload_config)
    except OSError as exc:
        print(f"ratehubd: cannot start: {exc}", file=sys.stderr)
        raise typer.Exit(1) from None
    except ConfigError as exc:
        print(f"ratehubd: {exc.message}", file=sys.stderr)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass


@app.command("checkconfig")
def checkconfig(path: Annotated[Path, typer.Argument(help="TOML file to check.")]) -> None:
    """Validate a config file; exit 1 listing every problem."""
    try:
        load_config(path, env={})
    except ConfigError as exc:
        print(f"{path}: invalid", file=sys.stderr)
        for p in exc.problems:
            print(f"  {p}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"{path}: ok")


@app.command("genconfig")
def genconfig() -> None:
    """Print a complete, commented configuration with every default."""
    from ratehubd.genconfig import generate

    sys.stdout.write(generate())


def main() -> None:
    app()


if __name__ == "__main__":
    main()

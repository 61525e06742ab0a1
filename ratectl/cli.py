"""``ratectl``: the operator's command line for ratehub.

Each command is thin: resolve settings, call the client, render. Heavy modules
(httpx, websockets, pydantic, ratehubd.wire, Rich tables) are imported inside the
commands so ``ratectl --help`` stays fast; Textual is never imported here.
"""

from __future__ import annotations

import enum
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ratectl import __version__, errors
from ratectl.cli_audit import audit_app
from ratectl.cli_board import board_url
from ratectl.cli_config import config_app, context_app
from ratectl.cli_keys import keys_app
from ratectl.cli_lock import lock_app
from ratectl.cli_tui import tui
from ratectl.cli_validate import register as add_validate
from ratectl.errors import reported
from ratectl.settings import Output

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ratectl.client import Client
    from ratectl.settings import Settings

T = TypeVar("T")
EXIT_HELP = "\n".join(f"{code:>5}  {what}" for code, what in errors.EXIT_CODES)
HELP = (
    "Operate ratehub: rates, overrides, live tail and status.\n\n"
    "Settings: flag > env RATECTL_* > config file > default "
    "(ratectl config view --show-source). The key is never a flag value: --token-file, "
    "RATECTL_TOKEN or RATECTL_TOKEN_FILE; on the daemon's own host ratectl finds its admin "
    "key by itself.\n\n"
    f"Exit codes:\n{EXIT_HELP}\n"
)


app = typer.Typer(
    name="ratectl",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(config_app, name="config")
app.add_typer(context_app, name="context")
add_validate(app)  # ratectl validate
app.add_typer(lock_app, name="lock")
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")

OutputOpt = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        help="table, wide, json, jsonl or yaml. (env RATECTL_OUTPUT; default: table)",
        show_default=False,
    ),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        "-s",
        metavar="STORE",
        help="Store id; omit for the global rates. (env RATECTL_STORE)",
    ),
]


class Shell(enum.StrEnum):
    bash = "bash"
    zsh = "zsh"
    fish = "fish"


PairArg = Annotated[
    str, typer.Argument(metavar="PAIR", help="Currency pair: USD/CAD, USDCAD or usd-cad.")
]


def _print_version(value: bool) -> None:
    if value:
        print(f"ratectl {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="Daemon URL. (env RATECTL_URL; default: http://127.0.0.1:3000)"
        ),
    ] = None,
    context: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="Context from the config file. (env RATECTL_CONTEXT)"),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="File holding the API key. (env RATECTL_TOKEN_FILE)"),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Seconds to wait for the daemon. (env RATECTL_TIMEOUT; default: 10)",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Config file. (env RATECTL_CONFIG; default: $XDG_CONFIG_HOME/ratectl/config.toml)",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    ctx.obj = {
        "url": url,
        "context": context,
        "token_file": token_file,
        "timeout": timeout,
        "config": config,
    }


def settings(ctx: typer.Context, **flags: Any) -> Settings:
    from ratectl.settings import for_command

    return for_command(ctx.find_root().obj, **flags)


def call(s: Settings, doing: str, fn: Callable[[Client], T]) -> T:
    """One exchange with the daemon, with a spinner on a terminal if it is slow."""
    from ratectl.client import Client
    from ratectl.output import progress

    with (
        Client(s.url.value, s.token.value, s.timeout.value, token_source=s.token.source) as c,
        progress(f"{doing} ({s.url.value})"),
    ):
        return fn(c)


def now_ms() -> int:
    return int(time.time() * 1000)


def emit(data: Any, s: Settings, table: Callable[[bool], RenderableType]) -> None:
    from ratectl.output import emit as write

    fmt = s.output.value
    write(data, fmt, lambda: table(fmt == "wide"))


def say(text: str) -> None:
    from ratectl.output import message

    message(text)


# -- commands ----------------------------------------------------------------------------


@app.command()
@reported
def rates(
    ctx: typer.Context,
    store: StoreOpt = None,
    output: OutputOpt = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Keep the table live (WebSocket updates).")
    ] = False,
) -> None:
    """Every pair's buy, sell and mid rate for a store (or the global rates)."""
    s = settings(ctx, store=store, output=output)
    if watch:
        from ratectl.watch import watch_rates

        watch_rates(s)
        return
    from ratectl import models, render

    data = call(s, "reading rates", lambda c: c.rates(s.store.value))
    emit(data, s, lambda wide: render.rates_table(models.rates(data), now_ms=now_ms(), wide=wide))


@app.command()
@reported
def market(ctx: typer.Context, output: OutputOpt = None) -> None:
    """The market mid of every pair and where it came from."""
    from ratectl import models, render

    s = settings(ctx, output=output)
    data = call(s, "reading market data", lambda c: c.market())
    emit(data, s, lambda wide: render.market_table(models.market(data), now_ms=now_ms(), wide=wide))


@app.command("set-rate")
@reported
def set_rate(
    ctx: typer.Context,
    pair: PairArg,
    buy: Annotated[
        str | None,
        typer.Option(
            metavar="RATE", help="What a customer pays for one unit of the base (higher)."
        ),
    ] = None,
    sell: Annotated[
        str | None,
        typer.Option(metavar="RATE", help="What a customer receives for one unit (lower)."),
    ] = None,
    spread: Annotated[
        str | None,
        typer.Option(
            metavar="SPREAD", help="Relative total spread, 0.03 or 3%, instead of buy/sell."
        ),
    ] = None,
    store: StoreOpt = None,
    valid_for: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION", help="Lifetime: 90s, 30m, 1h, 1h30m, 2d. (default: the daemon's)"
        ),
    ] = None,
    valid_until: Annotated[
        str | None, typer.Option(metavar="TIME", help="End time, ISO 8601 (2026-01-05T18:00:00Z).")
    ] = None,
    reason: Annotated[str | None, typer.Option(help="Why; kept in the audit trail.")] = None,
    expected_version: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="Only if the override is still at this version (exit 5 if not)."
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Set an override: fixed --buy/--sell (or a --spread) for a store or all stores."""
    from datetime import UTC, datetime

    from ratectl import models, params, render

    s = settings(ctx, store=store, output=output)
    body = params.set_rate_body(
        pair,
        buy=buy,
        sell=sell,
        spread_text=spread,
        store=s.store.value,
        valid_for=valid_for,
        valid_until=valid_until,
        reason=reason,
        expected_version=expected_version,
        now=datetime.now(UTC),
    )
    data = call(s, "setting the override", lambda c: c.set_rate(body))
    rate = models.rate(data)
    ov = rate.provenance.override if rate.provenance else None
    where = rate.storeId or "all stores"
    detail = f" until {ov.validUntil} (version {ov.version})" if ov else ""
    say(f"override set: {rate.currencyPair} at {where}{detail}")
    emit(data, s, lambda wide: render.rates_table([rate], now_ms=now_ms(), wide=wide))


@app.command("clear-rate")
@reported
def clear_rate(
    ctx: typer.Context,
    pair: PairArg,
    store: StoreOpt = None,
    reason: Annotated[str | None, typer.Option(help="Why; kept in the audit trail.")] = None,
    output: OutputOpt = None,
) -> None:
    """Remove an override; the pair goes back to the market rate."""
    from ratectl import models, render

    s = settings(ctx, store=store, output=output)
    body: dict[str, Any] = {"currencyPair": pair, "storeId": s.store.value}
    if reason:
        body["reason"] = reason
    data = call(s, "clearing the override", lambda c: c.clear_rate(body))
    rate = models.rate(data)
    say(f"override cleared: {rate.currencyPair} at {s.store.value or 'all stores'}")
    emit(data, s, lambda wide: render.rates_table([rate], now_ms=now_ms(), wide=wide))


@app.command()
@reported
def overrides(ctx: typer.Context, store: StoreOpt = None, output: OutputOpt = None) -> None:
    """Active overrides: with --store, that store's and the global ones; else all."""
    from ratectl import models, render

    s = settings(ctx, store=store, output=output)
    data = call(s, "reading overrides", lambda c: c.overrides(s.store.value))
    emit(
        data,
        s,
        lambda wide: render.overrides_table(models.overrides(data), now_ms=now_ms(), wide=wide),
    )


@app.command()
@reported
def stores(
    ctx: typer.Context,
    output: OutputOpt = None,
    fail_on_stale: Annotated[
        bool,
        typer.Option(
            "--fail-on-stale",
            help="Exit 1 if a terminal shows a rate table it has not confirmed in time.",
        ),
    ] = False,
) -> None:
    """Every store with connections (on every node of a fleet): its terminals and how many confirm
    (ack) the newest rate table; stores with stale screens first."""
    from ratectl import models, render

    s = settings(ctx, output=output)
    data = call(s, "reading stores", lambda c: c.stores())
    rows = models.stores(data)
    emit(data, s, lambda wide: render.stores_table(rows))
    stale = [r.storeId for r in rows if r.stale]
    if fail_on_stale and stale:
        say(f"stale screens in {len(stale)} store(s): {', '.join(stale)}")
        raise typer.Exit(1)


@app.command()
@reported
def terminals(
    ctx: typer.Context,
    store: Annotated[str, typer.Option("--store", "-s", help="The store whose screens to list.")],
    output: OutputOpt = None,
) -> None:
    """A store's terminals (on every node of a fleet), stale first: which confirmed (ack) the
    newest rate table, which did not in time, and which never acknowledge."""
    from ratectl import models, render

    s = settings(ctx, output=output)
    data = call(s, "reading terminals", lambda c: c.terminals(store))
    rows = models.terminals(data)
    emit(data, s, lambda wide: render.terminals_table(rows, wide=wide))


@app.command()
@reported
def status(ctx: typer.Context, output: OutputOpt = None) -> None:
    """The daemon's system status: WebSocket hub, rate engine, integration."""
    from ratectl import render

    s = settings(ctx, output=output)
    data = call(s, "reading status", lambda c: c.status())
    emit(data, s, lambda wide: render.status_view(data))


@app.command()
@reported
def tail(
    ctx: typer.Context,
    store: StoreOpt = None,
    pairs: Annotated[
        list[str] | None,
        typer.Option(metavar="PAIRS", help="Only these pairs: USD/CAD,EUR/CAD (repeatable)."),
    ] = None,
    events: Annotated[
        list[str] | None,
        typer.Option(
            metavar="TYPES", help="Only these message types: rate_update,rate_override_set,..."
        ),
    ] = None,
    count: Annotated[
        int | None, typer.Option(min=1, metavar="N", help="Stop after this many messages.")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Stream live rate updates and events until Ctrl-C; reconnects and resumes by itself."""
    from ratectl.watch import tail_messages

    s = settings(ctx, store=store, output=output)
    tail_messages(s, pairs=pairs, events=events, count=count)


@app.command()
@reported
def completion(
    shell: Annotated[Shell, typer.Argument(help="bash, zsh or fish.")],
) -> None:
    """Print the shell completion script (install: see completions/README.md)."""
    from ratectl.completion import script

    sys.stdout.write(script(shell.value, typer.main.get_command(app)))


app.command("board-url")(board_url)
app.command("tui")(tui)  # last in --help: the one interactive command


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(errors.INTERRUPTED)


if __name__ == "__main__":
    main()

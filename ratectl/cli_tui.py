"""``ratectl tui``: the command that opens the live dashboard.

Only this command imports Textual, and only when it runs (``ratectl.tui`` is imported
inside it), so ``ratectl --help`` and every other command stay light.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ratectl.errors import UsageError, reported


@reported
def tui(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store", "-s", metavar="STORE", help="Store to show; omit for the global rates."
        ),
    ] = None,
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="Hide every change (overrides, locks): a wall screen."),
    ] = False,
) -> None:
    """A live dashboard: rates, history, events, every store's screens (t); set overrides and
    create locks (press ?)."""
    from ratectl.settings import for_command

    s = for_command(ctx.find_root().obj, store=store)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "ratectl tui needs a terminal; for scripts use `ratectl rates -w` or `ratectl tail`"
        )
    from ratectl.tui import run
    from ratectl.tui.options import TuiOptions

    run(
        TuiOptions(
            url=s.url.value,
            token=s.token.value,
            token_source=s.token.source,
            timeout=s.timeout.value,
            store=s.store.value,
            read_only=read_only,
            freeze_gc=True,
        )
    )

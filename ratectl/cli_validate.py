"""``ratectl validate``: the system validation suite, for CI pipelines and after a deploy.

Thin like every command: settings, run (:mod:`ratectl.validate.runner`), render
(:mod:`ratectl.validate.report`). Heavy modules are imported inside the command.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ratectl.errors import reported

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ratectl.settings import Settings
    from ratectl.validate.context import Options
    from ratectl.validate.model import CheckResult, Report

HELP = (
    "Run the system validation suite against a live daemon.\n\n"
    "--suite smoke (the default) runs the quick read-only checks: connectivity, the "
    "WebSocket hub, market data and the engine's invariants. --suite full adds the "
    "heartbeat, the business flow on a scratch store (override, locks, consume, expiry, "
    "clear; a new store validate-<random> unless --store) and the audit trail; the flow "
    "leaves nothing behind but audit records. --check picks checks by id or group "
    "(connectivity, websocket, market, engine, flow, audit) instead of a suite.\n\n"
    "Text output streams one line per check, the summary last; -o json prints a versioned "
    "envelope (also when the daemon cannot be reached); --junit-file writes JUnit XML in "
    "the same run.\n\n"
    "Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 usage, "
    "3 daemon unreachable, 4 key refused."
)


class Suite(enum.StrEnum):
    smoke = "smoke"
    full = "full"


class Format(enum.StrEnum):
    text = "text"
    json = "json"


def validate(
    ctx: typer.Context,
    suite: Annotated[
        Suite, typer.Option(help="smoke: quick and read-only; full: everything.")
    ] = Suite.smoke,
    check: Annotated[
        list[str] | None,
        typer.Option(
            "--check", metavar="ID", help="Only this check or group (repeatable), e.g. flow."
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            metavar="STORE",
            help="Scratch store for the flow; it must have no override. "
            "(default: a new validate-<random>)",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Limit for each request and each awaited event. (env RATECTL_TIMEOUT; "
            "default: 10)",
        ),
    ] = None,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop after the first failed check.")
    ] = False,
    output: Annotated[
        Format | None,
        typer.Option("--output", "-o", help="text or json. (default: text)", show_default=False),
    ] = None,
    junit_file: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Also write the results as JUnit XML to FILE."),
    ] = None,
) -> None:
    import asyncio

    from ratectl.validate import report as render
    from ratectl.validate.runner import run

    s = _settings(ctx, timeout)
    opts = _options(s, suite.value, check or [], store, fail_fast)
    fmt = output.value if output else ("json" if s.output.value == "json" else "text")
    if junit_file is not None and not junit_file.parent.is_dir():
        from ratectl.errors import UsageError

        raise UsageError(f"--junit-file {junit_file}: directory {junit_file.parent} does not exist")
    if fmt == "text":
        _print(render.header(opts.suite_name, opts.url, opts.store))
    result = asyncio.run(run(opts, _print_line if fmt == "text" else None))
    _finish(result, fmt, junit_file)


def _settings(ctx: typer.Context, timeout: float | None) -> Settings:
    from ratectl.settings import for_command

    flags = {} if timeout is None else {"timeout": timeout}
    return for_command(ctx.find_root().obj, **flags)


def _options(
    s: Settings, suite: str, checks: list[str], store: str | None, fail_fast: bool
) -> Options:
    from ratectl.validate.context import Options, scratch_store
    from ratectl.validate.registry import select

    select(suite, checks)  # a bad --check is a usage error before anything runs
    return Options(
        url=s.url.value,
        token=s.token.value,
        token_source=s.token.source,
        timeout=s.timeout.value,
        store=store or scratch_store(),
        suite=suite,
        checks=tuple(checks),
        fail_fast=fail_fast,
    )


def _print(text: RenderableType) -> None:
    import sys

    from ratectl.output import print_renderable

    print_renderable(text, sys.stdout)


def _print_line(res: CheckResult) -> None:
    from ratectl.validate import report as render

    _print(render.line(res))


def _finish(result: Report, fmt: str, junit_file: Path | None) -> None:
    import sys

    from ratectl.output import dump, message
    from ratectl.validate import report as render

    if fmt == "json":
        sys.stdout.write(dump(result.to_dict(), "json"))
        sys.stdout.flush()
    else:
        _print(render.summary(result))
    if junit_file is not None:
        try:
            junit_file.write_bytes(render.junit(result))
        except OSError as exc:
            message(f"ratectl: cannot write --junit-file {junit_file}: {exc.strerror}", style="red")
            raise typer.Exit(2) from None
    if result.aborted:
        message(f"ratectl: {result.aborted}", style="red")
    code = result.exit_code()
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("validate", help=HELP)(reported(validate))

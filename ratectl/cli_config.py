"""``ratectl config`` and ``ratectl context``: the config file and its contexts.

A context names one daemon (url, default store, token file). ``context use`` picks
the one every command talks to; ``--context`` or ``RATECTL_CONTEXT`` pick one for a
single command.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ratectl.errors import CtlError, reported
from ratectl.settings import Output

if TYPE_CHECKING:
    from ratectl.settings import ConfigFile, Settings

config_app = typer.Typer(help="Write and inspect the config file.", no_args_is_help=True)
context_app = typer.Typer(help="Contexts: one per daemon you talk to.", no_args_is_help=True)

DataOutput = Annotated[
    Output | None, typer.Option("--output", "-o", help="table, wide, json, jsonl or yaml.")
]


def _settings(ctx: typer.Context, **flags: Any) -> Settings:
    from ratectl.settings import for_command

    return for_command(ctx.find_root().obj, **flags)


def _config_file(ctx: typer.Context) -> ConfigFile:
    import os

    from ratectl.settings import config_path, load_file

    flag = (ctx.find_root().obj or {}).get("config")
    return load_file(config_path({**os.environ, **({"RATECTL_CONFIG": str(flag)} if flag else {})}))


def _say(text: str) -> None:
    from ratectl.output import message

    message(text)


@config_app.command("init")
@reported
def config_init(
    ctx: typer.Context,
    store: Annotated[str | None, typer.Option(help="Default store for the context.")] = None,
    name: Annotated[str, typer.Option(help="Name of the first context.")] = "local",
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a config file with one context (the --url given, or the local daemon)."""
    from ratectl.settings import ConfigFile, save_file

    cf = _config_file(ctx)
    if cf.exists and not force:
        raise CtlError(f"{cf.path} already exists; edit it, or pass --force to replace it")
    s = _settings(ctx, config=str(cf.path), context=None)
    context: dict[str, Any] = {"url": s.url.value}
    if store:
        context["store"] = store
    fresh = ConfigFile(
        cf.path,
        top={"output": "table", "timeout": s.timeout.value},
        contexts={name: context},
        current_context=name,
    )
    save_file(fresh)
    _say(f"wrote {cf.path} (context {name!r} -> {s.url.value})")


@config_app.command("view")
@reported
def config_view(
    ctx: typer.Context,
    show_source: Annotated[bool, typer.Option(help="Say where each value came from.")] = False,
    output: DataOutput = None,
) -> None:
    """The settings in effect, secrets redacted."""
    from ratectl import render
    from ratectl.output import emit

    s = _settings(ctx, output=output)
    rows = s.rows()
    fmt = s.output.value
    values = s.values()
    if show_source:
        data: Any = {k: {"value": v.value, "source": v.source} for k, v in values.items()}
    else:
        data = {k: v.value for k, v in values.items()}
    emit(data, fmt, lambda: render.settings_table(rows, show_source=show_source))


@context_app.command("add")
@reported
def context_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Context name, e.g. prod.")],
    url: Annotated[str, typer.Option(help="Daemon URL, e.g. https://rates.example.com.")],
    store: Annotated[str | None, typer.Option(help="Default store.")] = None,
    token_file: Annotated[
        Path | None, typer.Option(help="File holding this daemon's API key.")
    ] = None,
    use: Annotated[bool, typer.Option("--use", help="Make it the current context.")] = False,
) -> None:
    """Add (or update) a context in the config file."""
    from ratectl.settings import Sourced, check_url, save_file

    cf = _config_file(ctx)
    entry: dict[str, Any] = dict(cf.contexts.get(name, {}))
    entry["url"] = check_url(Sourced(url, "flag --url")).value
    if store is not None:
        entry["store"] = store
    if token_file is not None:
        entry["token_file"] = str(token_file.expanduser().absolute())
    existed = name in cf.contexts
    current = name if use or not cf.current_context else cf.current_context
    save_file(replace(cf, contexts={**cf.contexts, name: entry}, current_context=current))
    marker = " (current)" if current == name else ""
    _say(f"{'updated' if existed else 'added'} context {name!r}{marker} in {cf.path}")


@context_app.command("use")
@reported
def context_use(
    ctx: typer.Context, name: Annotated[str, typer.Argument(help="Context name.")]
) -> None:
    """Make a context the current one."""
    from ratectl.settings import save_file

    cf = _config_file(ctx)
    if name not in cf.contexts:
        known = ", ".join(sorted(cf.contexts)) or "none yet"
        raise CtlError(
            f"no context {name!r} in {cf.path} (known: {known}); "
            "add it with: ratectl context add NAME --url URL"
        )
    save_file(replace(cf, current_context=name))
    _say(f"now using context {name!r}")


@context_app.command("list")
@reported
def context_list(ctx: typer.Context, output: DataOutput = None) -> None:
    """The contexts in the config file; * marks the current one."""
    from ratectl import render
    from ratectl.output import emit

    cf = _config_file(ctx)
    data = [
        {"name": n, "current": n == cf.current_context, **c} for n, c in sorted(cf.contexts.items())
    ]
    emit(
        data,
        output.value if output else "table",
        lambda: render.contexts_table(cf.contexts, cf.current_context),
    )

"""``ratectl keys``: create, list and revoke API keys (an admin key is needed).

``create`` prints the new key's secret once, on stdout (``-o json``: in the JSON), with a
warning on stderr that it will not be shown again; ``list`` never shows a secret (the
daemon does not keep them); ``revoke`` refuses the key from then on and closes its live
WebSockets.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ratectl.errors import reported
from ratectl.settings import Output

if TYPE_CHECKING:
    from collections.abc import Callable

    from ratectl.keys import KeyClient
    from ratectl.settings import Settings

T = TypeVar("T")

keys_app = typer.Typer(help="API keys: create, list and revoke (admin).", no_args_is_help=True)

OutputOpt = Annotated[
    Output | None,
    typer.Option(
        "--output",
        "-o",
        help="table, wide, json, jsonl or yaml. (env RATECTL_OUTPUT; default: table)",
        show_default=False,
    ),
]


class Role(enum.StrEnum):
    admin = "admin"
    store = "store"
    read_only = "read-only"
    feed = "feed"


def _settings(ctx: typer.Context, **flags: Any) -> Settings:
    from ratectl.settings import for_command

    return for_command(ctx.find_root().obj, **flags)


def _call(s: Settings, doing: str, fn: Callable[[KeyClient], T]) -> T:
    from ratectl.keys import KeyClient
    from ratectl.output import progress

    with (
        KeyClient(s.url.value, s.token.value, s.timeout.value, token_source=s.token.source) as c,
        progress(f"{doing} ({s.url.value})"),
    ):
        return fn(c)


def _say(text: str, style: str = "") -> None:
    from ratectl.output import message

    message(text, style=style)


@keys_app.command("create")
@reported
def keys_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="What it is for: 'store123 pos'.")],
    role: Annotated[Role, typer.Option(help="admin, store, read-only or feed.")],
    store: Annotated[
        list[str] | None,
        typer.Option(
            "--store", "-s", metavar="STORE", help="A store key's store (repeat for several)."
        ),
    ] = None,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ORIGIN",
            help="Browser origin it may be used from, e.g. https://dash.example.com (repeatable).",
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Create a key; its secret is printed once (stdout) and never again."""
    from ratectl import keys
    from ratectl.output import emit

    s = _settings(ctx, output=output)
    body = keys.create_body(name, role.value, store or [], origin or [])
    data = _call(s, "creating the key", lambda c: c.create_key(body))
    _say(f"created {keys.describe(data)}")
    _say(f"warning: {keys.NOT_AGAIN}", style="bold yellow")
    if s.output.value in ("table", "wide"):
        print(data.get("secret"), flush=True)  # alone on stdout: KEY=$(ratectl keys create ...)
    else:
        emit(data, s.output.value)


@keys_app.command("list")
@reported
def keys_list(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Every key (revoked ones too), without secrets."""
    from ratectl import keys
    from ratectl.output import emit

    s = _settings(ctx, output=output)
    data = _call(s, "listing keys", lambda c: c.keys())
    fmt = s.output.value
    emit(data, fmt, lambda: keys.key_table(data, wide=fmt == "wide"))


@keys_app.command("revoke")
@reported
def keys_revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(metavar="ID", help="Key id (from `ratectl keys list`).")],
    reason: Annotated[
        str | None, typer.Option(metavar="TEXT", help="Why; kept in the audit trail.")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Revoke a key: refused from now on, its live WebSockets closed."""
    from ratectl import keys
    from ratectl.output import emit

    s = _settings(ctx, output=output)
    data = _call(s, "revoking the key", lambda c: c.revoke_key(key_id, reason))
    _say(f"revoked {keys.describe(data)}; its WebSocket sessions were closed")
    fmt = s.output.value
    emit(data, fmt, lambda: keys.key_table([data], wide=fmt == "wide"))

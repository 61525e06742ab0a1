"""``ratectl board-url``: print the URL of a store's rate board, for a kiosk."""

from __future__ import annotations

import enum
import os
from typing import Annotated

import typer

from ratectl.errors import reported
from ratectl.settings import Output


class Theme(enum.StrEnum):
    dark = "dark"
    light = "light"


@reported
def board_url(
    ctx: typer.Context,
    store: Annotated[str, typer.Option("--store", "-s", metavar="STORE", help="The store.")],
    create_key: Annotated[
        bool,
        typer.Option(
            "--create-key",
            help="Put a board key in the URL: the one made here before if the daemon still "
            "has it, else a new store key for STORE (admin key needed).",
        ),
    ] = False,
    origin: Annotated[
        list[str] | None,
        typer.Option(
            metavar="ORIGIN",
            help="Origin the board key may be used from (repeatable; default: the board URL's).",
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            metavar="URL", help="The daemon's URL as the screen reaches it (default: --url)."
        ),
    ] = None,
    pairs: Annotated[
        list[str] | None,
        typer.Option("--pair", metavar="PAIR", help="Show only these pairs (repeatable)."),
    ] = None,
    theme: Annotated[Theme | None, typer.Option(help="dark (default) or light.")] = None,
    output: Annotated[
        Output | None, typer.Option("--output", "-o", help="table (the URL alone), json, yaml.")
    ] = None,
) -> None:
    """Print the URL of STORE's rate board, for pasting into a kiosk browser.

    Without --create-key the URL has no key: add token= with a store key for STORE.

    With a key, the URL is a secret: anyone who has it can read the store's rates.
    """
    from ratectl import board
    from ratectl.cli_keys import _call
    from ratectl.output import emit, message
    from ratectl.settings import for_command

    s = for_command(ctx.find_root().obj, output=output)
    base = base_url or s.url.value
    page_origin = board.origin_of(base)
    data: dict[str, object] = {"storeId": store, "url": "", "keyId": None, "created": False}
    token = None
    if create_key:
        path = board.saved_key_path(os.environ, s.url.value, store)
        key, created = _call(
            s,
            "finding the board key",
            lambda c: board.board_key(c, path, store, origin or [page_origin]),
        )
        token = str(key["secret"])
        data.update(keyId=key["id"], created=created)
        message(f"{'created' if created else 'reusing'} board key {key['id']} for store {store}")
    url = board.board_url(base, store, token, pairs or [], theme.value if theme else None)
    data["url"] = url
    if token is None:
        message(f"add token=<a store key for {store}> to the URL, or run with --create-key")
    if s.output.value in ("table", "wide"):
        print(url, flush=True)  # alone on stdout: URL=$(ratectl board-url ...)
    else:
        emit(data, s.output.value)

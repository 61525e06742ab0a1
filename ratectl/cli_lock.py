"""``ratectl lock``: freeze a store's buy/sell for a customer transaction.

``create`` locks the rates a store shows now for ``--ttl``; ``consume`` uses a lock once
(refused after it expires, exit 5); ``release`` ends it early. ``--idempotency-key``
makes ``create`` safe to retry: the same key and request return the same lock.

Each command is thin, like the others: settings, one call (:class:`ratectl.locks.
LockClient`), render. Heavy modules are imported inside the commands.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ratectl.errors import reported
from ratectl.settings import Output

if TYPE_CHECKING:
    from collections.abc import Callable

    from ratectl.locks import LockClient
    from ratectl.settings import Settings

T = TypeVar("T")

lock_app = typer.Typer(
    help="Rate locks: freeze a store's buy/sell for a customer transaction.",
    no_args_is_help=True,
)

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
    typer.Option("--store", "-s", metavar="STORE", help="Store id. (env RATECTL_STORE)"),
]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="Lock id (from `ratectl lock list`).")]


class State(enum.StrEnum):
    active = "active"
    consumed = "consumed"
    released = "released"
    expired = "expired"


def _settings(ctx: typer.Context, **flags: Any) -> Settings:
    from ratectl.settings import for_command

    return for_command(ctx.find_root().obj, **flags)


def _call(s: Settings, doing: str, fn: Callable[[LockClient], T]) -> tuple[T, int | None]:
    """One exchange with the daemon (a spinner on a terminal if slow); the reply's status."""
    from ratectl.locks import LockClient
    from ratectl.output import progress

    with (
        LockClient(s.url.value, s.token.value, s.timeout.value, token_source=s.token.source) as c,
        progress(f"{doing} ({s.url.value})"),
    ):
        return fn(c), c.last_status


def _show(data: Any, s: Settings, *, one: bool) -> None:
    import time

    from ratectl import locks
    from ratectl.output import emit

    fmt = s.output.value
    now = int(time.time() * 1000)
    parsed = [locks.parse(data)] if one else locks.parse_list(data)
    emit(data, fmt, lambda: locks.lock_table(parsed, now_ms=now, wide=fmt == "wide"))


def _say(text: str) -> None:
    from ratectl.output import message

    message(text)


@lock_app.command("create")
@reported
def lock_create(
    ctx: typer.Context,
    pair: Annotated[
        str, typer.Argument(metavar="PAIR", help="Currency pair: USD/CAD, USDCAD or usd-cad.")
    ],
    ttl: Annotated[
        str,
        typer.Option(metavar="DURATION", help="How long the rates hold: 90s, 5m, 300 (seconds)."),
    ] = "5m",
    store: StoreOpt = None,
    reference: Annotated[
        str | None,
        typer.Option(metavar="TEXT", help="What it is for, e.g. 'Customer transaction #TX123'."),
    ] = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            metavar="KEY", help="Retry-safe: the same key and request return the same lock."
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Lock a pair's current buy/sell at a store for --ttl."""
    import time

    from ratectl import locks

    s = _settings(ctx, store=store, output=output)
    body = locks.create_body(
        pair,
        ttl=locks.ttl_seconds(ttl),
        store=s.store.value,
        reference=reference,
        idempotency_key=idempotency_key,
    )
    data, status = _call(s, "creating the lock", lambda c: c.create_lock(body))
    lk = locks.parse(data)
    again = " (already created with this idempotency key)" if status == 200 else ""
    _say(f"lock {lk.lockId}{again}: {locks.summary(lk, int(time.time() * 1000))}")
    _show(data, s, one=True)


@lock_app.command("list")
@reported
def lock_list(
    ctx: typer.Context,
    store: StoreOpt = None,
    state: Annotated[
        State | None, typer.Option(help="Only locks in this state.", show_default=False)
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Locks, oldest first (all stores unless --store or RATECTL_STORE)."""
    s = _settings(ctx, store=store, output=output)
    wanted = state.value if state else None
    data, _ = _call(s, "listing locks", lambda c: c.locks(s.store.value, wanted))
    if not data and s.output.value in ("table", "wide"):
        where = f" at store {s.store.value}" if s.store.value else ""
        _say(f"no {wanted + ' ' if wanted else ''}locks{where}")
    _show(data, s, one=False)


@lock_app.command("show")
@reported
def lock_show(ctx: typer.Context, lock_id: IdArg, output: OutputOpt = None) -> None:
    """One lock: its rates, state and expiry."""
    s = _settings(ctx, output=output)
    data, _ = _call(s, "reading the lock", lambda c: c.lock(lock_id))
    _show(data, s, one=True)


@lock_app.command("consume")
@reported
def lock_consume(ctx: typer.Context, lock_id: IdArg, output: OutputOpt = None) -> None:
    """Use a lock (once, before it expires): the transaction went through."""
    s = _settings(ctx, output=output)
    data, _ = _call(s, "consuming the lock", lambda c: c.consume_lock(lock_id))
    _say(f"lock {data.get('lockId', lock_id)} consumed")
    _show(data, s, one=True)


@lock_app.command("release")
@reported
def lock_release(ctx: typer.Context, lock_id: IdArg, output: OutputOpt = None) -> None:
    """End a lock early: the customer walked away."""
    s = _settings(ctx, output=output)
    data, _ = _call(s, "releasing the lock", lambda c: c.release_lock(lock_id))
    _say(f"lock {data.get('lockId', lock_id)} released")
    _show(data, s, one=True)

"""``ratectl audit``: query the audit trail, and ``ratectl audit verify`` its hash chain
(an admin key is needed).

``ratectl audit`` lists records, newest first, filtered by time, store, pair, actor and
type; ``-o csv`` writes one row per record for a spreadsheet. ``ratectl audit verify``
checks the whole chain in the daemon: exit 0 with a one-line summary, or exit 1 naming the
first bad record.
"""

from __future__ import annotations

import enum
import sys
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from ratectl.errors import CtlError, reported

if TYPE_CHECKING:
    from collections.abc import Callable

    from ratectl.audit import AuditClient
    from ratectl.settings import Settings

T = TypeVar("T")

audit_app = typer.Typer(
    help="The audit trail: who changed what, when and why; verify its hash chain.",
    invoke_without_command=True,
)


class AuditOutput(enum.StrEnum):
    table = "table"
    wide = "wide"
    json = "json"
    jsonl = "jsonl"
    yaml = "yaml"
    csv = "csv"


class RecordType(enum.StrEnum):  # ratectl.audit.TYPES; completion offers them
    override_set = "override_set"
    override_cleared = "override_cleared"
    override_expired = "override_expired"
    lock_created = "lock_created"
    lock_consumed = "lock_consumed"
    lock_released = "lock_released"
    lock_expired = "lock_expired"
    breach_begun = "breach_begun"
    breach_cleared = "breach_cleared"
    breaker_opened = "breaker_opened"
    breaker_reset = "breaker_reset"
    key_created = "key_created"
    key_revoked = "key_revoked"
    config_reloaded = "config_reloaded"
    terminal_stale = "terminal_stale"
    terminal_current = "terminal_current"


OutputOpt = Annotated[
    AuditOutput | None,
    typer.Option(
        "--output",
        "-o",
        help="table, wide, json, jsonl, yaml or csv. (env RATECTL_OUTPUT; default: table)",
        show_default=False,
    ),
]
TIME_HELP = "ISO 8601 (2026-01-05T12:00:00Z) or an age: 30m, 24h, 7d."


def _settings(ctx: typer.Context, output: AuditOutput | None) -> Settings:
    """Settings; csv is this command's own format, so it is not checked as a setting."""
    from ratectl.settings import for_command

    flag = None if output is None or output is AuditOutput.csv else output.value
    return for_command(ctx.find_root().obj, output=flag)


def _call(s: Settings, doing: str, fn: Callable[[AuditClient], T]) -> T:
    from ratectl.audit import AuditClient
    from ratectl.output import progress

    with (
        AuditClient(s.url.value, s.token.value, s.timeout.value, token_source=s.token.source) as c,
        progress(f"{doing} ({s.url.value})"),
    ):
        return fn(c)


@audit_app.callback()
@reported
def audit(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(metavar="TIME", help=f"From this time on. {TIME_HELP}")
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="TIME", help=f"Before this time. {TIME_HELP}")
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", "-s", metavar="STORE", help="Only this store.")
    ] = None,
    pair: Annotated[str | None, typer.Option(metavar="PAIR", help="Only this pair.")] = None,
    actor: Annotated[
        str | None, typer.Option(metavar="KEY_ID", help="Only changes by this key id.")
    ] = None,
    type_: Annotated[
        list[RecordType] | None,
        typer.Option(
            "--type", "-t", help="Only these record types (repeatable).", show_default=False
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 100,
    output: OutputOpt = None,
) -> None:
    """Audit records, newest first: overrides, locks, breaches, breakers, keys, reloads."""
    if ctx.invoked_subcommand is not None:
        return
    from datetime import UTC, datetime

    from ratectl import audit as trail
    from ratectl.output import emit

    s = _settings(ctx, output)
    q = trail.query(
        since=since,
        until=until,
        store=store,
        pair=pair,
        actor=actor,
        types=[t.value for t in type_ or []],
        limit=limit,
        now=datetime.now(UTC),
    )
    data = _call(s, "reading the audit trail", lambda c: c.records(q))
    if output is AuditOutput.csv:
        sys.stdout.write(trail.to_csv(data))
        return
    fmt = s.output.value
    emit(data, fmt, lambda: trail.record_table(data, wide=fmt == "wide"))


@audit_app.command("verify")
@reported
def audit_verify(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Check the whole hash chain; exit 1 naming the first bad record."""
    from ratectl import audit as trail
    from ratectl.output import emit

    if output is AuditOutput.csv:
        from ratectl.errors import UsageError

        raise UsageError("audit verify writes table, json, jsonl or yaml, not csv")
    s = _settings(ctx, output)
    data: dict[str, Any] = _call(s, "verifying the audit chain", lambda c: c.verify())
    line = trail.verify_line(data)
    if s.output.value not in ("table", "wide"):
        emit(data, s.output.value)
    elif data.get("ok"):
        print(line, flush=True)
    if not data.get("ok"):
        raise CtlError(line)

"""The audit trail's repository: append, head, query, verify and prune the ``audit`` table.

Writes take the caller's Session: the writer thread runs them inside its group-commit
transaction, so a record commits atomically with the change it records, or not at all.

The chain head is read from the database inside that transaction (the ``audit_head``
meta row, locked ``FOR UPDATE`` on PostgreSQL), never kept in memory: when the writer
rolls a batch back and retries it op by op, or a second node of a fleet appends to the
same table, the chain cannot fork. The head row also anchors the end of the chain, so
``verify`` notices records deleted from the end.

Retention prunes the oldest records in seq order, after verifying them, and keeps the
last pruned record's seq and hash as a checkpoint (meta ``audit_checkpoint``); verify
starts from it, so the chain stays verifiable after pruning.

Reads use SQLAlchemy Core (plain rows, no ORM objects). ``verify_chain`` scans in one
read snapshot (``BEGIN`` on SQLite in WAL mode, ``REPEATABLE READ`` on PostgreSQL) in
keyset batches, so memory stays constant and a concurrent append or prune cannot make
an intact chain look broken.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update
from sqlalchemy import event as sa_event
from sqlmodel import Session

from ratehubd.engine.audit import (
    AUDIT_TYPES,
    FIELDS,
    GENESIS,
    HEAD_MISMATCH,
    AuditEvent,
    AuditRecord,
    ChainHead,
    VerifyProblem,
    VerifyResult,
    chain,
    to_us,
    verify,
)
from ratehubd.engine.pairs import parse_pair
from ratehubd.errors import Conflict, InvalidRequest
from ratehubd.store.repository import Store, defer_insert
from ratehubd.store.tables import AuditRow, MetaRow

HEAD_KEY = "audit_head"
CHECKPOINT_KEY = "audit_checkpoint"
DEFAULT_RETENTION_YEARS = 5  # FINTRAC record keeping for money services businesses
MAX_LIMIT = 100_000
BATCH = 10_000

_T = AuditRow.__table__  # type: ignore[attr-defined]
_COLS = [_T.c[name] for name in FIELDS]
_M = MetaRow.__table__  # type: ignore[attr-defined]
_INSERT = insert(_T)


# -- writing ----------------------------------------------------------------------------


_TXN_HEAD = "ratehub.audit.head"


def append(s: Session, event: AuditEvent, now: datetime) -> AuditRecord:
    """Chain ``event`` onto the head and add it to the caller's transaction.

    The head is read (and locked) once per transaction and kept in ``s.info``; the
    writer runs many appends in one transaction (group commit), and the head row is
    written once, just before the commit."""
    conn = s.connection()
    pending: list[Any] | None = s.info.get(_TXN_HEAD)
    if pending is None:
        stmt = select(_M.c.value).where(_M.c.key == HEAD_KEY).with_for_update()
        value = conn.execute(stmt).scalar()
        head = ChainHead.parse(value) if value is not None else _last_row(conn)
        pending = s.info[_TXN_HEAD] = [head, value is not None]
        sa_event.listen(s, "before_commit", _write_head, once=True)
    record = chain(pending[0], event, now)
    defer_insert(s, _INSERT, record._asdict())
    pending[0] = ChainHead(record.seq, record.hash)
    return record


def _write_head(s: Session) -> None:
    pending = s.info.pop(_TXN_HEAD, None)
    if pending is not None:
        _set_meta(s.connection(), HEAD_KEY, str(pending[0]), exists=pending[1])


def prune(s: Session, cutoff: datetime, *, max_rows: int = BATCH) -> int:
    """Delete up to ``max_rows`` of the oldest records, all older than ``cutoff``.

    Only a prefix of the chain goes (records up to the first one at or after
    ``cutoff``), and only after it verifies: a broken prefix raises Conflict instead of
    erasing the evidence. Returns how many records went; call again until it returns 0.
    """
    conn = s.connection()
    start = _checkpoint(conn)
    first_kept = conn.execute(select(func.min(_T.c.seq)).where(_T.c.ts_us >= to_us(cutoff)))
    upper = first_kept.scalar()
    if upper is None:
        upper = conn.execute(select(func.max(_T.c.seq))).scalar() or 0
    else:
        upper -= 1
    upper = min(upper, start.seq + max_rows)
    if upper <= start.seq:
        return 0
    rows = conn.execute(
        select(*_COLS).where(_T.c.seq > start.seq, _T.c.seq <= upper).order_by(_T.c.seq)
    )
    result = verify(rows, start=start)
    if result.problem is not None:
        raise Conflict(
            f"audit records {start.seq + 1}..{upper} are due for pruning but do not verify "
            f"({result.problem.message}); pruning would erase the evidence. Investigate "
            "with `ratectl audit verify` before the retention job can continue",
            seq=result.problem.seq,
            kind=result.problem.kind,
        )
    conn.execute(delete(_T).where(_T.c.seq <= result.end.seq))
    _set_meta(conn, CHECKPOINT_KEY, str(result.end), exists=_meta(conn, CHECKPOINT_KEY) is not None)
    return result.checked


# -- reading ----------------------------------------------------------------------------


def load_head(s: Session) -> ChainHead:
    """The last record's seq and hash (genesis on an empty trail)."""
    conn = s.connection()
    value = _meta(conn, HEAD_KEY)
    return ChainHead.parse(value) if value is not None else _last_row(conn)


def load_checkpoint(s: Session) -> ChainHead:
    """Where the chain starts: the last pruned record, or genesis."""
    return _checkpoint(s.connection())


def _checkpoint(conn: Connection) -> ChainHead:
    value = _meta(conn, CHECKPOINT_KEY)
    return ChainHead.parse(value) if value is not None else GENESIS


def _last_row(conn: Connection) -> ChainHead:
    stmt = select(_T.c.seq, _T.c.hash).order_by(_T.c.seq.desc()).limit(1)
    row = conn.execute(stmt).first()
    return ChainHead(row[0], row[1]) if row is not None else _checkpoint(conn)


def _meta(conn: Connection, key: str) -> str | None:
    value: str | None = conn.execute(select(_M.c.value).where(_M.c.key == key)).scalar()
    return value


def _set_meta(conn: Connection, key: str, value: str, *, exists: bool) -> None:
    if exists:
        conn.execute(update(_M).where(_M.c.key == key).values(value=value))
    else:
        conn.execute(insert(_M).values(key=key, value=value))


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditQuery:
    """Filters for ``ratectl audit``; all optional, combined with AND.

    ``since`` is inclusive, ``until`` exclusive. ``store_id`` matches exactly (global
    records have none). ``after_seq``/``before_seq`` page through long results.
    """

    since: datetime | None = None
    until: datetime | None = None
    store_id: str | None = None
    pair: str | None = None
    actor: str | None = None
    types: tuple[str, ...] = ()
    after_seq: int | None = None
    before_seq: int | None = None
    limit: int = 1000
    order: str = "desc"

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(
                f"audit limit must be between 1 and {MAX_LIMIT}, got {self.limit}; "
                "page through more with after_seq / before_seq"
            )
        if self.order not in ("asc", "desc"):
            raise InvalidRequest(f"audit order must be asc or desc, got {self.order!r}")
        unknown = sorted(set(self.types) - AUDIT_TYPES)
        if unknown:
            known = ", ".join(sorted(AUDIT_TYPES))
            raise InvalidRequest(f"unknown audit type {', '.join(unknown)}; use one of {known}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise InvalidRequest(f"audit {name} needs a time zone, e.g. 2026-01-05T12:00Z")
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise InvalidRequest(
                f"audit since ({self.since.isoformat()}) must be before until "
                f"({self.until.isoformat()})"
            )


def query(s: Session, q: AuditQuery) -> list[AuditRecord]:
    """Records matching ``q``, in seq order (``q.order``), at most ``q.limit``."""
    c = _T.c
    stmt = select(*_COLS)
    if q.since is not None:
        stmt = stmt.where(c.ts_us >= to_us(q.since))
    if q.until is not None:
        stmt = stmt.where(c.ts_us < to_us(q.until))
    if q.store_id is not None:
        stmt = stmt.where(c.store_id == q.store_id)
    if q.pair is not None:
        stmt = stmt.where(c.pair == str(parse_pair(q.pair)))
    if q.actor is not None:
        stmt = stmt.where(c.actor == q.actor)
    if q.types:
        stmt = stmt.where(c.type.in_(q.types))
    if q.after_seq is not None:
        stmt = stmt.where(c.seq > q.after_seq)
    if q.before_seq is not None:
        stmt = stmt.where(c.seq < q.before_seq)
    stmt = stmt.order_by(c.seq.asc() if q.order == "asc" else c.seq.desc()).limit(q.limit)
    return [AuditRecord(*row) for row in s.connection().execute(stmt)]


def iter_rows(conn: Connection, after_seq: int = 0, batch: int = BATCH) -> Iterator[Any]:
    """Every record after ``after_seq`` in seq order, as plain rows, ``batch`` at a time."""
    stmt = select(*_COLS).where(_T.c.seq > bindparam("after")).order_by(_T.c.seq).limit(batch)
    while True:
        rows = conn.execute(stmt, {"after": after_seq}).all()
        yield from rows
        if len(rows) < batch:
            return
        after_seq = rows[-1][0]


# -- verifying --------------------------------------------------------------------------


def verify_chain(engine: Engine, *, batch: int = BATCH) -> VerifyResult:
    """Verify the whole stored chain, from the checkpoint to the recorded head."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")  # one read snapshot for every batch (WAL)
        else:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        meta: dict[str, str] = dict(
            conn.execute(
                select(_M.c.key, _M.c.value).where(_M.c.key.in_((HEAD_KEY, CHECKPOINT_KEY)))
            ).all()
        )
        try:
            start = ChainHead.parse(meta.get(CHECKPOINT_KEY, str(GENESIS)))
            head = None if HEAD_KEY not in meta else ChainHead.parse(meta[HEAD_KEY])
        except ValueError:
            return _bad_meta(meta)
        result = verify(iter_rows(conn, start.seq, batch), start=start, head=head)
    if result.ok and head is None and result.checked:
        problem = VerifyProblem(
            result.end.seq,
            HEAD_MISMATCH,
            f"the recorded head (meta {HEAD_KEY}) is missing: records may have been "
            "deleted from the end",
        )
        return VerifyResult(result.checked, start, result.end, problem)
    return result


def verify_url(url: str, *, batch: int = BATCH) -> VerifyResult:
    """:func:`verify_chain` on its own engine: a top-level function a process pool can
    run, so a multi-second verify does not hold the daemon's GIL (the result pickles)."""
    store = Store(url)
    try:
        return verify_chain(store.engine, batch=batch)
    finally:
        store.close()


def _bad_meta(meta: dict[str, str]) -> VerifyResult:
    problem = VerifyProblem(
        0,
        HEAD_MISMATCH,
        f"the recorded head or checkpoint is not 'seq:hash' ({HEAD_KEY}="
        f"{meta.get(HEAD_KEY)!r}, {CHECKPOINT_KEY}={meta.get(CHECKPOINT_KEY)!r})",
    )
    return VerifyResult(0, GENESIS, GENESIS, problem)

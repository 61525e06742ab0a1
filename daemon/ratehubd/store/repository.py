"""The repository: the only code that talks SQL.

Synchronous on purpose (SQLAlchemy's sync engine): the runtime calls it from one
writer thread, so writes are serialised and the event loop never blocks on disk.
SQLite runs in WAL mode with ``synchronous=FULL``: a commit that returned is on
disk, which is what "acknowledged" promises.

PostgreSQL (a fleet: several nodes, one database) works the same way, with two
additions. Every writer transaction starts by locking the event counter (meta
``seq_hwm``, ``SELECT ... FOR UPDATE``, see ``begin``), so the writes of all nodes are
serialised: an event's seq is allocated inside the transaction that logs it, seqs
follow commit order across the fleet, and a rolled-back write leaves no gap. The
schema is created under an advisory lock, so nodes starting together do not race.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    delete,
    event,
    func,
    insert,
    make_url,
    text,
    update,
)
from sqlalchemy import select as sa_select
from sqlmodel import Session, SQLModel, create_engine, select

from ratehubd.engine.audit import GENESIS
from ratehubd.engine.locks import Lock
from ratehubd.engine.model import MarketQuote, Override
from ratehubd.engine.pairs import parse_pair
from ratehubd.errors import ConfigError
from ratehubd.store.tables import (
    SCHEMA_VERSION,
    AuditRow,
    EventRow,
    LockRow,
    MarketRow,
    MetaRow,
    OverrideRow,
)
from ratehubd.urls import database_kind

# Hot writes use Core statements on these tables: the ORM's unit of work costs
# several times more CPU per row, and the writer thread is the durability bottleneck.
_OVERRIDES = OverrideRow.__table__  # type: ignore[attr-defined]
_LOCKS = LockRow.__table__  # type: ignore[attr-defined]
_EVENTS = EventRow.__table__  # type: ignore[attr-defined]
_META = MetaRow.__table__  # type: ignore[attr-defined]

SEQ_KEY = "seq_hwm"
_AUDIT = AuditRow.__table__  # type: ignore[attr-defined]
_AUDIT_HEAD = "audit_head"  # ratehubd.store.audit.HEAD_KEY (that module imports this one)
_AUDIT_CHECKPOINT = "audit_checkpoint"
_TXN_SEQ = "ratehub.event_seq"
# pg advisory lock held while a node creates the schema, keyed by (this number, the schema)
_SCHEMA_LOCK = 0x7261_7465


# Built once: constructing a statement per call costs more than executing it.
_O = _OVERRIDES.c
_ACTIVE_AT_KEY = (_O.pair == bindparam("p"), _O.status == "active")
_REPLACED = {"status": "replaced", "ended_us": bindparam("at"), "ended_by": bindparam("by")}
_REPLACE_STORE = (
    update(_OVERRIDES).where(*_ACTIVE_AT_KEY, _O.store_id == bindparam("s")).values(**_REPLACED)
)
_REPLACE_GLOBAL = (
    update(_OVERRIDES).where(*_ACTIVE_AT_KEY, _O.store_id.is_(None)).values(**_REPLACED)
)
_INSERT_OVERRIDE = insert(_OVERRIDES)
_END_OVERRIDE = (
    update(_OVERRIDES)
    .where(_O.id == bindparam("i"), _O.status == "active")
    .values(status=bindparam("st"), ended_us=bindparam("at"), ended_by=bindparam("by"))
)
_KEY_TOP = (
    sa_select(_O.version, _O.status)
    .where(_O.pair == bindparam("p"))
    .order_by(_O.version.desc())
    .limit(1)
)
_KEY_TOP_STORE = _KEY_TOP.where(_O.store_id == bindparam("s"))
_KEY_TOP_GLOBAL = _KEY_TOP.where(_O.store_id.is_(None))
_ENDED = ("cleared", "expired")  # a clear or an expiry is a change of the key: it has a version
_INSERT_LOCK = insert(_LOCKS)
_END_LOCK = (
    update(_LOCKS)
    .where(_LOCKS.c.id == bindparam("i"), _LOCKS.c.state == "active")
    .values(state=bindparam("st"), ended_us=bindparam("at"), ended_by=bindparam("by"))
)
_INSERT_EVENT = insert(_EVENTS)


def to_us(dt: datetime) -> int:
    return int(dt.timestamp() * 1_000_000)


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def _dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


def sqlite_url(state_dir: Path) -> str:
    return f"sqlite:///{state_dir / 'ratehub.db'}"


def _engine_options(url: str, kind: str, *, deadline_ms: int, connect_s: int) -> dict[str, Any]:
    if kind == "sqlite":
        return {"connect_args": {"check_same_thread": False}}
    # A fleet's database is across a network: check a pooled connection before use (a
    # restarted server leaves dead ones), give up connecting after a few seconds, and let
    # the server end a statement, a lock wait or an abandoned transaction that overruns.
    timeouts = (
        f"-c statement_timeout={deadline_ms} -c lock_timeout={deadline_ms} "
        f"-c idle_in_transaction_session_timeout={2 * deadline_ms}"
    )
    given = make_url(url).query.get("options")  # e.g. -csearch_path=... : kept, ours after
    if given:
        timeouts = f"{given if isinstance(given, str) else ' '.join(given)} {timeouts}"
    return {
        "pool_pre_ping": True,
        "pool_size": 5,
        "max_overflow": 10,
        "pool_recycle": 1800,
        "connect_args": {
            "connect_timeout": connect_s,
            "application_name": "ratehubd",
            "options": timeouts,
        },
    }


class Store:
    def __init__(
        self, url: str, *, write_timeout_ms: int = 5000, connect_timeout_s: int = 5
    ) -> None:
        self.url = url
        self.kind = database_kind(url)
        self.write_timeout_s = write_timeout_ms / 1000
        opts = _engine_options(
            url, self.kind, deadline_ms=write_timeout_ms, connect_s=connect_timeout_s
        )
        self.engine: Engine = create_engine(url, **opts)
        # The writer's own connection (PostgreSQL): no pre-ping, so that everything it sends
        # runs under the writer's deadline (a ping on checkout would not), and one
        # connection is all one writer thread uses.
        self.write_engine: Engine = self.engine
        if self.kind == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.write_engine = create_engine(
                url, **{**opts, "pool_pre_ping": False, "pool_size": 1, "max_overflow": 0}
            )
        self.epoch = ""

    @property
    def shared(self) -> bool:
        """Several nodes may write this database at once (PostgreSQL)."""
        return self.kind != "sqlite"

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        """Create the schema on first start; refuse a database from a newer ratehub.
        The epoch (and the event counter) live in the database's meta table, so every
        node of a fleet shares them."""
        with self.engine.begin() as conn:
            if self.shared:
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k, hashtext(current_schema()))"),
                    {"k": _SCHEMA_LOCK},
                )
            SQLModel.metadata.create_all(conn)
            meta: dict[str, str] = dict(conn.execute(sa_select(_META.c.key, _META.c.value)).all())
            version = meta.get("schema_version")
            if version is None:
                _put_meta(conn, "schema_version", str(SCHEMA_VERSION))
            elif int(version) > SCHEMA_VERSION:
                raise ConfigError(
                    f"database schema version {version} is newer than this ratehubd "
                    f"understands ({SCHEMA_VERSION}); upgrade ratehub"
                )
            self.epoch = meta.get("epoch") or secrets.token_hex(4)
            if "epoch" not in meta:
                _put_meta(conn, "epoch", self.epoch)
            if SEQ_KEY not in meta:
                top = conn.execute(sa_select(func.max(_EVENTS.c.seq))).scalar()
                _put_meta(conn, SEQ_KEY, str(top or 0))
            if self.shared and _AUDIT_HEAD not in meta:
                # The audit head row exists before the first append, so two nodes' first
                # appends lock it (FOR UPDATE) instead of both chaining onto genesis.
                empty = conn.execute(sa_select(func.count()).select_from(_AUDIT)).scalar() == 0
                if empty and _AUDIT_CHECKPOINT not in meta:
                    _put_meta(conn, _AUDIT_HEAD, str(GENESIS))

    def close(self) -> None:
        if self.write_engine is not self.engine:
            self.write_engine.dispose()
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            yield s
            s.commit()

    # -- overrides ------------------------------------------------------------------------

    # Writes take the caller's session: the writer thread runs several in one
    # transaction (group commit).

    def add_override(self, s: Session, ov: Override) -> None:
        """Persist a new override; the one it replaces at the same key is marked replaced."""
        replace_stmt = _REPLACE_STORE if ov.store_id is not None else _REPLACE_GLOBAL
        at, pair = to_us(ov.created_at), str(ov.pair)
        # Sent with the inserts, before them (flush_inserts): it only reaches older rows.
        defer_insert(s, replace_stmt, {"p": pair, "s": ov.store_id, "at": at, "by": ov.author})
        for row in _pending(s, _INSERT_OVERRIDE):  # one at the same key earlier in this batch
            if (row["pair"], row["store_id"], row["status"]) == (pair, ov.store_id, "active"):
                row.update(status="replaced", ended_us=at, ended_by=ov.author)
        defer_insert(
            s,
            _INSERT_OVERRIDE,
            {
                "id": ov.id,
                "pair": str(ov.pair),
                "store_id": ov.store_id,
                "buy": None if ov.buy is None else str(ov.buy),
                "sell": None if ov.sell is None else str(ov.sell),
                "spread": None if ov.spread is None else str(ov.spread),
                "valid_until_us": to_us(ov.valid_until),
                "reason": ov.reason,
                "author": ov.author,
                "source": ov.source,
                "version": ov.version,
                "created_us": at,
                "status": "active",
                "ended_us": None,
                "ended_by": None,
            },
        )

    def override_version(self, s: Session, pair: str, store_id: str | None) -> int:
        """The key's version now, in the caller's transaction: its newest override's
        version, plus one if that override has ended (0: never set). On a shared database
        the transaction holds the event counter (``begin``), so no other node's write can
        come between this read and the caller's insert: the fleet's one truth."""
        here = [
            r
            for r in _pending(s, _INSERT_OVERRIDE)
            if (r["pair"], r["store_id"]) == (pair, store_id)
        ]
        if here:
            top = max(here, key=lambda r: int(r["version"]))
            return int(top["version"]) + (top["status"] in _ENDED)
        stmt = _KEY_TOP_STORE if store_id is not None else _KEY_TOP_GLOBAL
        row = s.connection().execute(stmt, {"p": pair, "s": store_id}).first()
        return 0 if row is None else int(row.version) + (row.status in _ENDED)

    def end_override(self, s: Session, ov: Override, status: str, by: str, now: datetime) -> bool:
        """Mark an override cleared or expired; False if it had already ended."""
        for row in _pending(s, _INSERT_OVERRIDE):
            if row["id"] == ov.id:
                ended: bool = row["status"] == "active"
                if ended:
                    row.update(status=status, ended_us=to_us(now), ended_by=by)
                return ended
        params = {"i": ov.id, "st": status, "at": to_us(now), "by": by}
        return bool(s.connection().execute(_END_OVERRIDE, params).rowcount)

    def active_overrides(self) -> list[Override]:
        """Overrides still marked active, expired ones included: the caller expires those."""
        with self.session() as s:
            rows = s.exec(select(OverrideRow).where(OverrideRow.status == "active")).all()
            return [self._override(r) for r in rows]

    def override_versions(self) -> dict[tuple[str, str | None], int]:
        with self.session() as s:
            t = OverrideRow.__table__.c  # type: ignore[attr-defined]
            stmt = select(t.pair, t.store_id, func.max(t.version)).group_by(t.pair, t.store_id)
            return {(p, st): int(v) for p, st, v in s.exec(stmt).all()}

    @staticmethod
    def _override(r: OverrideRow) -> Override:
        return Override(
            id=r.id,
            pair=parse_pair(r.pair),
            store_id=r.store_id,
            buy=_dec(r.buy),
            sell=_dec(r.sell),
            spread=_dec(r.spread),
            valid_until=from_us(r.valid_until_us),
            reason=r.reason,
            author=r.author,
            source=r.source,
            version=r.version,
            created_at=from_us(r.created_us),
        )

    # -- locks ----------------------------------------------------------------------------

    def add_lock(self, s: Session, lock: Lock) -> None:
        row = {
            "id": lock.id,
            "pair": str(lock.pair),
            "store_id": lock.store_id,
            "buy": str(lock.buy),
            "sell": str(lock.sell),
            "mid": str(lock.mid),
            "reference": lock.reference,
            "author": lock.author,
            "created_us": to_us(lock.created_at),
            "expires_us": to_us(lock.expires_at),
            "idempotency_key": lock.idempotency_key,
            "state": "active",
            "ended_us": None,
            "ended_by": None,
        }
        defer_insert(s, _INSERT_LOCK, row)

    def end_lock(self, s: Session, lock: Lock) -> bool:
        """Move a lock from active to its end state; False if it had already ended."""
        for row in _pending(s, _INSERT_LOCK):
            if row["id"] == lock.id:
                ended: bool = row["state"] == "active"
                if ended:
                    at = to_us(lock.ended_at or lock.expires_at)
                    row.update(state=lock.state, ended_us=at, ended_by=lock.ended_by)
                return ended
        params = {
            "i": lock.id,
            "st": lock.state,
            "at": to_us(lock.ended_at or lock.expires_at),
            "by": lock.ended_by,
        }
        return bool(s.connection().execute(_END_LOCK, params).rowcount)

    def load_locks(self, ended_since: datetime) -> list[Lock]:
        """Active locks, and ended ones recent enough to answer idempotent retries."""
        since = to_us(ended_since)
        with self.session() as s:
            stmt = select(LockRow).where(
                (LockRow.state == "active") | (LockRow.ended_us >= since)  # type: ignore[operator]
            )
            return [self._lock(r) for r in s.exec(stmt).all()]

    @staticmethod
    def _lock(r: LockRow) -> Lock:
        return Lock(
            id=r.id,
            pair=parse_pair(r.pair),
            store_id=r.store_id,
            buy=Decimal(r.buy),
            sell=Decimal(r.sell),
            mid=Decimal(r.mid),
            reference=r.reference,
            author=r.author,
            created_at=from_us(r.created_us),
            expires_at=from_us(r.expires_us),
            idempotency_key=r.idempotency_key,
            state=r.state,
            ended_at=from_us(r.ended_us) if r.ended_us is not None else None,
            ended_by=r.ended_by,
        )

    # -- market ---------------------------------------------------------------------------

    def save_market(self, s: Session, quotes: list[MarketQuote]) -> None:
        for q in quotes:
            row = MarketRow(
                pair=str(q.pair),
                mid=str(q.mid),
                sources=",".join(q.sources),
                ts_us=to_us(q.timestamp),
            )
            s.merge(row)

    def load_market(self) -> list[MarketQuote]:
        with self.session() as s:
            return [
                MarketQuote(
                    pair=parse_pair(r.pair),
                    mid=Decimal(r.mid),
                    sources=tuple(r.sources.split(",")),
                    timestamp=from_us(r.ts_us),
                )
                for r in s.exec(select(MarketRow)).all()
            ]

    # -- hub event log --------------------------------------------------------------------

    def add_event(
        self, s: Session, *, seq: int, store_id: str | None, type: str, payload: str, ts_us: int
    ) -> None:
        row = {"seq": seq, "store_id": store_id, "type": type, "payload": payload, "ts_us": ts_us}
        defer_insert(s, _INSERT_EVENT, row)

    def events_after(self, seq: int, limit: int = 10_000) -> list[EventRow]:
        with self.session() as s:
            stmt = select(EventRow).where(EventRow.seq > seq).order_by(EventRow.seq).limit(limit)  # type: ignore[arg-type]
            return list(s.exec(stmt).all())

    def oldest_event(self) -> tuple[int, int] | None:
        """The oldest logged event's (seq, ts_us): how far back a client can resume."""
        with self.session() as s:
            stmt = select(EventRow.seq, EventRow.ts_us).order_by(EventRow.seq).limit(1)  # type: ignore[arg-type]
            row = s.exec(stmt).first()
            return None if row is None else (int(row[0]), int(row[1]))

    def oldest_event_seq(self) -> int | None:
        with self.session() as s:
            return s.exec(select(func.min(EventRow.seq))).one()

    def prune_events(self, keep_after_us: int) -> None:
        with self.session() as s:
            s.connection().execute(delete(_EVENTS).where(_EVENTS.c.ts_us < keep_after_us))

    def seq_hwm(self) -> int:
        """The highest sequence number handed out or reserved before (0 on a new database)."""
        with self.session() as s:
            row = s.get(MetaRow, SEQ_KEY)
            top = s.exec(select(func.max(EventRow.seq))).one()
            return max(int(row.value) if row else 0, top or 0)

    def set_seq_hwm(self, s: Session, value: int) -> None:
        s.merge(MetaRow(key=SEQ_KEY, value=str(value)))

    def begin(self, s: Session) -> None:
        """Start a writer transaction. On a shared database, lock the event counter first:
        every node's writes then run one at a time, in one lock order (counter, then the
        audit head), so seqs follow commit order and no two writers deadlock."""
        if self.shared:
            self._seq_box(s)

    def next_seq(self, s: Session) -> int:
        """Allocate the next event seq inside the caller's transaction: it commits (and is
        visible to every node) with the event, or rolls back with it and is reused."""
        box = self._seq_box(s)
        box[0] += 1
        return box[0]

    def _seq_box(self, s: Session) -> list[int]:
        box: list[int] | None = s.info.get(_TXN_SEQ)
        if box is None:
            conn = s.connection()
            stmt = sa_select(_META.c.value).where(_META.c.key == SEQ_KEY)
            if self.shared:
                stmt = stmt.with_for_update()
            value = conn.execute(stmt).scalar()
            if value is None:  # a database opened by an older ratehubd, never reopened
                top = conn.execute(sa_select(func.max(_EVENTS.c.seq))).scalar() or 0
                _put_meta(conn, SEQ_KEY, str(top))
                value = top
            box = s.info[_TXN_SEQ] = [int(value), int(value)]
            event.listen(s, "before_commit", _write_seq, once=True)
        return box

    def events_between(self, first: int, last: int) -> list[EventRow]:
        """Logged events with ``first <= seq <= last``, in seq order."""
        with self.session() as s:
            stmt = (
                select(EventRow)
                .where(EventRow.seq >= first, EventRow.seq <= last)
                .order_by(EventRow.seq)  # type: ignore[arg-type]
            )
            return list(s.exec(stmt).all())

    def committed_seq(self) -> int:
        """The highest event seq committed by any node (one indexed read: cheap to poll)."""
        with self.engine.connect() as conn:
            value = conn.execute(sa_select(_META.c.value).where(_META.c.key == SEQ_KEY)).scalar()
        return int(value) if value is not None else 0

    # -- single rows, for a node that learns of another node's change -------------------

    def get_override(self, override_id: str) -> tuple[Override, str] | None:
        """An override by id and its status (active, replaced, cleared, expired)."""
        with self.session() as s:
            row = s.get(OverrideRow, override_id)
            return None if row is None else (self._override(row), row.status)

    def active_override(self, pair: str, store_id: str | None) -> Override | None:
        with self.session() as s:
            t = OverrideRow
            same_store = t.store_id == store_id if store_id is not None else t.store_id.is_(None)  # type: ignore[union-attr]
            stmt = select(t).where(t.pair == pair, same_store, t.status == "active")
            row = s.exec(stmt.order_by(t.version.desc())).first()  # type: ignore[attr-defined]
            return None if row is None else self._override(row)

    def get_lock(self, lock_id: str) -> Lock | None:
        with self.session() as s:
            row = s.get(LockRow, lock_id)
            return None if row is None else self._lock(row)


def _put_meta(conn: Connection, key: str, value: str) -> None:
    conn.execute(insert(_META).values(key=key, value=value))


# Inserts of one transaction are held and sent together, one executemany per table, just
# before the commit: the writer's group commit then pays the per-statement cost once per
# table instead of once per row. Only writes to rows this transaction has not inserted
# yet go out at once; the two that may touch a pending row (an override replaced or
# ended in the same batch) look in the pending rows first.
_TXN_INSERTS = "ratehub.pending_inserts"


def defer_insert(s: Session, stmt: Any, row: dict[str, Any]) -> None:
    pending: dict[Any, list[dict[str, Any]]] | None = s.info.get(_TXN_INSERTS)
    if pending is None:
        pending = s.info[_TXN_INSERTS] = {}
        event.listen(s, "before_commit", flush_inserts, once=True)
    pending.setdefault(stmt, []).append(row)


def _pending(s: Session, stmt: Any) -> list[dict[str, Any]]:
    pending: dict[Any, list[dict[str, Any]]] = s.info.get(_TXN_INSERTS) or {}
    return pending.get(stmt, [])


def flush_inserts(s: Session) -> None:
    """Send the transaction's held inserts now (also before any read that needs them)."""
    pending = s.info.pop(_TXN_INSERTS, None)
    if pending:
        conn = s.connection()
        # Overrides replaced by this batch's new ones first, so the new rows stay active.
        order = sorted(pending, key=lambda stmt: stmt not in (_REPLACE_STORE, _REPLACE_GLOBAL))
        for stmt in order:
            conn.execute(stmt, pending[stmt])


def _write_seq(s: Session) -> None:
    box = s.info.pop(_TXN_SEQ, None)
    if box is not None and box[0] != box[1]:
        conn = s.connection()
        conn.execute(update(_META).where(_META.c.key == SEQ_KEY).values(value=str(box[0])))

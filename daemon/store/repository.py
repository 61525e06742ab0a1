"""The repository: the only code that talks SQL.

Synchronous on purpose (SQLAlchemy's sync engine): the runtime calls it from one
writer thread, so writes are serialised and the event loop never blocks on disk.
SQLite runs in WAL mode with ``synchronous=FULL``: a commit that returned is on
disk, which is what "acknowledged" promises.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event, func, insert, update
from sqlmodel import Session, SQLModel, create_engine, select

from daemon.engine.locks import Lock
from daemon.engine.model import MarketQuote, Override
from daemon.engine.pairs import parse_pair
from daemon.errors import ConfigError
from daemon.store.tables import (
    SCHEMA_VERSION,
    EventRow,
    LockRow,
    MarketRow,
    MetaRow,
    OverrideRow,
)

# Hot writes use Core statements on these tables: the ORM's unit of work costs
# several times more CPU per row, and the writer thread is the durability bottleneck.
_OVERRIDES = OverrideRow.__table__  # type: ignore[attr-defined]
_LOCKS = LockRow.__table__  # type: ignore[attr-defined]
_EVENTS = EventRow.__table__  # type: ignore[attr-defined]


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


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        kwargs: dict[str, Any] = {}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self.epoch = ""

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        """Create the schema on first start; refuse a database from a newer ratehub."""
        SQLModel.metadata.create_all(self.engine)
        with self.session() as s:
            version = s.get(MetaRow, "schema_version")
            if version is None:
                s.add(MetaRow(key="schema_version", value=str(SCHEMA_VERSION)))
            elif int(version.value) > SCHEMA_VERSION:
                raise ConfigError(
                    f"database schema version {version.value} is newer than this ratehubd "
                    f"understands ({SCHEMA_VERSION}); upgrade ratehub"
                )
            epoch = s.get(MetaRow, "epoch")
            if epoch is None:
                epoch = MetaRow(key="epoch", value=secrets.token_hex(4))
                s.add(epoch)
            self.epoch = epoch.value

    def close(self) -> None:
        self.engine.dispose()

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
        conn = s.connection()
        t = _OVERRIDES
        same_key = (
            t.c.store_id == ov.store_id if ov.store_id is not None else t.c.store_id.is_(None)
        )
        conn.execute(
            update(t)
            .where(t.c.pair == str(ov.pair), same_key, t.c.status == "active")
            .values(status="replaced", ended_us=to_us(ov.created_at), ended_by=ov.author)
        )
        conn.execute(
            insert(t),
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
                "created_us": to_us(ov.created_at),
                "status": "active",
            },
        )

    def end_override(self, s: Session, ov: Override, status: str, by: str, now: datetime) -> bool:
        """Mark an override cleared or expired; False if it had already ended."""
        t = _OVERRIDES
        stmt = (
            update(t)
            .where(t.c.id == ov.id, t.c.status == "active")
            .values(status=status, ended_us=to_us(now), ended_by=by)
        )
        return bool(s.connection().execute(stmt).rowcount)

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
        }
        s.connection().execute(insert(_LOCKS), row)

    def end_lock(self, s: Session, lock: Lock) -> bool:
        """Move a lock from active to its end state; False if it had already ended."""
        t = _LOCKS
        stmt = (
            update(t)
            .where(t.c.id == lock.id, t.c.state == "active")
            .values(
                state=lock.state,
                ended_us=to_us(lock.ended_at or lock.expires_at),
                ended_by=lock.ended_by,
            )
        )
        return bool(s.connection().execute(stmt).rowcount)

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
        s.connection().execute(insert(_EVENTS), row)

    def events_after(self, seq: int, limit: int = 10_000) -> list[EventRow]:
        with self.session() as s:
            stmt = select(EventRow).where(EventRow.seq > seq).order_by(EventRow.seq).limit(limit)  # type: ignore[arg-type]
            return list(s.exec(stmt).all())

    def oldest_event_seq(self) -> int | None:
        with self.session() as s:
            return s.exec(select(func.min(EventRow.seq))).one()

    def prune_events(self, keep_after_us: int) -> None:
        with self.session() as s:
            for row in s.exec(select(EventRow).where(EventRow.ts_us < keep_after_us)):
                s.delete(row)

    def seq_hwm(self) -> int:
        """The highest sequence number handed out or reserved before (0 on a new database)."""
        with self.session() as s:
            row = s.get(MetaRow, "seq_hwm")
            top = s.exec(select(func.max(EventRow.seq))).one()
            return max(int(row.value) if row else 0, top or 0)

    def set_seq_hwm(self, s: Session, value: int) -> None:
        s.merge(MetaRow(key="seq_hwm", value=str(value)))

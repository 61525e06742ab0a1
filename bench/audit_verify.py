"""Benchmark: verify a 1,000,000-record audit chain from SQLite, end to end.

Builds the chain with the daemon's own code (``ratehubd.engine.audit``), bulk-inserts it
into a temporary database created by ``ratehubd.store`` (WAL, ``synchronous=FULL``, the
real schema and indexes), then times ``ratehubd.store.audit.verify_chain``: the same call
``ratectl audit verify`` makes, reading every row and recomputing every hash. With
``--tamper`` it then changes one field of the middle record and times how long verify
takes to name it. Exits 1 when verify fails or takes longer than ``--budget`` seconds.

    .venv/bin/python bench/audit_verify.py                 # 1,000,000 records
    .venv/bin/python bench/audit_verify.py --records 100000 --tamper
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice
from pathlib import Path

from ratehubd.engine.audit import AuditChain, AuditEvent, AuditRecord
from ratehubd.store import audit as repo
from ratehubd.store.repository import Store, sqlite_url
from ratehubd.store.tables import MetaRow

T0 = datetime(2021, 1, 1, tzinfo=UTC)
CHUNK = 50_000


def events() -> list[AuditEvent]:
    """A realistic mix: overrides with before/after, locks, breaches, key changes."""
    ov = {
        "id": "9f1c2e4a7b3d4c5e8f9a0b1c2d3e4f5a",
        "pair": "USD/CAD",
        "storeId": "store-042",
        "buyRate": Decimal("1.3700"),
        "sellRate": Decimal("1.3300"),
        "spread": None,
        "validUntil": "2026-01-05T13:00:00+00:00",
        "reason": "weekend promotion",
        "author": "key_7f3a9c",
        "source": "manual",
        "version": 12,
    }
    return [
        AuditEvent(
            type="override_set",
            actor="key_7f3a9c",
            store_id="store-042",
            pair="USD/CAD",
            before={**ov, "version": 11, "buyRate": Decimal("1.3690")},
            after=ov,
            reason="weekend promotion",
            source="http",
        ),
        AuditEvent(
            type="lock_created",
            actor="key_store042",
            store_id="store-042",
            pair="EUR/CAD",
            after={"id": "lk_5d2e", "buyRate": Decimal("1.4912"), "amount": Decimal("2500.00")},
            reason="customer quote",
            source="store_os",
        ),
        AuditEvent(
            type="breach_begun",
            actor="system",
            pair="GBP/CAD",
            before={"mid": Decimal("1.7301")},
            after={"mid": Decimal("1.7702"), "threshold": Decimal("0.02")},
            reason="market moved 2.3 % in 60 s",
            source="feed",
        ),
        AuditEvent(
            type="key_revoked", actor="key_admin1", before={"id": "key_old", "role": "store"}
        ),
    ]


def records(n: int) -> Iterator[AuditRecord]:
    chain, mix, step = AuditChain(), events(), timedelta(seconds=150)
    for i in range(n):
        yield chain.append(mix[i % len(mix)], T0 + i * step)


def build(store: Store, n: int) -> AuditRecord | None:
    """Bulk insert: executemany in chunks, one transaction each; then the head row."""
    path = store.url.removeprefix("sqlite:///")
    con = sqlite3.connect(path, isolation_level=None)
    marks = ",".join("?" * len(AuditRecord._fields))
    stream, last = records(n), None
    while chunk := list(islice(stream, CHUNK)):
        con.execute("BEGIN")
        con.executemany(f"INSERT INTO audit VALUES ({marks})", chunk)
        con.execute("COMMIT")
        last = chunk[-1]
    con.close()
    if last is not None:
        with store.session() as s:
            s.merge(MetaRow(key=repo.HEAD_KEY, value=f"{last.seq}:{last.hash}"))
    return last


def time_appends(store: Store, n: int = 2_000) -> float:
    """Microseconds per ``repo.append`` inside one transaction (as the writer batches)."""
    mix = events()
    t = time.perf_counter()
    with store.session() as s:
        for i in range(n):
            repo.append(s, mix[i % len(mix)], T0)
    return (time.perf_counter() - t) / n * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=repo.BATCH, help="rows per verify query")
    ap.add_argument("--budget", type=float, default=10.0, help="fail above this many seconds")
    ap.add_argument("--tamper", action="store_true", help="also time finding a changed row")
    ap.add_argument("--dir", type=Path, default=None, help="where to put the database")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="audit-bench-") as tmp:
        store = Store(sqlite_url(Path(tmp)))
        store.open()
        print(
            f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
            f"{os.cpu_count()} cpus"
        )
        t = time.perf_counter()
        build(store, args.records)
        size = Path(tmp, "ratehub.db").stat().st_size + Path(tmp, "ratehub.db-wal").stat().st_size
        print(
            f"built   {args.records:>9,} records in {time.perf_counter() - t:6.2f} s "
            f"(chain + bulk insert), database {size / 2**20:.0f} MiB"
        )

        t = time.perf_counter()
        result = repo.verify_chain(store.engine, batch=args.batch)
        took = time.perf_counter() - t
        rate = result.checked / took if took else 0.0
        print(
            f"verify  {result.checked:>9,} records in {took:6.2f} s "
            f"({rate:,.0f} records/s, {took / max(result.checked, 1) * 1e6:.2f} us each)"
        )
        print(f"        {result.summary()}")
        ok = result.ok and result.checked == args.records and took <= args.budget

        if args.tamper and args.records:
            middle = args.records // 2 + 1
            con = sqlite3.connect(store.url.removeprefix("sqlite:///"), isolation_level=None)
            con.execute("UPDATE audit SET reason = 'edited' WHERE seq = ?", (middle,))
            con.close()
            t = time.perf_counter()
            bad = repo.verify_chain(store.engine, batch=args.batch)
            print(
                f"tamper  record {middle:,} changed: found in {time.perf_counter() - t:.2f} s: "
                f"{bad.summary()[:90]}..."
            )
            ok = ok and bad.problem is not None and bad.problem.seq == middle

        print(f"append  {time_appends(store):.0f} us per record through the repository")
        store.close()
    if not ok:
        print(f"FAILED (budget {args.budget} s)", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

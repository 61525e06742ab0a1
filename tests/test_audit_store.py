"""The audit repository on a real SQLite database: append, tamper, prune, query."""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session

from ratehubd.adapters.writer import Writer
from ratehubd.engine import audit
from ratehubd.engine.audit import AuditEvent, ChainHead, canonical, retention_cutoff
from ratehubd.errors import Conflict, InvalidRequest, UnknownPair
from ratehubd.store import audit as repo
from ratehubd.store.repository import Store, sqlite_url
from tests.conftest import timeout

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    st = Store(sqlite_url(tmp_path))
    st.open()
    yield st
    st.close()


def db(store: Store) -> sqlite3.Connection:
    """A second, raw connection: what someone with the database file could do."""
    return sqlite3.connect(store.url.removeprefix("sqlite:///"), isolation_level=None)


def ev(i: int, **kw: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "type": ("override_set", "lock_created", "key_revoked")[i % 3],
        "actor": ("key_a", "key_b")[i % 2],
        "store_id": (None, "s1", "s2", "s3")[i % 4],
        "pair": ("USD/CAD", "EUR/CAD", None)[i % 3],
        "before": None if i % 2 else {"n": i - 1},
        "after": {"n": i},
        "reason": f"reason {i}",
        "source": "test",
    }
    fields.update(kw)
    return AuditEvent(**fields)


def fill(store: Store, n: int, start: datetime = T0, step: timedelta = timedelta(hours=1)) -> None:
    with store.session() as s:
        for i in range(n):
            repo.append(s, ev(i), start + i * step)


def problem(store: Store) -> tuple[int, str, str]:
    result = repo.verify_chain(store.engine, batch=4)
    assert result.problem is not None, "verify passed a tampered chain"
    return result.problem.seq, result.problem.kind, result.problem.message


# -- append -----------------------------------------------------------------------------


def test_appended_records_form_a_chain_that_verifies(store: Store) -> None:
    fill(store, 10)
    result = repo.verify_chain(store.engine, batch=3)
    assert result.ok, result.summary()
    assert result.checked == 10
    with store.session() as s:
        assert repo.load_head(s) == result.end
        assert result.end.seq == 10


def test_an_append_commits_with_its_transaction_or_not_at_all(store: Store) -> None:
    fill(store, 2)
    with pytest.raises(RuntimeError, match="the change failed"), store.session() as s:
        repo.append(s, ev(9), T0)
        raise RuntimeError("the change failed")
    with store.session() as s:
        assert repo.load_head(s).seq == 2
        assert repo.append(s, ev(3), T0).seq == 3
    assert repo.verify_chain(store.engine).ok


async def test_the_writer_retrying_a_failed_batch_does_not_fork_the_chain(store: Store) -> None:
    """A batch with one failing op rolls back and runs again op by op."""
    writer = Writer(store)

    def good(i: int) -> Any:
        return lambda s: repo.append(s, ev(i), T0).seq

    def bad(s: Session) -> None:
        repo.append(s, ev(99), T0)
        raise Conflict("this change lost a race")

    rollbacks: list[object] = []

    def on_rollback(conn: object) -> None:
        rollbacks.append(conn)

    event.listen(store.engine, "rollback", on_rollback)
    calls = [writer.write(good(0)), writer.write(bad), writer.write(good(1))]
    futures = [asyncio.ensure_future(c) for c in calls]
    await asyncio.sleep(0)  # all three are queued before the thread takes the first
    writer.start()
    try:
        results = await asyncio.gather(*futures, return_exceptions=True)
    finally:
        writer.stop()
        event.remove(store.engine, "rollback", on_rollback)
    assert results[0] == 1 and results[2] == 2
    assert isinstance(results[1], Conflict)
    assert len(rollbacks) == 2  # the batch of three, then the bad op alone
    result = repo.verify_chain(store.engine)
    assert result.ok and result.checked == 2, result.summary()


def test_a_trail_without_a_recorded_head_continues_from_its_last_record(store: Store) -> None:
    fill(store, 3)
    db(store).execute("DELETE FROM meta WHERE key = 'audit_head'")
    assert problem(store)[1] == audit.HEAD_MISMATCH
    with store.session() as s:
        assert repo.append(s, ev(3), T0).seq == 4
    assert repo.verify_chain(store.engine).ok


# -- tampering --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("reason", "'approved by head office'"),
        ("actor", "'key_mallory'"),
        ("store_id", "NULL"),
        ("pair", "'GBP/CAD'"),
        ("after", """'{"n":999}'"""),
        ("after", """'{"n": 3}'"""),  # same value, different bytes
        ("ts_us", "ts_us + 1"),
        ("type", "'override_cleared'"),
        ("hash", "'" + "f" * 64 + "'"),
    ],
)
def test_changing_one_field_of_one_row_fails_and_names_that_row(
    store: Store, column: str, value: str
) -> None:
    fill(store, 12)
    db(store).execute(f"UPDATE audit SET {column} = {value} WHERE seq = 4")
    seq, kind, message = problem(store)
    assert (seq, kind) == (4, audit.CHANGED)
    assert "record 4 was changed" in message


def test_a_field_of_the_wrong_type_is_named(store: Store) -> None:
    fill(store, 6)
    db(store).execute("UPDATE audit SET ts_us = 'yesterday' WHERE seq = 5")
    seq, kind, message = problem(store)
    assert (seq, kind) == (5, audit.MALFORMED)
    assert "ts_us should be an integer, it is 'yesterday'" in message


@pytest.mark.parametrize(("seq", "named"), [(1, "record 1 missing"), (7, "record 7 missing")])
def test_deleting_one_row_fails_and_names_it(store: Store, seq: int, named: str) -> None:
    fill(store, 12)
    db(store).execute("DELETE FROM audit WHERE seq = ?", (seq,))
    got_seq, kind, message = problem(store)
    assert (got_seq, kind) == (seq, audit.MISSING)
    assert named in message


def test_deleting_the_last_rows_fails(store: Store) -> None:
    fill(store, 12)
    db(store).execute("DELETE FROM audit WHERE seq >= 11")
    seq, kind, message = problem(store)
    assert (seq, kind) == (11, audit.MISSING)
    assert "records 11..12 missing from the end" in message


def test_reordering_rows_fails(store: Store) -> None:
    fill(store, 8)
    con = db(store)
    con.execute("UPDATE audit SET seq = 100 WHERE seq = 3")
    con.execute("UPDATE audit SET seq = 3 WHERE seq = 4")
    con.execute("UPDATE audit SET seq = 4 WHERE seq = 100")
    assert problem(store)[:2] == (3, audit.CHANGED)


def test_altering_prev_hash_fails_even_when_the_row_is_rehashed(store: Store) -> None:
    fill(store, 8)
    con = db(store)
    con.execute("UPDATE audit SET prev_hash = ? WHERE seq = 5", ("1" * 64,))
    assert problem(store)[:2] == (5, audit.CHANGED)

    row = con.execute("SELECT * FROM audit WHERE seq = 5").fetchone()
    names = [d[0] for d in con.execute("SELECT * FROM audit LIMIT 0").description]
    fields = dict(zip(names, row, strict=True))
    rehashed = hashlib.sha256(canonical(fields)).hexdigest()
    con.execute("UPDATE audit SET hash = ? WHERE seq = 5", (rehashed,))
    seq, kind, message = problem(store)
    assert (seq, kind) == (5, audit.BROKEN_LINK)
    assert "record 5 does not link to record 4" in message


def test_a_garbled_head_is_reported_not_raised(store: Store) -> None:
    fill(store, 3)
    db(store).execute("UPDATE meta SET value = 'oops' WHERE key = 'audit_head'")
    seq, kind, message = problem(store)
    assert kind == audit.HEAD_MISMATCH and "audit_head='oops'" in message


def test_verify_reads_one_snapshot_while_records_are_appended(store: Store) -> None:
    fill(store, 10)
    other = Store(store.url)
    appended: list[int] = []

    def append_meanwhile(_conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        if not appended and "FROM audit" in statement:  # after verify read the head
            with other.session() as s:
                appended.append(repo.append(s, ev(10), T0).seq)

    event.listen(store.engine, "after_cursor_execute", append_meanwhile)
    try:
        result = repo.verify_chain(store.engine, batch=3)
    finally:
        event.remove(store.engine, "after_cursor_execute", append_meanwhile)
        other.close()
    assert appended == [11]
    assert result.ok and result.checked == 10, result.summary()
    assert repo.verify_chain(store.engine).checked == 11


# -- retention --------------------------------------------------------------------------


def test_pruning_keeps_the_chain_verifiable(store: Store) -> None:
    fill(store, 20, step=timedelta(days=200))  # about 11 years
    cutoff = retention_cutoff(T0 + 19 * timedelta(days=200), repo.DEFAULT_RETENTION_YEARS)
    with store.session() as s:
        pruned = repo.prune(s, cutoff)
    assert pruned == 10  # records 1..10 are older than 5 years, 11 (day 2000) is not
    result = repo.verify_chain(store.engine)
    assert result.ok, result.summary()
    assert (result.start.seq, result.checked, result.end.seq) == (10, 10, 20)
    with store.session() as s:
        oldest = repo.query(s, repo.AuditQuery(order="asc", limit=1))[0]
        assert oldest.seq == 11 and oldest.time >= cutoff
        repo.append(s, ev(20), T0)
    assert repo.verify_chain(store.engine).ok


def test_tampering_after_a_prune_is_still_found(store: Store) -> None:
    fill(store, 10, step=timedelta(days=365))
    with store.session() as s:
        repo.prune(s, T0 + timedelta(days=365 * 5))
    db(store).execute("DELETE FROM audit WHERE seq = 6")
    assert problem(store)[:2] == (6, audit.MISSING)


def test_pruning_goes_in_chunks_and_never_past_a_younger_record(store: Store) -> None:
    times = [0, 1, 2, 3, 9, 4, 5]  # record 5 is young; 6 and 7 are old but come after it
    with store.session() as s:
        for i, year in enumerate(times):
            repo.append(s, ev(i), T0 + timedelta(days=365 * year))
    cutoff = T0 + timedelta(days=365 * 6)
    counts = []
    for _ in range(4):
        with store.session() as s:
            counts.append(repo.prune(s, cutoff, max_rows=3))
    assert counts == [3, 1, 0, 0]
    result = repo.verify_chain(store.engine)
    assert result.ok and result.start.seq == 4 and result.checked == 3


def test_pruning_everything_old_leaves_a_chain_that_continues(store: Store) -> None:
    fill(store, 5)
    with store.session() as s:
        assert repo.prune(s, T0 + timedelta(days=1)) == 5
        assert repo.load_head(s) == repo.load_checkpoint(s)
    result = repo.verify_chain(store.engine)
    assert result.ok and result.checked == 0 and result.end.seq == 5
    with store.session() as s:
        assert repo.append(s, ev(5), T0).seq == 6
    assert repo.verify_chain(store.engine).ok


def test_pruning_a_tampered_prefix_refuses_and_keeps_the_evidence(store: Store) -> None:
    fill(store, 6)
    db(store).execute("UPDATE audit SET reason = 'hidden' WHERE seq = 2")
    with pytest.raises(
        Conflict, match="do not verify .*record 2 was changed.*ratectl audit verify"
    ):
        with store.session() as s:
            repo.prune(s, T0 + timedelta(days=1))
    assert db(store).execute("SELECT count(*) FROM audit").fetchone() == (6,)


# -- queries ----------------------------------------------------------------------------


def seqs(store: Store, **kw: Any) -> list[int]:
    with store.session() as s:
        return [r.seq for r in repo.query(s, repo.AuditQuery(**kw))]


def test_query_filters(store: Store) -> None:
    fill(store, 24)  # record n is event n-1, at T0 + (n-1) hours
    assert seqs(store, order="asc", limit=3) == [1, 2, 3]
    assert seqs(store, limit=3) == [24, 23, 22]
    since, until = T0 + timedelta(hours=5), T0 + timedelta(hours=8)
    assert seqs(store, since=since, until=until, order="asc") == [6, 7, 8]
    assert seqs(store, store_id="s2", order="asc") == [3, 7, 11, 15, 19, 23]
    assert seqs(store, pair="eur-cad", order="asc", limit=4) == [2, 5, 8, 11]
    assert seqs(store, actor="key_b", order="asc", limit=3) == [2, 4, 6]
    assert seqs(store, types=("key_revoked", "lock_created"), order="asc", limit=4) == [2, 3, 5, 6]
    assert seqs(store, actor="key_a", store_id="s1", types=("override_set",)) == []
    assert seqs(store, actor="key_b", store_id="s3", types=("key_revoked",)) == [24, 12]
    assert seqs(store, after_seq=20, order="asc") == [21, 22, 23, 24]
    assert seqs(store, before_seq=3) == [2, 1]


def test_query_returns_whole_records(store: Store) -> None:
    fill(store, 2)
    with store.session() as s:
        rec = repo.query(s, repo.AuditQuery(limit=1))[0]
    assert rec.to_dict() == {
        **rec._asdict(),
        "before": None,
        "after": {"n": 1},
    }
    assert (rec.actor, rec.store_id, rec.pair, rec.reason) == ("key_b", "s1", "EUR/CAD", "reason 1")
    assert rec.time == T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({"limit": 0}, "between 1 and 100000"),
        ({"order": "newest"}, "asc or desc"),
        ({"types": ("override_sett",)}, "unknown audit type override_sett; use one of"),
        ({"since": datetime(2026, 1, 1)}, "needs a time zone"),
        ({"since": T0, "until": T0}, "must be before until"),
    ],
)
def test_bad_queries_say_what_to_do(kw: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        repo.AuditQuery(**kw)


def test_a_bad_pair_in_a_query_says_how_to_write_one(store: Store) -> None:
    with pytest.raises(UnknownPair, match="write it as USD/CAD"), store.session() as s:
        repo.query(s, repo.AuditQuery(pair="dollars"))


def test_head_of_an_empty_trail_is_genesis(store: Store) -> None:
    with store.session() as s:
        assert repo.load_head(s) == audit.GENESIS == ChainHead(0, "0" * 64)
    assert repo.verify_chain(store.engine).ok


def test_verify_runs_in_another_process_and_its_result_crosses_back(store: Store) -> None:
    fill(store, 5)
    db(store).execute("UPDATE audit SET actor = 'key_z' WHERE seq = 2")
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        result = pool.submit(repo.verify_url, store.url).result(timeout=timeout(60))
    assert result.problem is not None and result.problem.seq == 2
    assert result.to_dict()["problem"] == {
        "seq": 2,
        "kind": "changed",
        "message": result.problem.message,
    }
    assert result.to_dict()["end"] == {"seq": 1, "hash": result.end.hash}

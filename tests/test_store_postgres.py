"""The repository and the audit store on PostgreSQL (a fleet's database), and on SQLite.

Each test runs on both databases where the behaviour is the same; each PostgreSQL test
gets a fresh schema that is dropped afterwards (``tests.services.pg_url``).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session

from ratehubd.adapters.writer import Writer
from ratehubd.engine.audit import AuditEvent
from ratehubd.engine.locks import Lock
from ratehubd.engine.model import MarketQuote, Override
from ratehubd.engine.pairs import parse_pair
from ratehubd.errors import ConfigError, Conflict
from ratehubd.store import audit as repo
from ratehubd.store.repository import SEQ_KEY, Store, sqlite_url
from tests.conftest import timeout

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
USD = parse_pair("USD/CAD")


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path)
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(url: str) -> Iterator[Store]:
    st = Store(url)
    st.open()
    yield st
    st.close()


def override(version: int, store_id: str | None = None, **kw: Any) -> Override:
    fields: dict[str, Any] = {
        "id": f"ov{version}{store_id or ''}",
        "pair": USD,
        "store_id": store_id,
        "buy": Decimal("1.3700"),
        "sell": Decimal("1.3300"),
        "spread": None,
        "valid_until": T0 + timedelta(hours=1),
        "reason": "test",
        "author": "key_a",
        "source": "manual",
        "version": version,
        "created_at": T0 + timedelta(seconds=version),
    }
    fields.update(kw)
    return Override(**fields)


def audit_event(i: int) -> AuditEvent:
    return AuditEvent(type="override_set", actor="key_a", pair=USD, after={"n": i}, reason="r")


def execute(store: Store, sql: str) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql))


# -- schema and meta ----------------------------------------------------------------------


def test_pg_url_is_a_fresh_schema(pg_url: str) -> None:
    st = Store(pg_url)
    try:
        assert st.kind == "postgresql" and st.shared
        with st.engine.connect() as conn:
            schema = conn.execute(text("SELECT current_schema()")).scalar()
        assert str(schema).startswith("ratehub_test_")
    finally:
        st.close()


def test_a_second_node_shares_the_epoch_and_the_schema(url: str) -> None:
    a, b = Store(url), Store(url)
    try:
        a.open()
        b.open()
        assert a.epoch and a.epoch == b.epoch
        assert b.seq_hwm() == 0
    finally:
        a.close()
        b.close()


def test_nodes_opening_a_new_database_together_do_not_race(pg_url: str) -> None:
    stores = [Store(pg_url) for _ in range(4)]
    errors: list[BaseException] = []

    def open_one(st: Store) -> None:
        try:
            st.open()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert len({st.epoch for st in stores}) == 1
    finally:
        for st in stores:
            st.close()


def test_a_database_from_a_newer_ratehub_is_refused(store: Store) -> None:
    execute(store, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    again = Store(store.url)
    try:
        with pytest.raises(ConfigError, match="schema version 99 is newer"):
            again.open()
    finally:
        again.close()


# -- overrides, locks, market ---------------------------------------------------------------


def test_overrides_replace_end_and_reload(store: Store) -> None:
    with store.session() as s:
        store.add_override(s, override(1))
        store.add_override(s, override(1, "s1"))
    with store.session() as s:
        store.add_override(s, override(2))  # replaces ov1 at the same key
    active = {o.id: o for o in store.active_overrides()}
    assert set(active) == {"ov2", "ov1s1"}
    assert active["ov2"].buy == Decimal("1.3700") and active["ov2"].created_at == T0 + timedelta(
        seconds=2
    )
    assert store.override_versions() == {("USD/CAD", None): 2, ("USD/CAD", "s1"): 1}
    assert store.get_override("ov1") == (override(1), "replaced")
    with store.session() as s:
        assert store.end_override(s, override(2), "cleared", "key_b", T0)
        assert not store.end_override(s, override(2), "cleared", "key_b", T0)
    assert store.active_override("USD/CAD", None) is None
    assert store.active_override("USD/CAD", "s1") == override(1, "s1")
    assert store.get_override("nope") is None


def test_locks_move_once_and_reload(store: Store) -> None:
    lock = Lock(
        id="lk1",
        pair=USD,
        store_id="s1",
        buy=Decimal("1.37"),
        sell=Decimal("1.33"),
        mid=Decimal("1.35"),
        reference="r",
        author="key_a",
        created_at=T0,
        expires_at=T0 + timedelta(minutes=5),
        idempotency_key="idem-1",
    )
    with store.session() as s:
        store.add_lock(s, lock)
    assert store.load_locks(T0) == [lock]
    ended = lock.to("consumed", T0 + timedelta(minutes=1), "key_b")
    with store.session() as s:
        assert store.end_lock(s, ended)
        assert not store.end_lock(s, ended)
    assert store.get_lock("lk1") == ended
    assert store.load_locks(T0 + timedelta(days=1)) == []


def test_market_quotes_upsert(store: Store) -> None:
    q1 = MarketQuote(USD, Decimal("1.3512"), ("sim",), T0)
    q2 = MarketQuote(USD, Decimal("1.3520"), ("ecb", "boc"), T0 + timedelta(seconds=5))
    with store.session() as s:
        store.save_market(s, [q1])
    with store.session() as s:
        store.save_market(s, [q2])
    assert store.load_market() == [q2]


# -- the event log and its counter ----------------------------------------------------------


def log_event(store: Store, s: Session, store_id: str | None = None) -> int:
    seq = store.next_seq(s)
    store.add_event(s, seq=seq, store_id=store_id, type="t", payload="{}", ts_us=seq)
    return seq


def test_event_seqs_are_allocated_in_the_transaction_and_reused_after_a_rollback(
    store: Store,
) -> None:
    with store.session() as s:
        assert [log_event(store, s), log_event(store, s)] == [1, 2]
    with pytest.raises(RuntimeError), store.session() as s:
        log_event(store, s)
        raise RuntimeError("the write failed")
    with store.session() as s:
        assert log_event(store, s) == 3  # no gap
    assert store.committed_seq() == 3 == store.seq_hwm()
    assert [r.seq for r in store.events_between(2, 3)] == [2, 3]
    assert [r.seq for r in store.events_after(1)] == [2, 3]
    assert store.oldest_event_seq() == 1
    store.prune_events(keep_after_us=3)
    assert store.oldest_event_seq() == 3


def test_a_database_from_before_the_counter_continues_after_its_last_event(url: str) -> None:
    st = Store(url)
    st.open()
    with st.session() as s:
        for _ in range(4):
            log_event(st, s)
    execute(st, f"DELETE FROM meta WHERE key = '{SEQ_KEY}'")
    st.close()
    again = Store(url)
    again.open()
    try:
        with again.session() as s:
            assert log_event(again, s) == 5
    finally:
        again.close()


async def test_two_nodes_writing_at_once_get_distinct_seqs_in_commit_order(pg_url: str) -> None:
    """Two writers (two nodes' writer threads) on one PostgreSQL: every seq once, no gap,
    and each transaction's seqs commit before the next one's (the counter row lock)."""
    nodes = [Store(pg_url) for _ in range(2)]
    for st in nodes:
        st.open()
    writers = [Writer(st) for st in nodes]
    for w in writers:
        w.start()

    def op(st: Store) -> Any:
        def run(s: Session) -> int:
            seq = log_event(st, s)
            repo.append(s, audit_event(seq), T0)
            return seq

        return run

    try:
        results = await asyncio.gather(*(writers[i % 2].write(op(nodes[i % 2])) for i in range(60)))
    finally:
        for w in writers:
            w.stop()
    try:
        assert sorted(results) == list(range(1, 61))
        rows = nodes[0].events_after(0)
        assert [r.seq for r in rows] == list(range(1, 61))
        result = repo.verify_chain(nodes[1].engine)
        assert result.ok and result.checked == 60, result.summary()
    finally:
        for st in nodes:
            st.close()


def test_a_write_waits_for_the_other_nodes_transaction(pg_url: str) -> None:
    """The counter lock serialises writers: B's seq is allocated after A commits."""
    a, b = Store(pg_url), Store(pg_url)
    a.open()
    b.open()
    order: list[str] = []
    try:
        with Session(a.engine) as sa:
            a.begin(sa)
            seq_a = log_event(a, sa)

            def node_b() -> None:
                with Session(b.engine) as sb:
                    b.begin(sb)  # blocks until A commits
                    order.append(f"b:{log_event(b, sb)}")
                    sb.commit()

            t = threading.Thread(target=node_b)
            t.start()
            t.join(0.3)
            assert t.is_alive(), "B allocated a seq while A's transaction was open"
            order.append(f"a:{seq_a}")
            sa.commit()
            t.join(timeout(10))
        assert order == ["a:1", "b:2"]
    finally:
        a.close()
        b.close()


# -- audit ----------------------------------------------------------------------------------


def fill_audit(store: Store, n: int, step: timedelta = timedelta(hours=1)) -> None:
    with store.session() as s:
        for i in range(n):
            repo.append(s, audit_event(i), T0 + i * step)


def test_audit_chain_appends_verifies_and_finds_tampering(store: Store) -> None:
    fill_audit(store, 12)
    result = repo.verify_chain(store.engine, batch=5)
    assert result.ok and result.checked == 12, result.summary()
    with store.session() as s:
        assert repo.load_head(s) == result.end
        assert [r.seq for r in repo.query(s, repo.AuditQuery(limit=3))] == [12, 11, 10]
    execute(store, "UPDATE audit SET actor = 'key_z' WHERE seq = 7")
    bad = repo.verify_chain(store.engine, batch=5)
    assert bad.problem is not None and bad.problem.seq == 7 and bad.problem.kind == "changed"


def test_audit_appends_from_two_nodes_do_not_fork_the_chain(pg_url: str) -> None:
    a, b = Store(pg_url), Store(pg_url)
    a.open()
    b.open()
    try:

        def append_many(st: Store, base: int) -> None:
            for i in range(15):
                with st.session() as s:
                    repo.append(s, audit_event(base + i), T0)

        threads = [
            threading.Thread(target=append_many, args=(a, 0)),
            threading.Thread(target=append_many, args=(b, 100)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result = repo.verify_chain(a.engine)
        assert result.ok and result.checked == 30, result.summary()
    finally:
        a.close()
        b.close()


def test_verify_reads_one_snapshot_while_another_node_appends(pg_url: str) -> None:
    from sqlalchemy import event

    st, other = Store(pg_url), Store(pg_url)
    st.open()
    other.open()
    fill_audit(st, 10)
    appended: list[int] = []

    def append_meanwhile(_conn: Any, _cur: Any, statement: str, *_: Any) -> None:
        if not appended and "FROM audit" in statement:
            with other.session() as s:
                appended.append(repo.append(s, audit_event(10), T0).seq)

    event.listen(st.engine, "after_cursor_execute", append_meanwhile)
    try:
        result = repo.verify_chain(st.engine, batch=3)
    finally:
        event.remove(st.engine, "after_cursor_execute", append_meanwhile)
    try:
        assert appended == [11]
        assert result.ok and result.checked == 10, result.summary()
        assert repo.verify_chain(st.engine).checked == 11
    finally:
        st.close()
        other.close()


def test_audit_pruning_keeps_the_chain_verifiable_and_refuses_a_tampered_prefix(
    store: Store,
) -> None:
    fill_audit(store, 20, step=timedelta(days=200))
    cutoff = T0 + timedelta(days=200 * 10)
    with store.session() as s:
        assert repo.prune(s, cutoff, max_rows=4) == 4
    assert repo.verify_chain(store.engine).ok
    execute(store, "UPDATE audit SET reason = 'x' WHERE seq = 6")
    with pytest.raises(Conflict, match="do not verify"), store.session() as s:
        repo.prune(s, cutoff)
    with store.session() as s:
        assert repo.load_checkpoint(s).seq == 4


def test_audit_verify_in_another_process(pg_url: str) -> None:
    st = Store(pg_url)
    st.open()
    try:
        fill_audit(st, 5)
        execute(st, "UPDATE audit SET actor = 'key_z' WHERE seq = 2")
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            result = pool.submit(repo.verify_url, st.url).result(timeout=timeout(60))
        assert result.problem is not None and result.problem.seq == 2
    finally:
        st.close()


def test_the_repository_names_the_audit_meta_keys_as_the_audit_store_does() -> None:
    from ratehubd.store import repository

    assert repository._AUDIT_HEAD == repo.HEAD_KEY
    assert repository._AUDIT_CHECKPOINT == repo.CHECKPOINT_KEY

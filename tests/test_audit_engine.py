"""The audit trail's pure core: canonical JSON, the hash chain, and verify."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratehubd.engine import audit
from ratehubd.engine.audit import (
    GENESIS,
    GENESIS_HASH,
    AuditChain,
    AuditEvent,
    AuditRecord,
    ChainHead,
    canonical,
    canonical_row,
    chain,
    verify,
)
from ratehubd.engine.model import Override
from ratehubd.engine.pairs import Pair

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def event(i: int = 0, **kw: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "type": "override_set",
        "actor": "key_ops",
        "store_id": f"store-{i % 3}",
        "pair": "USD/CAD",
        "before": None,
        "after": {"buyRate": Decimal("1.37"), "sellRate": Decimal("1.33"), "n": i},
        "reason": "promo",
        "source": "manual",
    }
    fields.update(kw)
    return AuditEvent(**fields)


def build(n: int) -> list[AuditRecord]:
    c = AuditChain()
    return [c.append(event(i), T0 + timedelta(seconds=i)) for i in range(n)]


# -- building ---------------------------------------------------------------------------


def test_first_record_links_to_genesis_and_each_next_to_the_one_before() -> None:
    recs = build(3)
    assert [r.seq for r in recs] == [1, 2, 3]
    assert recs[0].prev_hash == GENESIS_HASH == "0" * 64
    assert recs[1].prev_hash == recs[0].hash
    assert recs[2].prev_hash == recs[1].hash
    assert recs[2].ts_us == 1_767_614_402_000_000


def test_hash_is_sha256_of_the_canonical_json_of_every_other_field() -> None:
    rec = build(1)[0]
    fields = rec._asdict()
    body = canonical(fields)
    assert rec.hash == hashlib.sha256(body).hexdigest()
    assert body.startswith(b'{"actor":"key_ops","after":"{\\"buyRate\\":\\"1.37\\"')
    assert b'"hash"' not in body and b" " not in body
    assert list(json.loads(body)) == sorted(fields.keys() - {"hash"})


def test_known_record_has_a_fixed_hash() -> None:
    """The canonical form is a forever contract: records written years ago must verify."""
    rec = chain(
        GENESIS,
        AuditEvent(
            type="key_revoked",
            actor="system",
            before={"id": "k1", "role": "store"},
            reason="Bürokratie",
        ),
        datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert (
        canonical(rec._asdict())
        == (
            '{"actor":"system","after":null,"before":"{\\"id\\":\\"k1\\",\\"role\\":\\"store\\"}",'
            '"pair":null,"prev_hash":"' + "0" * 64 + '","reason":"Bürokratie","seq":1,'
            '"source":null,"store_id":null,"ts_us":1767225600000000,"type":"key_revoked"}'
        ).encode()
    )
    # printf '%s' '<the JSON above>' | sha256sum
    assert rec.hash == "5edba2e3f760e667991b3db039a91bb2aa3697e53ad2c89ed1dacc7a4fc6bee3"


def test_before_and_after_are_canonical_json_text_with_exact_decimals() -> None:
    ov = Override(
        id="ov1",
        pair=Pair("USD", "CAD"),
        store_id="s1",
        buy=Decimal("1.3700"),
        sell=Decimal("1.33"),
        spread=None,
        valid_until=datetime(2026, 1, 5, 13, 0, tzinfo=UTC),
        reason="promo",
        author="key_ops",
        source="manual",
        version=2,
        created_at=T0,
    )
    rec = chain(GENESIS, event(after=audit.override_snapshot(ov), pair=ov.pair), T0)
    assert rec.pair == "USD/CAD"
    assert rec.after is not None
    assert '"buyRate":"1.3700"' in rec.after
    assert '"validUntil":"2026-01-05T13:00:00+00:00"' in rec.after
    assert rec.to_dict()["after"]["sellRate"] == "1.33"
    assert rec.to_dict(parse_json=False)["after"] == rec.after


def test_unicode_is_kept_as_utf8_not_escaped() -> None:
    rec = chain(GENESIS, event(reason="taux spécial ☺"), T0)
    assert "taux spécial ☺".encode() in canonical(rec._asdict())


@pytest.mark.parametrize(
    ("value", "error", "words"),
    [
        (float("nan"), ValueError, "Out of range"),
        (datetime(2026, 1, 1), ValueError, "timezone-aware"),
        (object(), TypeError, "cannot put a object in an audit record"),
    ],
)
def test_values_that_have_no_canonical_form_are_refused(
    value: Any, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        chain(GENESIS, event(after={"x": value}), T0)


def test_event_needs_a_known_type_and_an_actor() -> None:
    with pytest.raises(ValueError, match="unknown audit record type 'override_sett'; use one"):
        event(type="override_sett")
    with pytest.raises(ValueError, match='needs an actor: a key id, or "system"'):
        event(actor="")


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        chain(GENESIS, event(), datetime(2026, 1, 1))


def test_record_time_round_trips_to_the_microsecond() -> None:
    now = T0 + timedelta(microseconds=123_457)
    assert chain(GENESIS, event(), now).time == now


text_or_none = st.none() | st.text(alphabet=st.characters(exclude_categories=["Cs"]))


@given(
    seq=st.integers(min_value=1, max_value=2**62),
    ts_us=st.integers(min_value=-(2**62), max_value=2**62),
    strings=st.lists(text_or_none, min_size=6, max_size=6),
    required=st.lists(st.text(alphabet=st.characters(exclude_categories=["Cs"])), min_size=3),
)
def test_fast_canonical_row_equals_the_reference_encoder(
    seq: int, ts_us: int, strings: list[str | None], required: list[str]
) -> None:
    store_id, pair, before, after, reason, source = strings
    type_, actor, prev_hash = required[:3]
    row = (seq, ts_us, type_, actor, store_id, pair, before, after, reason, source, prev_hash)
    fields = dict(zip(audit.FIELDS, row, strict=False))
    assert canonical_row(row).encode() == canonical(fields)


def test_ratectl_can_choose_any_retention_in_years() -> None:
    assert audit.retention_cutoff(T0, 5) == datetime(2021, 1, 5, 12, 0, tzinfo=UTC)
    leap = datetime(2024, 2, 29, 9, 30, tzinfo=UTC)
    assert audit.retention_cutoff(leap, 5) == datetime(2019, 2, 28, 9, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="at least 1 year"):
        audit.retention_cutoff(T0, 0)


def test_chain_head_parses_only_seq_colon_hash() -> None:
    head = ChainHead(7, "a" * 64)
    assert ChainHead.parse(str(head)) == head
    for bad in ("7", "x:" + "a" * 64, "7:abc", ""):
        with pytest.raises(ValueError, match="not a chain head"):
            ChainHead.parse(bad)


# -- verifying --------------------------------------------------------------------------


def test_an_intact_chain_verifies() -> None:
    recs = build(50)
    result = verify(recs, head=ChainHead(50, recs[-1].hash))
    assert result.ok and result.problem is None
    assert result.checked == 50
    assert result.end == ChainHead(50, recs[-1].hash)
    assert result.summary() == f"audit chain OK: 50 records, 1..50, head {recs[-1].hash}"


def test_an_empty_chain_verifies() -> None:
    result = verify([])
    assert result.ok and result.checked == 0 and result.end == GENESIS


def test_plain_tuples_verify_like_records() -> None:
    assert verify([tuple(r) for r in build(5)]).ok


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ts_us", 1),
        ("type", "override_cleared"),
        ("actor", "key_mallory"),
        ("store_id", None),
        ("pair", "EUR/CAD"),
        ("before", "{}"),
        ("after", '{"buyRate": "1.37"}'),
        ("reason", "promo "),
        ("source", "api"),
        ("hash", "f" * 64),
    ],
)
def test_a_changed_field_names_its_record(name: str, value: Any) -> None:
    recs = build(10)
    recs[6] = recs[6]._replace(**{name: value})
    result = verify(recs)
    assert not result.ok and result.problem is not None
    assert (result.problem.seq, result.problem.kind) == (7, audit.CHANGED)
    assert result.problem.message.startswith("record 7 was changed: its fields hash to")
    assert result.checked == 6 and result.end.seq == 6
    assert result.summary().startswith("audit chain BROKEN at record 7: record 7 was changed")


@pytest.mark.parametrize(
    ("gone", "message"), [([0], "record 1 missing"), ([3, 4], "records 4..5 missing")]
)
def test_a_deleted_record_is_named(gone: list[int], message: str) -> None:
    recs = [r for i, r in enumerate(build(10)) if i not in gone]
    problem = verify(recs).problem
    assert problem is not None and problem.kind == audit.MISSING
    assert problem.seq == gone[0] + 1
    assert message in problem.message


def test_records_cut_off_the_end_are_found_through_the_head() -> None:
    recs = build(10)
    problem = verify(recs[:8], head=ChainHead(10, recs[-1].hash)).problem
    assert problem is not None and (problem.seq, problem.kind) == (9, audit.MISSING)
    assert "records 9..10 missing from the end" in problem.message


def test_records_beyond_the_head_or_a_different_head_fail() -> None:
    recs = build(10)
    beyond = verify(recs, head=ChainHead(8, recs[7].hash)).problem
    assert beyond is not None and (beyond.seq, beyond.kind) == (9, audit.HEAD_MISMATCH)
    other = verify(recs, head=ChainHead(10, "e" * 64)).problem
    assert other is not None and (other.seq, other.kind) == (10, audit.HEAD_MISMATCH)


def test_reordered_records_fail() -> None:
    recs = build(10)
    recs[4], recs[5] = recs[5], recs[4]
    problem = verify(recs).problem
    assert problem is not None and (problem.seq, problem.kind) == (5, audit.MISSING)
    assert "record 5 missing (deleted, or out of order)" in problem.message
    recs = build(10)
    dup = verify(recs[:5] + [recs[3]]).problem
    assert dup is not None and (dup.seq, dup.kind) == (4, audit.OUT_OF_ORDER)


def test_altered_prev_hash_fails_and_rehashing_it_breaks_the_link() -> None:
    recs = build(10)
    altered = recs[4]._replace(prev_hash="1" * 64)
    problem = verify([*recs[:4], altered, *recs[5:]]).problem
    assert problem is not None and (problem.seq, problem.kind) == (5, audit.CHANGED)

    rehashed = altered._replace(hash=hashlib.sha256(canonical(altered._asdict())).hexdigest())
    problem = verify([*recs[:4], rehashed, *recs[5:]]).problem
    assert problem is not None and (problem.seq, problem.kind) == (5, audit.BROKEN_LINK)
    assert "record 5 does not link to record 4" in problem.message


def test_a_changed_and_rehashed_record_is_caught_by_the_next_link() -> None:
    recs = build(10)
    forged = recs[4]._replace(reason="forged")
    forged = forged._replace(hash=hashlib.sha256(canonical(forged._asdict())).hexdigest())
    problem = verify([*recs[:4], forged, *recs[5:]]).problem
    assert problem is not None and (problem.seq, problem.kind) == (6, audit.BROKEN_LINK)


@pytest.mark.parametrize(
    ("index", "value", "words"),
    [
        (1, "1767614400000000", "ts_us should be an integer"),
        (0, True, "seq should be an integer"),
        (3, None, "actor should be text, it is None"),
        (7, 5, "after should be text or null, it is 5"),
    ],
)
def test_a_malformed_record_is_named(index: int, value: Any, words: str) -> None:
    recs: list[tuple[Any, ...]] = [tuple(r) for r in build(5)]
    row = list(recs[2])
    row[index] = value
    recs[2] = tuple(row)
    problem = verify(recs).problem
    assert problem is not None and (problem.seq, problem.kind) == (3, audit.MALFORMED)
    assert words in problem.message


def test_a_record_with_missing_fields_is_malformed() -> None:
    recs: list[tuple[Any, ...]] = [tuple(r) for r in build(3)]
    recs[1] = recs[1][:5]
    problem = verify(recs).problem
    assert problem is not None and problem.kind == audit.MALFORMED
    assert "it has 5 fields, a record has 12" in problem.message


def test_verify_starts_from_a_checkpoint() -> None:
    recs = build(10)
    start = ChainHead(4, recs[3].hash)
    result = verify(recs[4:], start=start)
    assert result.ok and result.checked == 6 and result.start == start
    assert not verify(recs[4:], start=ChainHead(4, "0" * 64)).ok
    assert not verify(recs[4:]).ok


def test_verify_streams_and_stops_at_the_first_bad_record() -> None:
    recs = build(20)
    recs[9] = recs[9]._replace(actor="x")
    pulled: list[int] = []

    def stream() -> Iterator[AuditRecord]:
        for r in recs:
            pulled.append(r.seq)
            yield r

    problem = verify(stream()).problem
    assert problem is not None and problem.seq == 10
    assert pulled == list(range(1, 11))

"""The audit trail's pure core: records, their canonical JSON, the hash chain, verify.

Theory of operation
-------------------
An :class:`AuditEvent` says what happened (type, actor, store, pair, before, after,
reason, source). :func:`chain` turns it into an :class:`AuditRecord` by giving it the
next sequence number, the time, the previous record's hash (``prev_hash``) and its own
``hash``: the SHA-256 (hex) of the record's *canonical JSON*, which is every field except
``hash`` as one JSON object with sorted keys, no whitespace, ``ensure_ascii=False``,
encoded as UTF-8. Because ``prev_hash`` is hashed too, each record vouches for the whole
chain before it. The first record's ``prev_hash`` is 64 zeros.

``before`` and ``after`` are stored as canonical JSON *text* (Decimals as strings) and
hashed as that text, exactly as the row holds it: the hashed object is the stored row,
so a verifier needs no re-parsing, and any change to a stored byte (even a reformatting
that would parse to the same value) breaks the hash.

:func:`verify` streams records in ``seq`` order (constant memory) and stops at the first
bad one: a changed field (hash mismatch), a deleted record (a gap in ``seq``), a
record out of order, a broken link (``prev_hash`` is not the previous record's hash), a
malformed field, or a chain whose last record is not the recorded head (records cut off
the end). It recomputes every hash from the fields with a fast hand-built encoder
(:func:`canonical_row`) that is tested to produce exactly the bytes of :func:`canonical`;
records are *built* with :func:`canonical` (``json.dumps``), so the two implementations
check each other.

A hash chain without a secret proves that records were not changed *unless the whole
chain after the change was recomputed*; keep the head hash that ``verify`` reports
somewhere else (a ticket, a log shipper) to close that gap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from ratehubd import wire
from ratehubd.engine.model import Override
from ratehubd.engine.pairs import Pair

GENESIS_HASH = "0" * 64

AUDIT_TYPES = frozenset(wire.AUDIT_TYPES)

SYSTEM_ACTOR = "system"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)

# What verify reports as wrong.
CHANGED = "changed"
MISSING = "missing"
OUT_OF_ORDER = "out_of_order"
BROKEN_LINK = "broken_link"
MALFORMED = "malformed"
HEAD_MISMATCH = "head_mismatch"


class ChainHead(NamedTuple):
    """The last record of a chain (or a checkpoint): its seq and hash."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> ChainHead:
        seq, sep, digest = text.partition(":")
        if not sep or not seq.isdigit() or len(digest) != 64:
            raise ValueError(f"not a chain head 'seq:sha256hex': {text!r}")
        return cls(int(seq), digest)


GENESIS = ChainHead(0, GENESIS_HASH)


class AuditRecord(NamedTuple):
    """One stored audit record. Field order is the table's column order.

    A plain tuple in that order (as a database cursor returns) is accepted wherever
    records are read, which keeps :func:`verify` fast.
    """

    seq: int
    ts_us: int
    type: str
    actor: str
    store_id: str | None
    pair: str | None
    before: str | None
    after: str | None
    reason: str | None
    source: str | None
    prev_hash: str
    hash: str

    @property
    def time(self) -> datetime:
        return _EPOCH + self.ts_us * _US

    def to_dict(self, *, parse_json: bool = True) -> dict[str, Any]:
        """The record as a dict; ``parse_json=False`` keeps before/after as the hashed text."""
        out = self._asdict()
        if parse_json:
            for name in ("before", "after"):
                if out[name] is not None:
                    out[name] = json.loads(out[name])
        return out


FIELDS: tuple[str, ...] = AuditRecord._fields


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEvent:
    """What happened, before it becomes a record. ``actor`` is a key id or "system",
    never a secret. ``before``/``after`` are JSON-able mappings; pass money as Decimal."""

    type: str
    actor: str
    store_id: str | None = None
    pair: str | Pair | None = None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None
    reason: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if self.type not in AUDIT_TYPES:
            known = ", ".join(sorted(AUDIT_TYPES))
            raise ValueError(f"unknown audit record type {self.type!r}; use one of {known}")
        if not self.actor:
            raise ValueError(f'an audit record needs an actor: a key id, or "{SYSTEM_ACTOR}"')


# -- canonical JSON ---------------------------------------------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"audit times must be timezone-aware, got naive {value!r}")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Pair):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(
        f"cannot put a {type(value).__name__} in an audit record; "
        "convert it to str, int, Decimal, a list or a dict"
    )


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 as is, Decimals as strings, no NaN."""
    return json.dumps(
        value,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_default,
    )


def canonical(record_fields: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash covers: every field but ``hash``, as canonical JSON."""
    return canonical_json({k: v for k, v in record_fields.items() if k != "hash"}).encode()


def _s(value: Any) -> str:
    return "null" if value is None else encode_basestring(value)


def canonical_row(row: Sequence[Any]) -> str:
    """Fast :func:`canonical` for a row in column order (``FIELDS``), as text.

    Raises TypeError when a field has the wrong type (a tampered row can hold
    anything: SQLite columns are dynamically typed).
    """
    seq, ts_us, type_, actor, store_id, pair, before, after, reason, source, prev_hash = row[:11]
    if type(seq) is not int or type(ts_us) is not int:
        raise TypeError("seq and ts_us must be integers")
    return (
        f'{{"actor":{encode_basestring(actor)},"after":{_s(after)},"before":{_s(before)},'
        f'"pair":{_s(pair)},"prev_hash":{encode_basestring(prev_hash)},'
        f'"reason":{_s(reason)},"seq":{seq},"source":{_s(source)},'
        f'"store_id":{_s(store_id)},"ts_us":{ts_us},"type":{encode_basestring(type_)}}}'
    )


# -- building ---------------------------------------------------------------------------


def to_us(now: datetime) -> int:
    """Exact epoch microseconds of an aware datetime."""
    if now.tzinfo is None:
        raise ValueError(f"audit times must be timezone-aware, got naive {now!r}")
    return (now - _EPOCH) // _US


def chain(prev: ChainHead, event: AuditEvent, now: datetime) -> AuditRecord:
    """The record for ``event`` that follows ``prev``."""
    fields: dict[str, Any] = {
        "seq": prev.seq + 1,
        "ts_us": to_us(now),
        "type": event.type,
        "actor": event.actor,
        "store_id": event.store_id,
        "pair": None if event.pair is None else str(event.pair),
        "before": None if event.before is None else canonical_json(event.before),
        "after": None if event.after is None else canonical_json(event.after),
        "reason": event.reason,
        "source": event.source,
        "prev_hash": prev.hash,
    }
    digest = hashlib.sha256(canonical(fields)).hexdigest()
    return AuditRecord(**fields, hash=digest)


class AuditChain:
    """Holds the head of a chain and builds the records that follow it."""

    def __init__(self, head: ChainHead = GENESIS) -> None:
        self.head = head

    def append(self, event: AuditEvent, now: datetime) -> AuditRecord:
        record = chain(self.head, event, now)
        self.head = ChainHead(record.seq, record.hash)
        return record


def override_snapshot(ov: Override) -> dict[str, Any]:
    """An override as audit ``before``/``after`` data (Decimals kept exact)."""
    return {
        "id": ov.id,
        "pair": str(ov.pair),
        "storeId": ov.store_id,
        "buyRate": ov.buy,
        "sellRate": ov.sell,
        "spread": ov.spread,
        "validUntil": ov.valid_until,
        "reason": ov.reason,
        "author": ov.author,
        "source": ov.source,
        "version": ov.version,
    }


def retention_cutoff(now: datetime, years: int) -> datetime:
    """``now`` minus ``years`` calendar years (29 February becomes 28 February)."""
    if years < 1:
        raise ValueError(f"audit retention must be at least 1 year, got {years}")
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


# -- verifying --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    """The first bad record: its seq, what is wrong (a kind constant), and a sentence."""

    seq: int
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    checked: int
    start: ChainHead
    end: ChainHead
    problem: VerifyProblem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ok, checked, start and end (seq, hash), problem (seq, kind, message)."""
        problem = self.problem
        return {
            "ok": self.ok,
            "checked": self.checked,
            "start": self.start._asdict(),
            "end": self.end._asdict(),
            "problem": None
            if problem is None
            else {"seq": problem.seq, "kind": problem.kind, "message": problem.message},
        }

    def summary(self) -> str:
        if self.problem is not None:
            return f"audit chain BROKEN at record {self.problem.seq}: {self.problem.message}"
        return (
            f"audit chain OK: {self.checked} records, {self.start.seq + 1}..{self.end.seq}, "
            f"head {self.end.hash}"
        )


def verify(
    records: Iterable[Sequence[Any]],
    *,
    start: ChainHead = GENESIS,
    head: ChainHead | None = None,
) -> VerifyResult:
    """Check records (in seq order, following ``start``) and stop at the first bad one.

    ``head`` is the recorded head of the chain, if known: a chain that ends before it
    lost records from its end.
    """
    prev_seq, prev_hash = start
    checked = 0
    sha256 = hashlib.sha256
    for row in records:
        try:
            digest = sha256(canonical_row(row).encode()).hexdigest()
            seq, link, stored = row[0], row[10], row[11]
        except (TypeError, ValueError, IndexError) as exc:
            problem = _malformed(row, prev_seq, exc)
            return VerifyResult(checked, start, ChainHead(prev_seq, prev_hash), problem)
        if seq != prev_seq + 1 or digest != stored or link != prev_hash:
            problem = _diagnose(seq, digest, stored, link, prev_seq, prev_hash)
            return VerifyResult(checked, start, ChainHead(prev_seq, prev_hash), problem)
        prev_seq, prev_hash = seq, stored
        checked += 1
    end = ChainHead(prev_seq, prev_hash)
    return VerifyResult(checked, start, end, None if head is None else _check_head(end, head))


def _diagnose(
    seq: int, digest: str, stored: str, link: str, prev_seq: int, prev_hash: str
) -> VerifyProblem:
    if seq <= prev_seq:
        return VerifyProblem(
            seq,
            OUT_OF_ORDER,
            f"record {seq} comes after record {prev_seq}: records are out of order or duplicated",
        )
    if seq > prev_seq + 1:
        return VerifyProblem(
            prev_seq + 1,
            MISSING,
            f"{_span(prev_seq + 1, seq - 1)} missing (deleted, or out of order): record {seq} "
            f"follows record {prev_seq}",
        )
    if digest != stored:
        return VerifyProblem(
            seq,
            CHANGED,
            f"record {seq} was changed: its fields hash to {digest}, the record says {stored}",
        )
    return VerifyProblem(
        seq,
        BROKEN_LINK,
        f"record {seq} does not link to record {prev_seq}: its prev_hash is {link}, record "
        f"{prev_seq} hashes to {prev_hash} (one of them was altered and re-hashed, "
        "or a record was replaced)",
    )


_INT_FIELDS = frozenset({"seq", "ts_us"})
_REQUIRED = frozenset({"type", "actor", "prev_hash", "hash"})


def _span(first: int, last: int) -> str:
    return f"record {first}" if first == last else f"records {first}..{last}"


def _malformed(row: Sequence[Any], prev_seq: int, exc: Exception) -> VerifyProblem:
    seq = row[0] if len(row) > 0 and type(row[0]) is int else prev_seq + 1
    if len(row) != len(FIELDS):
        what = f"it has {len(row)} fields, a record has {len(FIELDS)}"
    else:
        what = next((w for w in map(_field_problem, FIELDS, row) if w), str(exc))
    return VerifyProblem(seq, MALFORMED, f"record {seq} is malformed: {what}")


def _field_problem(name: str, value: Any) -> str | None:
    if name in _INT_FIELDS:
        ok = type(value) is int
        want = "an integer"
    else:
        ok = isinstance(value, str) or (value is None and name not in _REQUIRED)
        want = "text" if name in _REQUIRED else "text or null"
    return None if ok else f"{name} should be {want}, it is {value!r}"


def _check_head(end: ChainHead, head: ChainHead) -> VerifyProblem | None:
    if end == head:
        return None
    if end.seq < head.seq:
        return VerifyProblem(
            end.seq + 1,
            MISSING,
            f"{_span(end.seq + 1, head.seq)} missing from the end (deleted?): the chain ends "
            f"at record {end.seq} but its recorded head is record {head.seq}",
        )
    if end.seq > head.seq:
        return VerifyProblem(
            head.seq + 1,
            HEAD_MISMATCH,
            f"{_span(head.seq + 1, end.seq)} after the recorded head (record {head.seq}): "
            "added outside ratehub, or the head was altered",
        )
    return VerifyProblem(
        end.seq,
        HEAD_MISMATCH,
        f"record {end.seq} hashes to {end.hash} but the recorded head says {head.hash}",
    )

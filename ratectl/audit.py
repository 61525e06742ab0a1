"""The audit trail for ratectl: ``/api/audit`` and ``/api/audit/verify`` as client calls,
the query from the flags, and the record table, CSV and verify summary (pure, time
passed in).

Used by ``ratectl audit`` (:mod:`ratectl.cli_audit`); imported lazily (it pulls in httpx).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table
from rich.text import Text

from ratectl.client import Client
from ratectl.errors import CtlError, UsageError
from ratectl.render import table
from ratehubd.wire import AUDIT_TYPES

TYPES = AUDIT_TYPES
CSV_FIELDS = (
    "seq", "time", "type", "actor", "store_id", "pair", "reason", "source",
    "before", "after", "prev_hash", "hash",
)  # fmt: skip
_AGO = re.compile(r"(\d+(?:\.\d+)?)([dhms])")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


class AuditClient(Client):
    """The daemon's audit endpoints (admin keys only)."""

    def __enter__(self) -> AuditClient:
        return self

    def records(self, query: dict[str, str]) -> list[Any]:
        data = self._call("GET", "/api/audit", params=query)
        if not isinstance(data, list):
            raise CtlError("the daemon sent no list of audit records; is ratectl older than it?")
        return data

    def verify(self) -> dict[str, Any]:
        data = self._call("GET", "/api/audit/verify")
        if not isinstance(data, dict) or "ok" not in data:
            raise CtlError("the daemon sent no verify result; is ratectl older than it?")
        return data


# -- the query -------------------------------------------------------------------------------


def when(text: str, flag: str, now: datetime) -> str:
    """``2026-01-05T12:00:00Z`` (no zone: UTC), or an age: ``90s``, ``30m``, ``1h30m``, ``7d``
    ago. Returns ISO 8601 UTC for the daemon."""
    raw = text.strip().lower().replace(" ", "")
    parts = _AGO.findall(raw)
    if raw and "".join(n + u for n, u in parts) == raw:
        dt = now - timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))
    else:
        iso = text.strip()
        try:
            dt = datetime.fromisoformat(iso[:-1] + "+00:00" if iso[-1:] in "Zz" else iso)
        except ValueError:
            raise UsageError(
                f"{flag} {text!r} is not a time; write it like 2026-01-05T12:00:00Z, or an age "
                "like 30m, 24h or 7d (that long ago)"
            ) from None
        dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def query(
    *,
    since: str | None,
    until: str | None,
    store: str | None,
    pair: str | None,
    actor: str | None,
    types: Sequence[str],
    limit: int,
    now: datetime,
) -> dict[str, str]:
    q = {"limit": str(limit)}
    if since:
        q["since"] = when(since, "--since", now)
    if until:
        q["until"] = when(until, "--until", now)
    for name, value in (("storeId", store), ("pair", pair), ("actor", actor)):
        if value:
            q[name] = value
    if types:
        q["type"] = ",".join(types)
    return q


# -- rendering -------------------------------------------------------------------------------


def iso_time(ts_us: Any) -> str:
    if not isinstance(ts_us, int):
        return "-"
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts_us)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def change(before: Any, after: Any, width: int = 60) -> str:
    """What changed, ``buyRate 1.37->1.38, version 1->2``; new or gone records as such."""
    if not isinstance(before, Mapping) and not isinstance(after, Mapping):
        return "-"
    if not isinstance(before, Mapping):
        text = "new: " + _compact(after)
    elif not isinstance(after, Mapping):
        text = "gone: " + _compact(before)
    else:
        keys = [k for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
        text = ", ".join(f"{k} {_v(before.get(k))}->{_v(after.get(k))}" for k in keys) or "-"
    return text if len(text) <= width else text[: width - 3] + "..."


def _v(value: Any) -> str:
    return "-" if value is None else value if isinstance(value, str) else json.dumps(value)


def _compact(data: Any) -> str:
    items = data.items() if isinstance(data, Mapping) else []
    return " ".join(f"{k}={_v(v)}" for k, v in items if v not in (None, [], ""))


def record_table(records: Sequence[Mapping[str, Any]], *, wide: bool = False) -> Table:
    headers = ["SEQ", "TIME", "TYPE", "ACTOR", "STORE", "PAIR", "REASON"]
    if wide:
        headers += ["SOURCE", "CHANGE", "HASH"]
    t = table(*headers)
    for r in records:
        row: list[str | Text] = [
            str(r.get("seq")),
            iso_time(r.get("ts_us")),
            Text(str(r.get("type")), style=_style(str(r.get("type")))),
            str(r.get("actor")),
            str(r.get("store_id") or "-"),
            str(r.get("pair") or "-"),
            str(r.get("reason") or "-"),
        ]
        if wide:
            hash_ = str(r.get("hash") or "")
            row += [
                str(r.get("source") or "-"),
                change(r.get("before"), r.get("after")),
                hash_[:12],
            ]
        t.add_row(*row)
    return t


def _style(type_: str) -> str:
    if type_.startswith(("breach", "breaker")):
        return "red"
    return "yellow" if type_.startswith(("key", "config")) else ""


def to_csv(records: Sequence[Mapping[str, Any]]) -> str:
    """One row per record; before/after as compact JSON; times ISO 8601 UTC."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in records:
        row = {**r, "time": iso_time(r.get("ts_us"))}
        for name in ("before", "after"):
            value = r.get(name)
            row[name] = "" if value is None else json.dumps(value, separators=(",", ":"))
        writer.writerow(["" if row.get(f) is None else row.get(f) for f in CSV_FIELDS])
    return out.getvalue()


def verify_line(result: Mapping[str, Any]) -> str:
    """``audit chain OK: 5 records, 1..5, head 9f86d0...`` or what is wrong, and where."""
    problem = result.get("problem")
    if isinstance(problem, Mapping):
        return f"audit chain BROKEN at record {problem.get('seq')}: {problem.get('message')}"
    if not result.get("checked"):
        return "audit chain OK: no records yet"
    start, end = result.get("start") or {}, result.get("end") or {}
    first = int(start.get("seq", 0)) + 1
    return (
        f"audit chain OK: {result.get('checked')} records, {first}..{end.get('seq')}, "
        f"head {end.get('hash')}"
    )

"""ratectl validate's pure parts: the invariants (checked against the real engine's own
rates), check selection, results and exit codes, the frame inbox, and the report as
text and JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from rich.console import Console

from ratectl.errors import UsageError
from ratectl.validate import registry, report
from ratectl.validate.hub import Inbox, unwrap
from ratectl.validate.invariants import SpreadBounds, rate_problems
from ratectl.validate.model import AUTH, UNREACHABLE, CheckResult, Report, Result
from ratehubd import wire
from ratehubd.config import Config
from ratehubd.engine.engine import RateEngine
from ratehubd.engine.overrides import OverrideRequest
from ratehubd.engine.pairs import parse_pair

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
USD_CAD = parse_pair("USD/CAD")


def engine_rates(store: str | None = None, override: OverrideRequest | None = None) -> list[Any]:
    """Every pair's rate from a real engine, through the wire and back (exact decimals)."""
    cfg = Config()
    engine = RateEngine(cfg.pair_policies(), cfg.override_policy(), cfg.threshold_policies())
    for name, pc in cfg.pairs.items():
        engine.on_market_tick(engine.pair(name), pc.start * Decimal("1.00037"), "simulated", NOW)
    if override is not None:
        engine.commit_override(
            engine.plan_override(override, override_id="o1", author="t", now=NOW)
        )
    text = wire.encode({"r": [wire.rate_dict(r) for r in engine.rates(store, NOW)]})
    rates: list[Any] = json.loads(text, parse_float=Decimal)["r"]
    return rates


BOUNDS = SpreadBounds(Decimal("0.001"), Decimal("0.10"))


def test_the_engines_own_rates_keep_every_invariant() -> None:
    rates = engine_rates()
    assert len(rates) == 5
    for r in rates:
        assert rate_problems(r, BOUNDS) == [], r


def test_fixed_and_spread_overrides_keep_them_too() -> None:
    fixed = OverrideRequest(pair=USD_CAD, store_id="s1", buy=Decimal("1.37"), sell=Decimal("1.33"))
    for r in engine_rates("s1", fixed):
        assert rate_problems(r, BOUNDS) == [], r
    wide = OverrideRequest(pair=USD_CAD, store_id="s1", spread=Decimal("0.07"))
    rates = engine_rates("s1", wide)
    assert next(r for r in rates if r["currencyPair"] == "USD/CAD")["spread"] >= Decimal("0.07")
    assert all(rate_problems(r, BOUNDS) == [] for r in rates)


def usd(**changes: Any) -> dict[str, Any]:
    r = next(r for r in engine_rates() if r["currencyPair"] == "USD/CAD")
    prov = {**r["provenance"], **changes.pop("provenance", {})}
    return {**r, **changes, "provenance": prov}


def test_inverted_rates_are_named_with_the_convention() -> None:
    r = usd()
    bad = usd(buyRate=r["sellRate"], sellRate=r["buyRate"])
    problems = rate_problems(bad, BOUNDS)
    assert "USD/CAD at global: sellRate" in problems[0]
    assert "buyRate is what a customer pays" in problems[0]


def test_buy_below_mid() -> None:
    r = usd()
    problems = rate_problems(usd(buyRate=r["rate"] - Decimal("0.0001")), BOUNDS)
    assert any("does not hold" in p for p in problems)


def test_off_tick_spread_mismatch_and_rounding_narrowing() -> None:
    r = usd()
    off = rate_problems(usd(buyRate=r["buyRate"] + Decimal("0.00005")), BOUNDS)
    assert any("buyRate" in p and "not on the pair's tick 0.0001" in p for p in off)
    assert any("spread" in p and "(buyRate - sellRate) / mid" in p for p in off)
    narrow = usd(provenance={"spreadApplied": r["spread"] + Decimal("0.001")})
    assert any("narrower than the spread applied" in p for p in rate_problems(narrow, BOUNDS))
    wide = usd(provenance={"spreadApplied": r["spread"] - Decimal("0.001")})
    assert any("wider than the spread applied" in p for p in rate_problems(wide, BOUNDS))


def test_mid_must_be_the_market_mid_and_spread_within_bounds() -> None:
    r = usd()
    moved = usd(provenance={"marketMid": r["rate"] + 1})
    assert any("is not the market mid" in p for p in rate_problems(moved, BOUNDS))
    tight = SpreadBounds(Decimal("0.03"), Decimal("0.05"))
    assert any("outside the daemon's bounds [0.03, 0.05]" in p for p in rate_problems(r, tight))
    assert rate_problems(r, None) == []
    assert any(
        "between 0 and 1" in p for p in rate_problems(usd(provenance={"spreadApplied": 2}), None)
    )


def test_malformed_rates_are_problems_not_crashes() -> None:
    assert "malformed rate" in rate_problems({"currencyPair": "USD/CAD"})[0]
    assert "malformed rate" in rate_problems({**usd(), "buyRate": "lots"})[0]
    assert "no provenance" in rate_problems({**usd(), "provenance": None})[-1]
    assert "malformed provenance" in rate_problems(usd(provenance={"tick": None}))[-1]


def test_spread_bounds_from_status() -> None:
    assert SpreadBounds.from_status({"minSpread": Decimal("0.001"), "maxSpread": 0.1}) == BOUNDS
    assert SpreadBounds.from_status({"defaultSpread": 0.02}) is None


# -- selection ---------------------------------------------------------------------------------


def ids(specs: list[registry.Spec]) -> list[str]:
    return [s.id for s in specs]


def test_smoke_is_read_only_and_full_is_everything() -> None:
    smoke = ids(registry.select("smoke"))
    assert smoke[0] == "connectivity.health"
    assert not any(i.startswith(("flow.", "audit.")) for i in smoke)
    assert "websocket.heartbeat" not in smoke
    assert ids(registry.select("full")) == [s.id for s in registry.SPECS]


def test_check_takes_ids_and_groups_and_pulls_in_what_they_need() -> None:
    assert ids(registry.select("smoke", ["market"])) == ["market.fresh", "market.breakers"]
    expire = ids(registry.select("smoke", ["flow.expire"]))
    assert expire == ["flow.override", "flow.lock", "flow.expire", "flow.cleanup"]
    audit = ids(registry.select("smoke", ["audit.flow", "connectivity.health"]))
    assert audit[0] == "connectivity.health" and audit[-2:] == ["flow.cleanup", "audit.flow"]
    assert "flow.clear" in audit


def test_unknown_check_or_suite_is_a_usage_error_listing_the_choices() -> None:
    with pytest.raises(UsageError, match=r"'nope' is not a check id or group; groups: connect"):
        registry.select("full", ["nope"])
    with pytest.raises(UsageError, match="choose smoke or full"):
        registry.select("everything")


# -- results and exit codes --------------------------------------------------------------------


def result(id_: str, res: Result, cause: str | None = None) -> CheckResult:
    return CheckResult(id_, "title", res, f"{id_} says {res.value}", 12, ("detail one",), cause)


def make_report(*checks: CheckResult) -> Report:
    return Report("http://127.0.0.1:1", "full", "validate-x", NOW, 1500, list(checks))


@pytest.mark.parametrize(
    ("results", "code", "verdict"),
    [
        ([Result.PASS, Result.WARN, Result.SKIP], 0, "passed"),
        ([Result.PASS, Result.FAIL], 1, "failed"),
        ([Result.ERROR], 1, "failed"),
    ],
)
def test_exit_codes(results: list[Result], code: int, verdict: str) -> None:
    rep = make_report(*(result(f"g.c{i}", r) for i, r in enumerate(results)))
    assert rep.exit_code() == code and rep.verdict() == verdict


def test_unreachable_beats_auth_beats_failure() -> None:
    fail = result("a.fail", Result.FAIL)
    auth = result("b.auth", Result.ERROR, AUTH)
    gone = result("c.gone", Result.ERROR, UNREACHABLE)
    assert make_report(fail, auth).exit_code() == 4
    assert make_report(fail, auth, gone).exit_code() == 3


def test_json_envelope_is_versioned() -> None:
    data = make_report(result("market.fresh", Result.FAIL)).to_dict()
    assert data["version"] == 1 and data["startedAt"] == "2026-01-05T12:00:00Z"
    assert data["summary"] == {
        "result": "failed",
        "exitCode": 1,
        "total": 1,
        "passed": 0,
        "warned": 0,
        "skipped": 0,
        "failed": 1,
        "errors": 0,
        "aborted": None,
    }
    assert data["checks"][0]["group"] == "market" and data["checks"][0]["details"] == ["detail one"]


# -- frames ---------------------------------------------------------------------------------------


def test_both_dialects_unwrap_to_the_event() -> None:
    lock = {"lockId": "L1"}
    assert unwrap({"type": "data", "data": {"type": "rate_lock_created", **lock}}) == (
        "rate_lock_created",
        lock,
    )
    assert unwrap({"type": "rate_lock_created", "data": lock}) == ("rate_lock_created", lock)
    assert unwrap({"type": "heartbeat"}) == ("heartbeat", {})


def test_inbox_finds_from_a_mark_and_ignores_non_objects() -> None:
    box = Inbox()
    box.add('{"type":"rate_update","data":{"rates":[{"rate":1.35}]}}', 1.0)
    mark = box.mark()
    box.add("[1, 2]", 1.5)
    box.add('{"type":"rate_update","data":{"rates":[]}}', 2.0)
    found = box.find(lambda f: f.type == "rate_update", mark)
    assert found is not None and found.at == 2.0
    assert box.frames[0].data["rates"][0]["rate"] == Decimal("1.35")
    assert box.ignored == 1 and box.types() == ["rate_update", "rate_update"]


# -- rendering ------------------------------------------------------------------------------------


def plain(renderable: Any) -> str:
    out = StringIO()
    Console(file=out, width=200, color_system=None).print(renderable)
    return out.getvalue()


def test_one_line_per_check_details_under_failures_summary_last() -> None:
    ok = CheckResult("connectivity.health", "t", Result.PASS, "alive", 3)
    bad = CheckResult("engine.invariants", "t", Result.FAIL, "2 problems", 1234, ("a", "b"))
    assert plain(report.line(ok)).rstrip() == ("PASS   connectivity.health     alive  (3 ms)")
    assert plain(report.line(bad)).splitlines() == [
        "FAIL   engine.invariants       2 problems  (1.23 s)",
        "       - a",
        "       - b",
    ]
    rep = make_report(ok, bad)
    assert plain(report.summary(rep)).strip() == (
        "FAILED: 2 checks, 1 passed, 0 warned, 0 skipped, 1 failed, 0 errors in 1.50 s"
    )


def test_junit_xml() -> None:
    rep = make_report(
        result("connectivity.health", Result.PASS),
        result("websocket.heartbeat", Result.WARN),
        result("market.fresh", Result.FAIL),
        result("flow.override", Result.ERROR),
        result("audit.flow", Result.SKIP),
    )
    root = ET.fromstring(report.junit(rep))
    suite = root.find("testsuite")
    assert suite is not None
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped", "time")} == {
        "tests": "5",
        "failures": "1",
        "errors": "1",
        "skipped": "1",
        "time": "1.500",
    }
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["market.fresh"].get("classname") == "ratectl.validate.market"
    failure = cases["market.fresh"].find("failure")
    assert failure is not None and failure.get("message") == "market.fresh says fail"
    assert failure.text == "detail one"
    assert cases["flow.override"].find("error") is not None
    assert cases["audit.flow"].find("skipped") is not None
    out = cases["websocket.heartbeat"].find("system-out")
    assert out is not None and out.text == "WARN: websocket.heartbeat says warn\n- detail one"
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props == {
        "daemon": "http://127.0.0.1:1",
        "suite": "full",
        "store": "validate-x",
        "result": "failed",
    }

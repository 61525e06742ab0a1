"""ratectl's rendering, tested as text: wire objects in, what an operator reads out."""

from __future__ import annotations

from datetime import UTC
from io import StringIO
from typing import Any

from rich.console import Console, RenderableType

from ratectl import models, render
from ratehubd import wire

NOW = 1_767_614_400_000  # 2026-01-05T12:00:00Z


def text(renderable: RenderableType, width: int = 80) -> str:
    out = StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue()


def rate(pair: str = "USD/CAD", **over: Any) -> dict[str, Any]:
    base, quote = pair.split("/")
    r: dict[str, Any] = {
        "currencyPair": pair,
        "baseCurrency": base,
        "targetCurrency": quote,
        "rate": 1.35,
        "buyRate": 1.3635,
        "sellRate": 1.3365,
        "spread": 0.02,
        "source": "simulated",
        "storeId": None,
        "validUntil": None,
        "timestamp": NOW,
        "stale": False,
        "provenance": {
            "marketMid": 1.35,
            "marketSources": ["simulated"],
            "marketTimestamp": NOW - 3000,
            "spreadApplied": 0.02,
            "tick": 0.0001,
            "override": None,
        },
    }
    r.update(over)
    return r


OVERRIDE = {
    "id": "1ecfb44d93b54f4d92b4931170ecb034",
    "currencyPair": "USD/CAD",
    "storeId": "store123",
    "author": "ops",
    "reason": "High demand period",
    "source": "manual",
    "validUntil": "2026-01-05T13:00:00.000Z",
    "version": 2,
    "createdAt": "2026-01-05T11:00:00.000Z",
    "buyRate": 1.37,
    "sellRate": 1.33,
    "spread": None,
}


def test_rates_table_shows_prices_on_their_tick_and_market_age() -> None:
    rates = models.rates([rate(), rate("BTC/CAD", buyRate=136350.0, sellRate=133650.5)])
    out = text(render.rates_table(rates, now_ms=NOW))
    lines = out.splitlines()
    assert lines[0].split() == ["PAIR", "BUY", "SELL", "MID", "SPREAD", "SOURCE", "AGE"]
    assert lines[1].split() == [
        "BTC/CAD",
        "136350.0000",
        "133650.5000",
        "1.35",
        "2.00%",
        "simulated",
        "3s",
    ]
    assert lines[2].split() == ["USD/CAD", "1.3635", "1.3365", "1.35", "2.00%", "simulated", "3s"]


def test_rates_wide_adds_store_market_and_override() -> None:
    prov = {**rate()["provenance"], "override": OVERRIDE}
    r = rate(
        buyRate=1.37,
        sellRate=1.33,
        source="manual",
        storeId="store123",
        validUntil="2026-01-05T13:00:00.000Z",
        provenance=prov,
    )
    out = text(render.rates_table(models.rates([r]), now_ms=NOW, wide=True), width=200)
    header, row = out.splitlines()[:2]
    assert header.split()[-6:] == ["STORE", "MARKET", "MID", "TICK", "VALID", "OVERRIDE"]
    assert "store123" in row
    assert "1.3700" in row and "1.3300" in row
    assert "in 1h" in row
    assert "ops: High demand period (v2)" in row


def test_stale_rate_is_marked() -> None:
    out = text(render.rates_table(models.rates([rate(stale=True)]), now_ms=NOW))
    assert "3s stale" in out


def test_market_table() -> None:
    quotes = models.market(
        [
            {
                "currencyPair": "EUR/CAD",
                "baseCurrency": "EUR",
                "targetCurrency": "CAD",
                "rate": 1.49,
                "sources": ["simulated", "ecb"],
                "timestamp": NOW - 125_000,
            }
        ]
    )
    lines = text(render.market_table(quotes, now_ms=NOW)).splitlines()
    assert lines[0].split() == ["PAIR", "MID", "SOURCES", "AGE"]
    assert lines[1].split() == ["EUR/CAD", "1.49", "simulated,", "ecb", "2m"]


def test_overrides_table_and_wide() -> None:
    rows = models.overrides([OVERRIDE, {**OVERRIDE, "storeId": None, "currencyPair": "EUR/CAD"}])
    lines = text(render.overrides_table(rows, now_ms=NOW)).splitlines()
    assert lines[0].split() == [
        "PAIR",
        "STORE",
        "BUY",
        "SELL",
        "SPREAD",
        "VALID",
        "AUTHOR",
        "REASON",
    ]
    assert lines[1].split()[:2] == ["EUR/CAD", "(global)"]
    assert "USD/CAD  store123  1.37  1.33" in lines[2]
    assert lines[2].rstrip().endswith("ops     High demand period")
    wide = text(render.overrides_table(rows, now_ms=NOW, wide=True), width=200)
    assert "VERSION" in wide and str(OVERRIDE["id"]) in wide


def test_status_view_renders_sections_and_nested_tables() -> None:
    status = {
        "websocketHub": {"running": True, "connections": 3, "byClientType": {"dashboard": 3}},
        "rateEngine": {
            "pairs": ["EUR/CAD", "USD/CAD"],
            "marketData": {"USD/CAD": {"rate": 1.35, "ageSeconds": 0.2, "stale": False}},
            "breaches": [],
        },
        "integration": {"status": "healthy"},
    }
    out = text(render.status_view(status))
    assert out.splitlines()[0] == "websocketHub"
    assert "running yes" in " ".join(out.split())
    assert "byClientType dashboard=3" in " ".join(out.split())
    assert "EUR/CAD, USD/CAD" in out
    assert "RATE  AGE SECONDS  STALE" in out
    assert "USD/CAD  1.35" in out
    assert "breaches -" in " ".join(out.split())
    assert out.splitlines()[-1].split() == ["status", "healthy"]


def test_status_view_prints_times_as_people_read_them() -> None:
    status = {
        "integration": {"status": "healthy", "timestamp": 1767614400123, "uptimeSeconds": 12.5},
        "websocketHub": {"terminals": {"s1": {"staleSinceMs": None, "connectedAt": 1767614400000}}},
        "timestamp": 1767614400123,
    }
    out = " ".join(text(render.status_view(status)).split())
    assert "timestamp 2026-01-05T12:00:00.123Z (UTC)" in out
    assert out.endswith("2026-01-05T12:00:00.123Z (UTC)")
    assert "1767614400" not in out
    assert "uptimeSeconds 12.5" in out  # a number that is not a time stays a number


def test_tail_lines_one_per_rate_with_seq() -> None:
    msg = {
        "type": "rate_update",
        "data": {"rates": [rate(), rate("EUR/CAD", buyRate=1.5, sellRate=1.48)], "snapshot": True},
        "timestamp": NOW + 1234,
        "seq": 7,
        "epoch": "e1",
    }
    lines = text(render.event_lines(msg, tz=UTC), width=200).splitlines()
    assert lines[0].split() == [
        "12:00:01.234",
        "rate_update",
        "USD/CAD",
        "buy",
        "1.3635",
        "sell",
        "1.3365",
        "mid",
        "1.35",
        "#7",
        "snapshot",
    ]
    assert lines[1].split()[2:7] == ["EUR/CAD", "buy", "1.5", "sell", "1.48"]


def test_tail_line_for_an_override_event() -> None:
    msg = {"type": "rate_override_set", "data": OVERRIDE, "timestamp": NOW, "seq": 3}
    line = text(render.event_lines(msg, tz=UTC), width=200).strip()
    assert line.split()[:9] == [
        "12:00:00.000",
        "rate_override_set",
        "USD/CAD",
        "@store123",
        "buy",
        "1.37",
        "sell",
        "1.33",
        "'High",
    ]
    assert line.endswith("#3")


def test_tail_line_for_other_events_lists_fields() -> None:
    msg = {"type": "rate_threshold_breach", "data": {"currencyPair": "BTC/CAD", "kind": "jump"}}
    line = text(render.event_lines(msg, tz=UTC)).strip()
    assert line.startswith("--:--:--.---  rate_threshold_breach")
    assert line.endswith("kind=jump")


def test_number_formatting() -> None:
    assert render.num(135000.0) == "135000"
    assert render.num(1.37) == "1.37"
    assert render.num(None) == "-"
    assert render.age(NOW, NOW - 90_000) == "1m"
    assert render.age(NOW, NOW - 999) == "999ms"
    assert render.until(NOW, "2026-01-05T11:00:00Z") == "1h ago"


def test_settings_and_contexts_tables() -> None:
    rows = [("url", "http://x:1", "env RATECTL_URL"), ("token", "<redacted>", "file /k")]
    out = text(render.settings_table(rows, show_source=True))
    assert out.splitlines()[0].split() == ["KEY", "VALUE", "SOURCE"]
    assert "env RATECTL_URL" in out
    assert "SOURCE" not in text(render.settings_table(rows, show_source=False))
    ctxs = {"a": {"url": "http://a:1"}, "b": {"url": "http://b:1", "store": "s9"}}
    lines = text(render.contexts_table(ctxs, "b")).splitlines()
    assert lines[2].split() == ["*", "b", "http://b:1", "s9", "-"]


def test_rendering_takes_wire_models() -> None:
    parsed = models.rate(rate())
    assert isinstance(parsed, wire.Rate)
    assert str(parsed.buyRate) == "1.3635"

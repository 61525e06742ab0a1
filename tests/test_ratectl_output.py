"""ratectl's data formats (json, jsonl, yaml) and its parsing of what users type. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest

from ratectl import output, params
from ratectl.errors import UsageError
from ratectl.stream import normalize_pair

DATA = [
    {"currencyPair": "USD/CAD", "rate": 1.35, "stale": False, "storeId": None, "count": 3},
    {"currencyPair": "EUR/CAD", "sources": ["a", "b"], "provenance": {"tick": 0.0001}},
]


def test_json_is_plain_json() -> None:
    assert json.loads(output.dump(DATA, "json")) == DATA


def test_jsonl_is_one_object_per_line() -> None:
    lines = output.dump(DATA, "jsonl").splitlines()
    assert [json.loads(line) for line in lines] == DATA
    assert output.dump({"a": 1}, "jsonl") == '{"a":1}\n'


def test_yaml_block_style() -> None:
    assert output.to_yaml(DATA) == (
        "- currencyPair: USD/CAD\n"
        "  rate: 1.35\n"
        "  stale: false\n"
        "  storeId: null\n"
        "  count: 3\n"
        "- currencyPair: EUR/CAD\n"
        "  sources:\n"
        "  - a\n"
        "  - b\n"
        "  provenance:\n"
        "    tick: 0.0001\n"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain text", "plain text"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
        ("1.37", '"1.37"'),  # would read back as a number
        ("yes", '"yes"'),  # would read back as a bool
        ("null", '"null"'),
        ("", '""'),
        ("a: b", '"a: b"'),
        ("ends with colon:", '"ends with colon:"'),
        ("has # hash", '"has # hash"'),
        ("-leading dash", '"-leading dash"'),
        ("line\nbreak", '"line\\nbreak"'),
        ("2026-01-05T12:00:00.000Z", '"2026-01-05T12:00:00.000Z"'),
    ],
)
def test_yaml_quotes_strings_that_would_change_type(value: str, expected: str) -> None:
    assert output.to_yaml({"k": value}) == f"k: {expected}\n"


def test_yaml_empty_containers_and_special_floats() -> None:
    assert output.to_yaml({"a": [], "b": {}, "c": float("inf")}) == "a: []\nb: {}\nc: .inf\n"
    assert output.to_yaml([]) == "[]\n"
    assert output.to_yaml([[1, 2], [3]]) == "- - 1\n  - 2\n- - 3\n"


def test_stream_items() -> None:
    assert output.dump_stream({"a": 1}, "jsonl") == '{"a":1}\n'
    assert output.dump_stream({"a": 1}, "yaml") == "---\na: 1\n"
    assert json.loads(output.dump_stream({"a": 1}, "json")) == {"a": 1}


def test_emit_writes_data_formats_without_rich() -> None:
    out = StringIO()
    output.emit({"x": "[bold]not markup[/bold]"}, "json", out=out)
    assert json.loads(out.getvalue()) == {"x": "[bold]not markup[/bold]"}


def test_set_rate_body_from_the_guide_example() -> None:
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    body = params.set_rate_body(
        "USD/CAD",
        buy="1.37",
        sell="1.33",
        spread_text=None,
        store="store123",
        valid_for="1h",
        valid_until=None,
        reason="High demand period",
        expected_version=None,
        now=now,
    )
    assert body == {
        "currencyPair": "USD/CAD",
        "buyRate": 1.37,
        "sellRate": 1.33,
        "storeId": "store123",
        "validUntil": "2026-01-05T13:00:00.000Z",
        "reason": "High demand period",
    }


def test_set_rate_body_needs_rates_and_one_lifetime() -> None:
    now = datetime(2026, 1, 5, tzinfo=UTC)
    common = dict(store=None, reason=None, expected_version=None, now=now)
    with pytest.raises(UsageError, match="--buy and --sell"):
        params.set_rate_body(
            "USD/CAD",
            buy=None,
            sell=None,
            spread_text=None,
            valid_for=None,
            valid_until=None,
            **common,  # type: ignore[arg-type]
        )
    with pytest.raises(UsageError, match="not both"):
        params.set_rate_body(
            "USD/CAD", buy="1.37", sell="1.33", spread_text=None, valid_for="1h",
            valid_until="2026-01-06T00:00:00Z", **common,  # type: ignore[arg-type]
        )  # fmt: skip


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("1h", 3600), ("1h30m", 5400), ("2d", 172800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert params.duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1", "1x", "h", "-5m", "1h 30"])
def test_bad_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(UsageError, match="90s, 30m, 1h"):
        params.duration(text)
    with pytest.raises(UsageError, match="longer than zero"):
        params.duration("0s")


@pytest.mark.parametrize("text", ["abc", "1,37", "0", "-1.3", "NaN", "Infinity"])
def test_bad_rates(text: str) -> None:
    with pytest.raises(UsageError, match="--buy"):
        params.decimal(text, "--buy")


def test_spread_accepts_fraction_or_percent() -> None:
    assert str(params.spread("0.03")) == "0.03"
    assert str(params.spread("3%")) == "0.03"


def test_valid_until_parses_iso_and_rejects_the_rest() -> None:
    assert params.timestamp("2026-01-05T18:00:00Z") == datetime(2026, 1, 5, 18, tzinfo=UTC)
    assert params.timestamp("2026-01-05T18:00:00") == datetime(2026, 1, 5, 18, tzinfo=UTC)
    with pytest.raises(UsageError, match="ISO 8601"):
        params.timestamp("tomorrow")


def test_pairs_are_normalised() -> None:
    assert [normalize_pair(p) for p in ("usd-cad", "USDCAD", "eur/cad", "BTC_CAD")] == [
        "USD/CAD",
        "USD/CAD",
        "EUR/CAD",
        "BTC/CAD",
    ]
    with pytest.raises(UsageError, match="USD/CAD, USDCAD or usd-cad"):
        normalize_pair("dollars")
    assert params.csv(["USD/CAD,EUR/CAD", " GBP/CAD "]) == ["USD/CAD", "EUR/CAD", "GBP/CAD"]


class FakeTerminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    tty = FakeTerminal()
    output.console(tty).print("x", style="red")
    assert "\x1b[" in tty.getvalue()
    pipe = StringIO()
    output.console(pipe).print("x", style="red")
    assert pipe.getvalue() == "x\n"
    monkeypatch.setenv("NO_COLOR", "1")
    tty = FakeTerminal()
    output.console(tty).print("x", style="red")
    assert "\x1b[31" not in tty.getvalue()


def test_piped_tables_are_neither_truncated_nor_padded() -> None:
    from ratectl import render

    rows = [("path", "/" + "very-long-directory/" * 20, "file")]
    out = StringIO()
    output.print_renderable(render.settings_table(rows, show_source=True), out)
    lines = out.getvalue().splitlines()
    assert lines[1].split() == ["path", rows[0][1], "file"]
    assert all(line == line.rstrip() for line in lines)


def test_progress_spinner_only_on_a_terminal_and_only_when_slow() -> None:
    import time

    from tests.conftest import timeout

    quiet = FakeTerminal()
    with output.progress("working", delay=10, file=quiet):
        pass
    assert quiet.getvalue() == ""  # quick work: nothing drawn
    piped = StringIO()
    with output.progress("working", delay=0, file=piped):
        time.sleep(0.05)
    assert piped.getvalue() == ""  # piped: never
    tty = FakeTerminal()
    with output.progress("working", delay=0.01, file=tty):
        deadline = time.monotonic() + timeout(5)
        while "working" not in tty.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert "working" in tty.getvalue()


def test_a_bug_is_reported_in_one_line_not_a_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer

    from ratectl.errors import reported

    @reported
    def broken() -> None:
        raise ValueError("boom")

    monkeypatch.delenv("RATECTL_DEBUG", raising=False)
    with pytest.raises(typer.Exit) as exited:
        broken()
    assert exited.value.exit_code == 1
    err = capsys.readouterr().err
    assert err == "ratectl: internal error: ValueError: boom (a bug: please report it)\n"
    monkeypatch.setenv("RATECTL_DEBUG", "1")
    with pytest.raises(ValueError, match="boom"):
        broken()


def test_a_reply_of_the_wrong_shape_is_reported() -> None:
    from ratectl import models
    from ratectl.errors import CtlError

    with pytest.raises(CtlError, match=r"not a Rate \(currencyPair: Field required\)"):
        models.rates([{"rate": 1}])
    with pytest.raises(CtlError, match="expected a list"):
        models.rates({"rate": 1})

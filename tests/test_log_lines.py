"""Text logs: one event, one line, whatever a client put in a value."""

from __future__ import annotations

import logging
import sys

from ratehubd.cli import TextFormatter


def record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("ratehub.hub", logging.INFO, __file__, 1, msg, args, info)


def test_a_newline_in_a_value_cannot_forge_a_line() -> None:
    forged = "s1\n2026-12-05 20:00:00,000 ERROR ratehub.auth: admin key leaked\r\x1b[2J"
    line = TextFormatter().format(record("override set for store %s", forged))
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert line.endswith(
        "store s1\\n2026-12-05 20:00:00,000 ERROR ratehub.auth: admin key leaked\\r\\x1b[2J"
    )


def test_a_traceback_keeps_its_lines() -> None:
    text = TextFormatter().format(record("failed for %s", "s\n1", exc=True))
    first, *rest = text.splitlines()
    assert first.endswith("failed for s\\n1")
    assert rest[0] == "Traceback (most recent call last):" and rest[-1] == "ValueError: boom"

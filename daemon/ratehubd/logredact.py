"""Keep secrets out of the logs, whoever logs them.

Browsers put the API key in the WebSocket URL (``?token=``), and a library logging a
request line at debug level (websockets does, with ``DEBUG_WEBSOCKET``) would write it
out. :func:`install` wraps the log record factory, so every record from every logger is
redacted once, before any handler or formatter sees it: ``token=`` values, ``Bearer``
credentials, ``rh_<id>_<secret>`` key texts (the id stays, it names the key) and any
secret given to it (``API_SECRET_KEY`` may be any string).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "<redacted>"
_PATTERNS = (
    (re.compile(r"(?i)\b(token=)[^&\s\"']+"), rf"\1{REDACTED}"),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',]+"), rf"\1{REDACTED}"),
    (re.compile(r"\b(rh_[0-9a-f]{8}_)[A-Za-z0-9_-]+"), rf"\1{REDACTED}"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


_secrets: list[str] = []
_installed = False


def install(secrets: Iterable[str] = ()) -> None:
    """Redact every log record from now on (idempotent; later calls add secrets)."""
    global _installed
    _secrets.extend(s for s in secrets if s and len(s) >= 4 and s not in _secrets)
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it for the handler to report
            return record
        clean = redact(message, _secrets)
        if clean != message:
            record.msg, record.args = clean, None
        return record

    logging.setLogRecordFactory(factory)

"""Results, the report and its exit code. Pure: no I/O, no clock.

A check ends as one :class:`CheckResult`: ``pass``, ``warn`` (passed, but something
deserves a look: a slow event, a version skew), ``skip`` (not run, with the reason),
``fail`` (the daemon broke a promise; the details say which) or ``error`` (the check
itself could not run to its end: an unexpected reply, a refused key).

Inside a check, :class:`Fail` and :class:`Skip` end it early; a check returns an
:class:`Outcome` otherwise.

Exit codes (``ratectl validate --help``): 0 every check passed (warnings and skips
allowed), 1 a check failed or errored, 3 the daemon could not be reached (the run
stopped), 4 the daemon refused the key (401 stops the run; a 403 fails that check).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ratectl import errors

SCHEMA_VERSION = 1
UNREACHABLE = "unreachable"
AUTH = "auth"


class Result(enum.StrEnum):
    PASS = "pass"
    WARN = "warn"
    SKIP = "skip"
    FAIL = "fail"
    ERROR = "error"


OK_RESULTS = frozenset({Result.PASS, Result.WARN})
BAD_RESULTS = frozenset({Result.FAIL, Result.ERROR})


@dataclass(frozen=True)
class Outcome:
    result: Result
    message: str
    details: tuple[str, ...] = ()


def passed(message: str) -> Outcome:
    return Outcome(Result.PASS, message)


def warned(message: str, details: list[str] | tuple[str, ...] = ()) -> Outcome:
    return Outcome(Result.WARN, message, tuple(details))


def judged(message: str, problems: list[str], warnings: list[str] | None = None) -> Outcome:
    """Fail with ``problems`` if there are any; else warn with ``warnings``; else pass."""
    if len(problems) == 1:
        raise Fail(problems[0])
    if problems:
        raise Fail(f"{len(problems)} problems; the first: {problems[0]}", problems)
    warnings = warnings or []
    if len(warnings) == 1:
        return warned(f"{message}; but {warnings[0]}")
    if warnings:
        return warned(f"{message}; {len(warnings)} warnings", warnings)
    return passed(message)


class Fail(Exception):
    """The daemon broke a promise: the check fails."""

    def __init__(self, message: str, details: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details = tuple(details)


class Skip(Exception):
    """The check cannot say anything in this run (the reason says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class CheckResult:
    id: str
    title: str
    result: Result
    message: str
    duration_ms: int = 0
    details: tuple[str, ...] = ()
    cause: str | None = None  # UNREACHABLE or AUTH: why it could not run

    @property
    def group(self) -> str:
        return self.id.partition(".")[0]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "title": self.title,
            "result": self.result.value,
            "message": self.message,
            "details": list(self.details),
            "durationMs": self.duration_ms,
            "cause": self.cause,
        }


@dataclass
class Report:
    daemon: str
    suite: str
    store: str
    started_at: datetime
    duration_ms: int = 0
    checks: list[CheckResult] = field(default_factory=list)
    aborted: str | None = None  # why the run stopped early (unreachable, key refused)

    def counts(self) -> dict[str, int]:
        out = {r.value: 0 for r in Result}
        for c in self.checks:
            out[c.result.value] += 1
        return out

    def exit_code(self) -> int:
        causes = {c.cause for c in self.checks}
        if UNREACHABLE in causes:
            return errors.UNREACHABLE
        if AUTH in causes:
            return errors.AUTH
        if any(c.result in BAD_RESULTS for c in self.checks):
            return errors.FAILED
        return errors.OK

    def verdict(self) -> str:
        return {
            errors.OK: "passed",
            errors.FAILED: "failed",
            errors.UNREACHABLE: "unreachable",
            errors.AUTH: "auth refused",
        }[self.exit_code()]

    def summary(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "result": self.verdict(),
            "exitCode": self.exit_code(),
            "total": len(self.checks),
            "passed": counts["pass"],
            "warned": counts["warn"],
            "skipped": counts["skip"],
            "failed": counts["fail"],
            "errors": counts["error"],
            "aborted": self.aborted,
        }

    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON envelope (``-o json``)."""
        return {
            "version": SCHEMA_VERSION,
            "daemon": self.daemon,
            "suite": self.suite,
            "store": self.store,
            "startedAt": self.started_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "durationMs": self.duration_ms,
            "summary": self.summary(),
            "checks": [c.to_dict() for c in self.checks],
        }

"""The errors ratectl reports, each with its exit code.

Every failure a user can cause or meet ends as one of these, printed as one line
on stderr (``ratectl: <message>``) with a stable exit code; never a traceback::

    CtlError (1)             the request failed (the daemon said no, bad reply, ...)
    ├── UsageError (2)       bad flags or values that can never work
    ├── Unreachable (3)      no daemon answered at the URL
    ├── AuthError (4)        no key, wrong key, or a key without the needed role
    └── ConflictError (5)    compare-and-set lost (someone changed it first)

Ctrl-C exits 130.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

OK = 0
FAILED = 1
USAGE = 2
UNREACHABLE = 3
AUTH = 4
CONFLICT = 5
INTERRUPTED = 130

EXIT_CODES = (
    (OK, "ok"),
    (FAILED, "failed (the daemon refused the request, or another error)"),
    (USAGE, "usage error (bad flag or value)"),
    (UNREACHABLE, "daemon unreachable"),
    (AUTH, "authentication or permission denied"),
    (CONFLICT, "conflict (someone changed it first; re-read and retry)"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
)


class CtlError(Exception):
    exit_code: ClassVar[int] = FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CtlError):
    exit_code = USAGE


class Unreachable(CtlError):
    exit_code = UNREACHABLE


class AuthError(CtlError):
    exit_code = AUTH


class ConflictError(CtlError):
    exit_code = CONFLICT


F = TypeVar("F", bound=Callable[..., Any])


def reported(fn: F) -> F:
    """Wrap a command: a CtlError becomes one stderr line and its exit code; Ctrl-C
    exits 130; a closed pipe (``ratectl tail | head``) ends quietly; a bug is reported
    in one line too (``RATECTL_DEBUG=1`` shows its traceback)."""
    import functools

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        import typer

        try:
            return fn(*args, **kwargs)
        except CtlError as exc:
            _say(f"ratectl: {exc.message}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(INTERRUPTED) from None
        except BrokenPipeError:
            import os
            import sys

            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(OK) from None
        except Exception as exc:
            if type(exc).__module__.startswith(("typer", "click")):
                raise  # exits and usage errors of the CLI framework
            import os

            if os.environ.get("RATECTL_DEBUG"):
                raise
            _say(f"ratectl: internal error: {type(exc).__name__}: {exc} (a bug: please report it)")
            raise typer.Exit(FAILED) from None

    return run  # type: ignore[return-value]


def _say(text: str) -> None:
    from ratectl.output import message

    message(text, style="red")

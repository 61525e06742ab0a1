"""Run a selection of checks in order and build the report.

Each check runs under a budget (twice ``--timeout`` plus what it must wait out, such
as a lock's ttl); its own limits are tighter, the budget only guards against a hang.
What a check raises becomes its result here, in one place:

    Fail -> fail          Skip -> skip           budget exceeded -> fail
    Unreachable -> error, and the run stops (exit 3)
    KeyRefused (401) -> error, and the run stops (exit 4)
    NotAllowed (403) -> error (exit 4 at the end)
    any other CtlError -> error        anything else -> error naming the exception

After a stop (or, with ``--fail-fast``, after the first failure or error) the
remaining checks are reported as skipped, except ``flow.cleanup``, which always runs
once the flow has started, so the scratch store is left clean even after a failure;
Ctrl-C (the run cancelled) runs the cleanup too before it leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime

import httpx

from ratectl.errors import CtlError, Unreachable
from ratectl.validate.checks import RUN
from ratectl.validate.context import Ctx, Options
from ratectl.validate.model import (
    AUTH,
    BAD_RESULTS,
    UNREACHABLE,
    CheckResult,
    Fail,
    Report,
    Result,
    Skip,
)
from ratectl.validate.probe import KeyRefused, NotAllowed, Probe
from ratectl.validate.registry import Spec, select


def budget(spec: Spec, timeout: float) -> float:
    return 2 * timeout + spec.extra_s + 1.0


async def run(
    opts: Options,
    on_result: Callable[[CheckResult], None] | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Report:
    specs = select(opts.suite, opts.checks)
    report = Report(opts.url, opts.suite_name, opts.store, datetime.now(UTC))
    started = time.monotonic()
    probe = Probe(
        opts.url, opts.token, opts.timeout, token_source=opts.token_source, transport=transport
    )
    ctx = Ctx(opts, probe)
    stop: str | None = None
    try:
        for spec in specs:
            if stop is not None and not spec.always:
                res = CheckResult(spec.id, spec.title, Result.SKIP, f"not run: {stop}")
            else:
                res, why = await run_one(spec, ctx)
                if why is not None and report.aborted is None:
                    report.aborted, stop = res.message, why
                elif opts.fail_fast and res.result in BAD_RESULTS and stop is None:
                    stop = f"--fail-fast after {spec.id} ({res.result.value})"
            report.checks.append(res)
            if on_result is not None:
                on_result(res)
    except asyncio.CancelledError:  # Ctrl-C: undo the flow's changes before leaving
        if ctx.flow.started:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(RUN["flow.cleanup"](ctx), ctx.timeout)
        raise
    finally:
        if ctx.flow.hub is not None and ctx.flow.hub.closed is None:
            await ctx.flow.hub.close()
        await probe.aclose()
        report.duration_ms = round((time.monotonic() - started) * 1000)
    return report


async def run_one(spec: Spec, ctx: Ctx) -> tuple[CheckResult, str | None]:
    """The check's result, and why the run must stop (None: it goes on)."""
    limit = budget(spec, ctx.timeout)
    started = time.monotonic()
    stop: str | None = None
    cause: str | None = None
    details: tuple[str, ...] = ()
    try:
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a Ctrl-C that lands
        # just as the check finishes, and the run would then not clean up.
        async with asyncio.timeout(limit):
            out = await RUN[spec.id](ctx)
        result, message, details = out.result, out.message, out.details
    except Fail as exc:
        result, message, details = Result.FAIL, exc.message, exc.details
    except Skip as exc:
        result, message = Result.SKIP, exc.reason
    except TimeoutError:
        result, message = Result.FAIL, f"did not finish within {limit:g} s"
    except Unreachable as exc:
        result, message, cause, stop = (
            Result.ERROR,
            exc.message,
            UNREACHABLE,
            "the daemon is unreachable",
        )
    except KeyRefused as exc:
        result, message, cause = Result.ERROR, exc.message, AUTH
        stop = "the daemon refused the key"
    except NotAllowed as exc:
        result, message, cause = Result.ERROR, exc.message, AUTH
    except CtlError as exc:
        result, message = Result.ERROR, exc.message
    except Exception as exc:  # a malformed reply or a bug in the check: report, go on
        result = Result.ERROR
        message = f"unexpected {type(exc).__name__}: {exc} (a malformed reply, or a ratectl bug)"
        if os.environ.get("RATECTL_DEBUG"):
            details = tuple(traceback.format_exc().splitlines())
    ms = round((time.monotonic() - started) * 1000)
    return CheckResult(spec.id, spec.title, result, message, ms, tuple(details), cause), stop

"""Periodic jobs during an outage: one traceback, not one a second."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from ratehubd.runtime import Runtime


async def test_a_failing_periodic_job_is_logged_once_and_its_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    done = asyncio.Event()

    async def sync_keys() -> None:
        nonlocal calls
        calls += 1
        if calls <= 50:
            raise OSError("the database is away")
        if calls >= 53:
            done.set()

    caplog.set_level(logging.INFO, logger="ratehub")
    task = asyncio.create_task(Runtime._every(None, 0.001, sync_keys))  # type: ignore[arg-type]
    await asyncio.wait_for(done.wait(), 10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    said = [r for r in caplog.records if "sync_keys" in r.getMessage()]
    assert [r.getMessage() for r in said] == [
        "periodic sync_keys failed; retrying every 0.001 s",
        "periodic sync_keys works again after 50 failure(s)",
    ]
    assert said[0].exc_info is not None

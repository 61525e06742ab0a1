"""The writer: every database write goes through one thread, with group commit.

Callers ``await writer.write(op)``; the thread takes every op queued so far, runs
them in one transaction and commits once (one fsync for the lot), then resolves
each caller's future. A batch that fails in an op is retried op by op so one bad op
fails alone. When ``write`` returns, the op is on disk.

On PostgreSQL every write has a deadline (``store.write_timeout_ms``), counted from its
request: the server enforces it on each statement and lock wait, and a watchdog cuts the
connection when the server does not answer at all (a frozen host: no statement timeout
fires there). A write past its deadline is rolled back and answered 503; one that was
cut before its COMMIT was sent can never commit later (the server sees the connection
end and rolls back). A write still queued at its deadline is answered without running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from ratehubd.errors import Unavailable
from ratehubd.store.repository import Store

log = logging.getLogger("ratehub.writer")

Op = Callable[[Session], Any]
_STOP = object()


@dataclass(slots=True)
class _Item:
    op: Op
    fut: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    expires: float = field(default=float("inf"))  # time.monotonic()


class Writer:
    def __init__(self, store: Store, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        # Only a shared database gets a deadline: SQLite is a local file, it always answers.
        self.deadline_s = store.write_timeout_s if store.shared else None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ratehub-writer", daemon=True)
        self.batches = 0
        self.ops = 0
        self.timeouts = 0  # writes answered 503 at their deadline

    def start(self) -> None:
        self._thread.start()

    async def write(self, op: Op) -> Any:
        loop = asyncio.get_running_loop()
        item = _Item(op, loop.create_future(), loop)
        if self.deadline_s is not None:
            item.expires = time.monotonic() + self.deadline_s
        self._queue.put(item)
        return await item.fut

    def stop(self) -> None:
        """Finish every queued op, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    self._commit(self._live(batch))
                    return
                batch.append(nxt)
            self._commit(self._live(batch))

    def _live(self, batch: list[_Item]) -> list[_Item]:
        """Answer the writes whose deadline passed while they queued; keep the rest."""
        now = time.monotonic()
        for item in batch:
            if item.expires <= now:
                self.timeouts += 1
                self._resolve(item, None, self._late(committing=False))
        return [item for item in batch if item.expires > now]

    def _late(self, *, committing: bool) -> Unavailable:
        limit = f"{self.deadline_s:g} s (store.write_timeout_ms)"
        if committing:
            return Unavailable(
                f"the database did not confirm the commit within {limit}; the change may "
                "have been made: check before retrying, or retry with the same Idempotency-Key"
            )
        return Unavailable(
            f"the database did not answer within {limit}; the change was not made: retry "
            "when it answers"
        )

    def _commit(self, batch: list[_Item], *, reconnected: bool = False) -> None:
        if not batch:
            return
        deadline = _Deadline(min(i.expires for i in batch) - time.monotonic())
        try:
            results = self._transaction([i.op for i in batch], deadline)
        except Exception as exc:
            if deadline.fired:
                self.timeouts += len(batch)
                late = self._late(committing=deadline.committing)
                for item in batch:
                    self._resolve(item, None, late)
                return
            if _stale_connection(exc) and not reconnected and not deadline.committing:
                # A pooled connection the server had dropped (a restart): nothing was
                # written on it, so the batch runs again on a new one.
                self._commit(batch, reconnected=True)
                return
            if _server_deadline(exc):  # statement_timeout or lock_timeout: rolled back
                self.timeouts += len(batch)
                for item in batch:
                    self._resolve(item, None, self._late(committing=False))
                return
            if isinstance(exc, OperationalError) or len(batch) == 1:
                failure = _current_exc()  # the database is away: every op fails the same
                for item in batch:
                    self._resolve(item, None, failure)
                return
            for one in batch:
                self._commit([one])
            return
        self.batches += 1
        self.ops += len(batch)
        for item, result in zip(batch, results, strict=True):
            self._resolve(item, result, None)

    def _transaction(self, ops: list[Op], deadline: _Deadline) -> list[Any]:
        with Session(self.store.write_engine, expire_on_commit=False) as s:
            try:
                if self.deadline_s is not None:
                    deadline.watch(s.connection().connection.dbapi_connection)
                self.store.begin(s)
                results = [op(s) for op in ops]
                deadline.committing = True
                s.commit()
                return results
            finally:
                deadline.cancel()

    @staticmethod
    def _resolve(item: _Item, result: Any, exc: BaseException | None) -> None:
        fut = item.fut

        def settle() -> None:
            if fut.done():
                return
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

        try:
            item.loop.call_soon_threadsafe(settle)
        except RuntimeError:  # loop closed: nobody is waiting any more
            log.debug("writer: loop closed before a result was delivered")


class _Deadline:
    """Cuts the writer's connection when a transaction overruns its deadline: the blocked
    driver call then fails at once, and the server, seeing the connection end, rolls the
    transaction back."""

    def __init__(self, seconds: float) -> None:
        self.fired = False
        self.committing = False
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        if seconds != float("inf"):
            self._timer = threading.Timer(max(0.0, seconds), self._fire)
            self._timer.daemon = True
            self._timer.start()

    def watch(self, dbapi_connection: Any) -> None:
        fileno = getattr(dbapi_connection, "fileno", None)
        if fileno is None:
            return
        with self._lock:
            self._fd = int(fileno())
            if self.fired:
                self._cut()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            if self._fd is not None:
                log.warning("writer: the database did not answer in time; cutting the connection")
                self._cut()

    def _cut(self) -> None:
        assert self._fd is not None
        with contextlib.suppress(OSError):
            sock = socket.socket(fileno=os.dup(self._fd))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._fd = None  # the connection goes back to the pool: never cut it later


def _server_deadline(exc: BaseException) -> bool:
    # PostgreSQL's query_canceled (statement_timeout) and lock_not_available (lock_timeout)
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) in ("57014", "55P03")


def _stale_connection(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def _current_exc() -> BaseException:
    exc = sys.exc_info()[1]
    assert exc is not None
    if isinstance(exc, OperationalError):  # e.g. a fleet's PostgreSQL is away
        cause = exc.orig if exc.orig is not None else exc
        first = (str(cause).strip().splitlines() or [""])[0][:200]
        return Unavailable(
            f"the database is unavailable ({type(cause).__name__}: {first}); the change was "
            "not made: retry when it is back"
        )
    return exc

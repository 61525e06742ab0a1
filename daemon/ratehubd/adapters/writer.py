"""The writer: every database write goes through one thread, with group commit.

Callers ``await writer.write(op)``; the thread takes every op queued so far, runs
them in one transaction and commits once (one fsync for the lot), then resolves
each caller's future. A batch that fails is retried op by op so one bad op
fails alone. When ``write`` returns, the op is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from ratehubd.errors import Unavailable
from ratehubd.store.repository import Store

log = logging.getLogger("ratehub.writer")

Op = Callable[[Session], Any]
_STOP = object()


class Writer:
    def __init__(self, store: Store, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="ratehub-writer", daemon=True)
        self.batches = 0
        self.ops = 0

    def start(self) -> None:
        self._thread.start()

    async def write(self, op: Op) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.put((op, fut, loop))
        return await fut

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
                    self._commit(batch)
                    return
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list[Any]) -> None:
        try:
            results = self._transaction([op for op, _, _ in batch])
        except Exception:
            if len(batch) == 1:
                op, fut, loop = batch[0]
                self._resolve(fut, loop, None, _current_exc())
                return
            for one in batch:
                self._commit([one])
            return
        self.batches += 1
        self.ops += len(batch)
        for (_, fut, loop), result in zip(batch, results, strict=True):
            self._resolve(fut, loop, result, None)

    def _transaction(self, ops: list[Op]) -> list[Any]:
        with Session(self.store.engine, expire_on_commit=False) as s:
            self.store.begin(s)
            results = [op(s) for op in ops]
            s.commit()
            return results

    @staticmethod
    def _resolve(
        fut: asyncio.Future[Any],
        loop: asyncio.AbstractEventLoop,
        result: Any,
        exc: BaseException | None,
    ) -> None:
        def settle() -> None:
            if fut.done():
                return
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

        try:
            loop.call_soon_threadsafe(settle)
        except RuntimeError:  # loop closed: nobody is waiting any more
            log.debug("writer: loop closed before a result was delivered")


def _current_exc() -> BaseException:
    import sys

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

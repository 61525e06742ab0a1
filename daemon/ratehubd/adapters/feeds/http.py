"""The httpx boundary of the feeds: one GET with timeouts, retries with backoff, and the
translation of httpx errors and HTTP error answers into SourceError, in one place.

Retryable: timeouts, connection failures, 5xx and 429 (honouring ``Retry-After`` up to the
policy's longest delay). Not retryable: other 4xx (a bad key, an unknown currency), which
need a configuration change, not another try. Messages never include the query string,
so a key passed as a parameter (OXR's ``app_id``) stays out of logs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Self

import httpx

from ratehubd.adapters.clock import SystemClock
from ratehubd.adapters.feeds.base import Kind, Quote, RetryPolicy, Sleep, load_json
from ratehubd.errors import SourceError

USER_AGENT = "ratehub/0.1 (+https://github.com/ratehub)"


class HttpSource:
    """Base of the HTTP sources. Subclasses set ``name``, ``kind``, ``default_base_url`` and
    implement ``fetch_once`` with ``get`` and their pure parser; they may override
    ``error_message`` to read their provider's error shape."""

    name: str
    kind: Kind
    default_base_url: ClassVar[str]

    def __init__(
        self,
        *,
        name: str | None = None,
        base_url: str | None = None,
        client: httpx.AsyncClient | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if name is not None:
            self.name = name
        self.base_url = (base_url or self.default_base_url).rstrip("/")
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self.sleep = sleep
        self.now = clock or SystemClock().now
        self._owns_client = client is None
        self.client = client or httpx.AsyncClient(headers={"User-Agent": USER_AGENT})

    async def fetch(self) -> list[Quote]:
        """One poll: ``fetch_once``, tried up to ``retry.attempts`` times on retryable errors,
        with the policy's backoff delays between tries."""
        delays = self.retry.delays()
        for attempt in range(1, self.retry.attempts + 1):
            try:
                return await self.fetch_once()
            except SourceError as exc:
                if not exc.retryable or attempt == self.retry.attempts:
                    if attempt > 1:
                        exc.message += f" (after {attempt} attempts)"
                        exc.args = (exc.message,)
                    raise
                delay = next(delays)
                hint = exc.details.get("retry_after")
                if isinstance(hint, float):
                    delay = max(delay, min(hint, self.retry.max_delay_s))
                await self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    async def fetch_once(self) -> list[Quote]:
        """One attempt: ``get`` and the provider's pure parser."""
        raise NotImplementedError

    async def aclose(self) -> None:
        if self._owns_client:
            await self.client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> bytes:
        """GET ``base_url + path`` once: the body of a 2xx answer, else SourceError."""
        url = self.base_url + path
        try:
            async with asyncio.timeout(self.timeout_s):
                resp = await self.client.get(
                    url, params=params, timeout=self.timeout_s, headers={"Accept": "*/*"}
                )
        except (httpx.TimeoutException, TimeoutError):
            raise SourceError(
                f"{self.name}: no answer from {url} within {self.timeout_s:g} s; "
                "the provider is slow or unreachable",
                source=self.name,
                retryable=True,
            ) from None
        except httpx.TransportError as exc:
            raise SourceError(
                f"{self.name}: cannot reach {url} ({type(exc).__name__}: {exc}); "
                "check the network and base_url",
                source=self.name,
                retryable=True,
            ) from None
        if resp.is_success:
            return resp.content
        status = resp.status_code
        raise SourceError(
            f"{self.name}: HTTP {status} from {url}: {self.error_message(status, resp.content)}",
            source=self.name,
            retryable=status == 429 or status >= 500,
            status=status,
            retry_after=_retry_after(resp.headers.get("retry-after")),
        )

    def error_message(self, status: int, body: bytes) -> str:
        """The provider's own words for an error answer. Default: a JSON ``message``."""
        return json_error(body, ("message", "error", "description"))


def json_error(body: bytes, keys: tuple[str, ...]) -> str:
    """The first of ``keys`` in a JSON error body (joined when several), else the text."""
    try:
        data: Any = load_json(body, "")
    except SourceError:
        data = None
    if isinstance(data, dict):
        parts = [str(data[k]) for k in keys if isinstance(data.get(k), str) and data[k]]
        if parts:
            return ": ".join(parts)
    text = body.decode("utf-8", "replace").strip()
    return text[:200] or "(empty body)"


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

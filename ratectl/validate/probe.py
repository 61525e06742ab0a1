"""The daemon's HTTP API as the checks use it (httpx, async).

Like :class:`ratectl.client.Client`, this is the one place where transport errors and
error envelopes become ratectl errors, with two differences a validator needs: replies
are parsed with ``parse_float=Decimal`` (the invariants compare exact decimals), and
:meth:`Probe.raw` returns any reply as it is (status, body), so a check can assert a
refusal (a request without a key must get 401).

Errors: no connection -> :class:`~ratectl.errors.Unreachable` (the run stops, exit 3);
401 with our key -> :class:`KeyRefused` (the run stops, exit 4); 403 ->
:class:`NotAllowed` (that check errors, exit 4); any other refusal -> :class:`Refused`
(status and code kept); no answer in time -> :class:`~ratectl.errors.CtlError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from ratectl.errors import AuthError, CtlError, Unreachable
from ratectl.settings import no_token_hint

USER_AGENT = "ratectl-validate/0.1.0"
NEEDS = "ratectl validate needs an admin key (rates:write, audit:read, status:read)"


class KeyRefused(AuthError):
    """401 with the key ratectl was given: nothing else can work."""


class NotAllowed(AuthError):
    """403: the key is valid but may not do this."""


class Refused(CtlError):
    """The daemon answered with an error envelope (or not an envelope at all)."""

    def __init__(self, message: str, status: int, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any  # parsed JSON (floats as Decimal), or None if the body is not JSON
    content_type: str

    def envelope(self) -> dict[str, Any] | None:
        """The guide's envelope ``{success, data, error, timestamp}``, if this is one."""
        b = self.body
        if isinstance(b, dict) and isinstance(b.get("success"), bool) and "timestamp" in b:
            return b
        return None


def loads(content: bytes) -> Any:
    try:
        return json.loads(content, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        return None


class Probe:
    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float,
        *,
        token_source: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        self.token_source = token_source
        self.last_status = 0  # of the latest reply (201 vs 200 for a lock)
        self._http = httpx.AsyncClient(
            base_url=url,
            headers={"User-Agent": USER_AGENT},
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def raw(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        key: bool | str = True,
    ) -> Reply:
        """One request; ``key``: True sends ours, False none, a string that one."""
        headers = {}
        token = self.token if key is True else key or None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            resp = await self._http.request(method, path, params=params, json=body, headers=headers)
        except httpx.TimeoutException:
            raise CtlError(
                f"{method} {path}: no answer within {self.timeout:g} s (raise --timeout)"
            ) from None
        except httpx.HTTPError as exc:
            raise Unreachable(
                f"cannot reach ratehubd at {self.url} ({_reason(exc)}); is it running? "
                "Start it with `ratehubd`, or point --url / RATECTL_URL at it"
            ) from None
        self.last_status = resp.status_code
        return Reply(resp.status_code, loads(resp.content), resp.headers.get("content-type", ""))

    async def api(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """The ``data`` of a successful envelope; any refusal raised as above."""
        reply = await self.raw(method, path, params=params, body=body)
        env = reply.envelope()
        if env is None:
            raise Refused(
                f"{method} {path}: HTTP {reply.status} ({reply.content_type or 'no type'}) "
                "is not a ratehubd API envelope; is --url pointing at ratehubd?",
                reply.status,
            )
        if env["success"] and reply.status < 300:
            return env.get("data")
        raise self._failure(method, path, reply.status, env)

    def _failure(self, method: str, path: str, status: int, env: dict[str, Any]) -> CtlError:
        error = env.get("error") or f"HTTP {status}"
        if status == 401:
            hint = f"key from {self.token_source}" if self.token else no_token_hint()
            return KeyRefused(f"the daemon refused the key: {error} ({hint})")
        if status == 403:
            return NotAllowed(f"{method} {path}: {error}; {NEEDS}")
        code = env.get("code")
        return Refused(f"{method} {path}: HTTP {status} {code or ''}: {error}", status, code)


def _reason(exc: httpx.HTTPError) -> str:
    cause: BaseException = exc
    for _ in range(8):  # the innermost cause names the socket error
        nxt = cause.__cause__ or cause.__context__
        if nxt is None:
            break
        cause = nxt
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    return (str(exc) or type(exc).__name__).splitlines()[0]

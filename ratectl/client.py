"""The HTTP client: the daemon's API as methods, its failures as ratectl errors.

Every request goes through ``Client._call``, the one place where transport errors and
error envelopes become :mod:`ratectl.errors` (connection -> 3, 401/403 -> 4, 409 -> 5,
anything else -> 1). Replies are checked against ``ratehubd.wire.Envelope``; the ``data``
is returned as the daemon sent it, so JSON output shows exactly the wire shape.

The WebSocket side (tail, watch) lives in :mod:`ratectl.stream`.
"""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import ValidationError

from ratectl.errors import AuthError, ConflictError, CtlError, Unreachable, UsageError
from ratectl.settings import no_token_hint
from ratehubd import wire

USER_AGENT = "ratectl/0.1.0"


class Client:
    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float,
        *,
        token_source: str = "",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.has_token = bool(token)
        self.token_source = token_source
        headers = {"User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- the API -------------------------------------------------------------------------

    def rates(self, store: str | None) -> list[Any]:
        return _a(list, self._call("GET", "/api/rates/get", params=_store(store)))

    def market(self) -> list[Any]:
        return _a(list, self._call("GET", "/api/rates/market"))

    def terminals(self, store: str) -> list[Any]:
        return _a(list, self._call("GET", f"/api/stores/{quote(store, safe='')}/terminals"))

    def stores(self) -> list[Any]:
        return _a(list, self._call("GET", "/api/stores"))

    def overrides(self, store: str | None) -> list[Any]:
        return _a(list, self._call("GET", "/api/rates/overrides", params=_store(store)))

    def set_rate(self, body: dict[str, Any]) -> dict[str, Any]:
        return _a(dict, self._call("POST", "/api/rates/set", json=body))

    def clear_rate(self, body: dict[str, Any]) -> dict[str, Any]:
        return _a(dict, self._call("POST", "/api/rates/clear", json=body))

    def status(self) -> dict[str, Any]:
        return _a(dict, self._call("GET", "/api/system/status"))

    # -- the one place errors are translated -----------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> Any:
        try:
            resp = self._http.request(method, path, params=params, json=json)
        except httpx.TimeoutException:
            after = "; the change may or may not have been applied" if method == "POST" else ""
            raise Unreachable(
                f"ratehubd at {self.url} did not answer within {self.timeout:g} s{after} "
                "(raise --timeout or RATECTL_TIMEOUT)"
            ) from None
        except httpx.InvalidURL as exc:
            raise UsageError(f"invalid URL {self.url!r}: {exc}") from None
        except httpx.HTTPError as exc:
            raise Unreachable(
                f"cannot reach ratehubd at {self.url} ({_reason(exc)}); is it running? "
                "Start it with `ratehubd`, or point --url / RATECTL_URL at it"
            ) from None
        env = self._envelope(resp, path)
        if env.success:
            return env.data
        raise self._failure(resp.status_code, env)

    def _envelope(self, resp: httpx.Response, path: str) -> wire.Envelope:
        try:
            return wire.Envelope.model_validate_json(resp.content)
        except ValidationError:
            raise CtlError(
                f"unexpected reply from {self.url}{path} (HTTP {resp.status_code}, "
                f"{resp.headers.get('content-type', 'no content type')}): not a ratehubd "
                "API envelope; is --url pointing at ratehubd?"
            ) from None

    def _failure(self, status: int, env: wire.Envelope) -> CtlError:
        message = env.error or f"request failed with HTTP {status}"
        if status == 401:
            hint = f"key from {self.token_source}" if self.has_token else no_token_hint()
            return AuthError(f"{message} ({hint})")
        if status == 403:
            return AuthError(message)
        if status == 409:
            return ConflictError(f"{message} (re-read with `ratectl overrides` and retry)")
        return CtlError(message)


T = TypeVar("T")


def _a(kind: type[T], data: Any) -> T:
    if not isinstance(data, kind):
        raise CtlError(
            f"the daemon sent {type(data).__name__} data where {kind.__name__} was expected; "
            "is ratectl older than the daemon?"
        )
    return data


def _store(store: str | None) -> dict[str, str] | None:
    return {"storeId": store} if store else None


def _reason(exc: httpx.HTTPError) -> str:
    cause: BaseException = exc
    for _ in range(8):  # the innermost cause names the socket error
        nxt = cause.__cause__ or cause.__context__
        if nxt is None:
            break
        cause = nxt
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror.lower()
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]

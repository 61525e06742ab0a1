"""The one exception tree of ratehub.

Every error the daemon raises on purpose is a :class:`RatehubError`. Each class
carries the HTTP status and WebSocket close code it maps to, and a stable
machine-readable ``code``; adapters translate them at the boundary in one place
(``adapters/http_api.py``, ``adapters/ws_server.py``)::

    RatehubError
    ├── ConfigError                 bad configuration file, env var or flag
    ├── InvalidRequest (400)        input that can never succeed as sent
    │   ├── UnknownPair
    │   └── InvalidRates            inverted, zero, negative, outside bounds
    ├── Unauthorized (401)          no key, or a key we do not know
    ├── Forbidden (403)             a key without the needed role or store
    ├── NotFound (404)
    ├── Conflict (409)              compare-and-set lost, lock already used, ...
    ├── RateLimited (429)
    ├── Unavailable (503)           pair stale, breaker open, draining
    ├── SourceError (502)           a market-data provider failed or answered an error shape
    └── ProtocolError               a WebSocket client broke the protocol (close 1008)
"""

from __future__ import annotations

from typing import Any, ClassVar


class RatehubError(Exception):
    """Root of every error ratehub raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    close_code: ClassVar[int] = 1011

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            out["details"] = self.details
        return out


class ConfigError(RatehubError):
    code = "config_error"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class InvalidRequest(RatehubError):
    status = 400
    code = "invalid_request"
    close_code = 1008


class UnknownPair(InvalidRequest):
    code = "unknown_pair"


class InvalidRates(InvalidRequest):
    code = "invalid_rates"


class Unauthorized(RatehubError):
    status = 401
    code = "unauthorized"
    close_code = 1008


class Forbidden(RatehubError):
    status = 403
    code = "forbidden"
    close_code = 1008


class NotFound(RatehubError):
    status = 404
    code = "not_found"


class Conflict(RatehubError):
    status = 409
    code = "conflict"


class RateLimited(RatehubError):
    status = 429
    code = "rate_limited"
    close_code = 1008

    def __init__(self, message: str, retry_after: float = 1.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class Unavailable(RatehubError):
    status = 503
    code = "unavailable"
    close_code = 1013


class SourceError(RatehubError):
    """A market-data source failed: transport error, timeout, HTTP error or an error payload.

    ``retryable`` says whether trying again may help (timeouts, 5xx, 429) or not (a bad key,
    an unknown currency: fix the configuration).
    """

    status = 502
    code = "source_error"

    def __init__(
        self, message: str, *, source: str, retryable: bool = False, **details: Any
    ) -> None:
        super().__init__(message, source=source, retryable=retryable, **details)
        self.source = source
        self.retryable = retryable


class ProtocolError(RatehubError):
    status = 400
    code = "protocol_error"
    close_code = 1008

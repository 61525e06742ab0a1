"""Service URLs (database, Redis): normalise them, and redact their secrets for display.

A URL's password (``user:secret@host``) and any secret-looking query parameter
(``password=``, ``sslpassword=``, ...) become ``***`` wherever a URL is shown or logged.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_PARAMS = ("password", "passwd", "pass", "secret", "token", "sslpassword")


def redact_url(url: str) -> str:
    """``url`` with its password and secret query parameters replaced by ``***``."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        userinfo, at, host = netloc.rpartition("@")
        if at and ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:{MASK}@{host}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            pairs = [(k, MASK if k.lower() in _SECRET_PARAMS else v) for k, v in pairs]
            query = urlencode(pairs, safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return f"<unparsable URL, {len(url)} characters>"


def database_kind(url: str) -> str:
    """``sqlite`` or ``postgresql`` (what the URL's scheme names)."""
    return url.split(":", 1)[0].split("+", 1)[0]


def normalize_database_url(url: str) -> str:
    """Accept the usual spellings of a PostgreSQL URL and select the psycopg 3 driver:
    ``postgres://`` and ``postgresql://`` become ``postgresql+psycopg://``."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def check_database_url(url: str) -> str:
    """The normalised URL, or ValueError saying what a valid one looks like."""
    url = normalize_database_url(url.strip())
    if not url:
        return url
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in ("sqlite", "postgresql+psycopg"):
        raise ValueError(
            "must be empty (SQLite in the state directory), sqlite:///PATH or "
            "postgresql+psycopg://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        )
    return url


def check_redis_url(url: str) -> str:
    url = url.strip()
    if url and urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            "must be empty (one node, in-process fan-out) or redis://[:PASSWORD@]HOST[:PORT]/DB "
            "(rediss:// for TLS)"
        )
    return url

"""``ratectl board-url``: the store rate board's URL, with a board key when asked.

A board key is a store key bound to one store and, by default, to the board page's own
origin, so it is good for nothing but that store's screen. Its secret is shown by the
daemon only once, so ratectl keeps the secrets of the board keys it made (one file per
daemon and store, 0600, under ``$XDG_STATE_HOME/ratectl/board-keys``) and reuses one
while the daemon still lists it as active with the same origins; otherwise it makes a new
one. Imported lazily (it pulls in httpx through the key client).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ratectl.errors import UsageError
from ratectl.keys import KeyClient


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"--base-url must be an http(s) URL such as http://ratehub:3000, got {url!r}"
        )
    return f"{parts.scheme}://{parts.netloc}".lower()


def board_url(
    base: str, store: str, token: str | None, pairs: Sequence[str], theme: str | None
) -> str:
    query: dict[str, str] = {}
    if pairs:
        query["pairs"] = ",".join(pairs)
    if theme:
        query["theme"] = theme
    if token:
        query["token"] = token  # last: the part not to paste into a ticket
    url = f"{base.rstrip('/')}/board/{quote(store, safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


def saved_key_path(env: Mapping[str, str], daemon_url: str, store: str) -> Path:
    xdg = env.get("XDG_STATE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "state"
    tag = hashlib.sha256(f"{daemon_url}\n{store}".encode()).hexdigest()[:16]
    return base / "ratectl" / "board-keys" / f"{tag}.json"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _save(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)


def board_key(
    client: KeyClient, path: Path, store: str, origins: Sequence[str]
) -> tuple[dict[str, Any], bool]:
    """The saved board key for ``store`` when the daemon still has it active with these
    origins, else a new one (saved). Returns ``(key, created)``; the key has ``secret``."""
    saved = _load(path)
    if saved is not None:
        listed = {k.get("id"): k for k in client.keys() if isinstance(k, dict)}
        live = listed.get(saved.get("id"))
        if (
            live is not None
            and not live.get("revokedAt")
            and sorted(live.get("origins") or []) == sorted(origins)
            and live.get("stores") == [store]
        ):
            return {**live, "secret": saved["secret"]}, False
    body = {"name": f"board {store}", "role": "store", "stores": [store], "origins": list(origins)}
    key = client.create_key(body)
    _save(path, {"id": key["id"], "secret": key["secret"], "store": store})
    return key, True

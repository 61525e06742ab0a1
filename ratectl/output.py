"""Writing results: data on stdout, messages on stderr.

``json``, ``jsonl`` and ``yaml`` are written straight to stdout, never through Rich, so
they are byte-for-byte what a script expects. ``table`` and ``wide`` go through a Rich
console that has no colour when ``NO_COLOR`` is set or stdout is not a terminal, and no
line wrapping when piped.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from rich.console import Console, RenderableType

DATA_FORMATS = ("json", "jsonl", "yaml")


PIPE_WIDTH = 10_000  # piped tables are never truncated (tables take only the width they need)


def console(file: IO[str] | None = None, *, stderr: bool = False) -> Console:
    out = file or (sys.stderr if stderr else sys.stdout)
    tty = out.isatty()
    width = None if tty else PIPE_WIDTH
    return Console(
        file=out,
        no_color=bool(os.environ.get("NO_COLOR")) or not tty,
        highlight=False,
        soft_wrap=not tty,
        width=width,
        emoji=False,
    )


@contextmanager
def progress(text: str, *, delay: float = 0.3, file: IO[str] | None = None) -> Iterator[None]:
    """A spinner on stderr while slow work runs: on a terminal only, and only once the
    work has taken ``delay`` seconds, so quick commands and pipes see nothing extra."""
    err = console(file, stderr=True)
    if not err.is_terminal:
        yield
        return
    status = err.status(text)
    timer = threading.Timer(delay, status.start)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        status.stop()


def message(text: str, *, style: str = "") -> None:
    """A message for the human, on stderr (coloured on a terminal unless NO_COLOR)."""
    err = console(stderr=True)
    err.print(text, style=style or None, markup=False)


def emit(
    data: Any,
    fmt: str,
    renderable: Callable[[], RenderableType] | None = None,
    *,
    out: IO[str] | None = None,
) -> None:
    """Write ``data`` in ``fmt``; tables come from ``renderable()``."""
    out = out or sys.stdout
    if fmt in DATA_FORMATS:
        out.write(dump(data, fmt))
        out.flush()
        return
    if renderable is None:
        out.write(dump(data, "yaml"))
        return
    print_renderable(renderable(), out)


def print_renderable(renderable: RenderableType, out: IO[str]) -> None:
    """Through Rich; when piped, without the padding Rich leaves at the ends of lines."""
    con = console(out)
    if con.is_terminal:
        con.print(renderable)
        return
    with con.capture() as captured:
        con.print(renderable)
    out.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
    out.flush()


def dump(data: Any, fmt: str) -> str:
    """``data`` as text in a data format (``jsonl``: one line per list item)."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if fmt == "jsonl":
        items: Iterable[Any] = data if isinstance(data, list) else [data]
        return "".join(
            json.dumps(i, ensure_ascii=False, separators=(",", ":")) + "\n" for i in items
        )
    if fmt == "yaml":
        return to_yaml(data)
    raise ValueError(f"not a data format: {fmt}")


def dump_stream(item: Any, fmt: str) -> str:
    """One item of a stream: jsonl one line; json pretty; yaml a document."""
    if fmt == "yaml":
        return "---\n" + to_yaml(item)
    if fmt == "json":
        return dump(item, "json")
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n"


# -- a tiny, safe YAML emitter for JSON-shaped data ----------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_ ./:@+-]*$")
_RESERVED = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def to_yaml(data: Any) -> str:
    """YAML 1.2 for JSON-shaped data (dict, list, str, int, float, bool, None).

    Strings are plain when unambiguous, else JSON-quoted (a JSON string is a valid
    YAML double-quoted scalar), so every value reads back with its JSON type.
    """
    return "\n".join(_lines(data, 0)) + "\n"


def _lines(data: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(data, dict) and data:
        out = []
        for key, value in data.items():
            k = _str(str(key))
            if _is_block(value):
                out.append(f"{pad}{k}:")
                out += _lines(value, indent + 2 if isinstance(value, dict) else indent)
            else:
                out.append(f"{pad}{k}: {_scalar(value)}")
        return out
    if isinstance(data, list) and data:
        out = []
        for item in data:
            if _is_block(item):
                inner = _lines(item, indent + 2)
                out.append(f"{pad}- {inner[0].lstrip()}")
                out += inner[1:]
            else:
                out.append(f"{pad}- {_scalar(item)}")
        return out
    return [f"{pad}{_scalar(data)}"]


def _is_block(value: Any) -> bool:
    return isinstance(value, dict | list) and bool(value)


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _str(str(value))


def _str(text: str) -> str:
    plain = _PLAIN.match(text) and text.lower() not in _RESERVED and text[-1] not in " :"
    if plain and ": " not in text and " #" not in text:
        return text
    return json.dumps(text, ensure_ascii=False)

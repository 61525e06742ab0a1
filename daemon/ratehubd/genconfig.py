"""Write a complete, commented configuration: every key with its default.

``ratehubd genconfig`` prints it and ``examples.toml`` is exactly its output (a
test keeps them equal), so the documented defaults cannot drift from the code.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, SecretStr

from ratehubd.config import Config

HEADER = """\
# ratehub configuration: every key, with its default.
# Precedence: command-line flag > environment variable > this file > default.
# Load with `ratehubd --config FILE`; check with `ratehubd checkconfig FILE`.
# Numbers that are money or fractions are strings so they stay exact decimals.
"""


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f'"{value}"'
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, tuple | list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _section(title: str, model: BaseModel) -> list[str]:
    """A table with its plain keys, then its sub-tables (nested models, dicts of them)."""
    lines = [f"[{title}]"]
    nested: list[str] = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if isinstance(value, BaseModel):
            nested += ["", *_section(f"{title}.{name}", value)]
            continue
        if isinstance(value, dict):
            if field.description:
                nested += ["", f'# [{title}.{name}."..."] {field.description}']
            for key, sub in value.items():
                nested += ["", *_section(f'{title}.{name}."{key}"', sub)]
            continue
        if field.description:
            lines.append(f"# {field.description}")
        if value is None or isinstance(value, SecretStr):
            lines.append(f"# {name} =")
        else:
            lines.append(f"{name} = {toml_value(value)}")
    return lines + nested


def generate(config: Config | None = None) -> str:
    cfg = config or Config()
    out = [HEADER]
    # Every section, in the order Config declares them (so a new one cannot be left out),
    # the long [sources] last; [stores] and [pairs] are tables of their own below.
    names = [n for n in Config.model_fields if n not in ("stores", "pairs", "sources")]
    for name in [*names, "sources"]:
        out.extend(_section(name, getattr(cfg, name)))
        out.append("")
    out += [
        "# Spreads per store (none by default): DEFAULT_SPREAD, then the pair's, then the",
        "# store's for every pair, then the store's for one pair. For example:",
        '# [stores."store123"]',
        '# spread = "0.025"',
        '# [stores."store123".pairs]',
        '# "USD/CAD" = "0.03"',
        "",
    ]
    out.append("# One table per currency pair; a pair not listed here is not served.")
    for pair, pc in cfg.pairs.items():
        out.extend(_section(f'pairs."{pair}"', pc))
        out.append("")
    return "\n".join(out).rstrip() + "\n"

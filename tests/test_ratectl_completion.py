"""Shell completion: the scripts in completions/ match the app, and each shell completes
commands, options and option values with them (run in a real shell when it is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import typer

from ratectl.cli import app
from ratectl.completion import FILES, script, walk
from tests.conftest import timeout

ROOT = Path(__file__).resolve().parent.parent
COMPLETIONS = ROOT / "completions"


@pytest.mark.parametrize("shell", sorted(FILES))
def test_completion_files_are_up_to_date(shell: str) -> None:
    path = COMPLETIONS / FILES[shell]
    expected = script(shell, typer.main.get_command(app))
    assert path.read_text() == expected, (
        f"{path} is stale: regenerate with `.venv/bin/python -m ratectl.completion`"
    )


def test_the_tree_has_every_command_and_its_options() -> None:
    nodes = {n.path: n for n in walk(typer.main.get_command(app))}
    assert set(nodes[""].commands) >= {
        "rates", "market", "set-rate", "clear-rate", "overrides", "status", "tail",
        "completion", "config", "context",
    }  # fmt: skip
    assert set(nodes["config"].commands) == {"init", "view"}
    assert set(nodes["context"].commands) == {"add", "use", "list"}
    output = next(o for o in nodes["rates"].options if "--output" in o.names)
    assert output.value == "table wide json jsonl yaml" and "-o" in output.names
    token = next(o for o in nodes[""].options if "--token-file" in o.names)
    assert token.value == "@files"
    assert nodes["completion"].words == ["bash", "zsh", "fish"]


CASES = [
    ("ratectl ", {"rates", "set-rate", "tail", "config", "context", "completion"}),
    ("ratectl con", {"config", "context"}),
    ("ratectl config ", {"init", "view"}),
    ("ratectl --url http://h:1 ta", {"tail"}),
    ("ratectl rates -o ", {"table", "wide", "json", "jsonl", "yaml"}),
    ("ratectl set-rate --valid-", {"--valid-for", "--valid-until"}),
    ("ratectl completion ", {"bash", "zsh", "fish"}),
]


def run_shell(argv: list[str], script_text: str) -> list[str]:
    done = subprocess.run(
        argv, input=script_text, capture_output=True, text=True, timeout=timeout(20), cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    outputs = done.stdout.split("\n@@\n")
    assert len(outputs) == len(CASES) + 1, done.stdout
    return outputs[:-1]


def needs(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")


def test_bash_completes() -> None:
    needs("bash")
    lines = ["source completions/ratectl.bash"]
    for line, _ in CASES:
        words = line.split(" ")
        quoted = " ".join(f"'{w}'" for w in words)
        lines.append(
            f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _ratectl; "
            'printf "%s\\n" "${COMPREPLY[@]}"; echo @@'
        )
    outputs = run_shell(["bash", "-s"], "\n".join(lines) + "\n")
    for (line, expected), got in zip(CASES, outputs, strict=True):
        assert set(got.split()) >= expected, line


def test_zsh_completes() -> None:
    needs("zsh")
    lines = [
        "compdef() { : }",
        "source completions/_ratectl",
        'compadd() { shift; print -l -- "$@"; }',
        "_files() { print -- FILES; }",
    ]
    for line, _ in CASES:
        words = " ".join(f"'{w}'" for w in line.split(" "))
        lines.append(f"words=({words}); CURRENT=${{#words}}; _ratectl_main; echo @@")
    outputs = run_shell(["zsh", "-s"], "\n".join(lines) + "\n")
    for (line, expected), got in zip(CASES, outputs, strict=True):
        assert set(got.split()) >= expected, line


def test_fish_completes() -> None:
    needs("fish")
    lines = ["source completions/ratectl.fish"]
    for line, _ in CASES:
        lines.append(f"complete -C '{line}' | string replace -r '\\t.*' ''; echo @@")
    outputs = run_shell(["fish"], "\n".join(lines) + "\n")
    for (line, expected), got in zip(CASES, outputs, strict=True):
        assert set(got.split()) >= expected, line

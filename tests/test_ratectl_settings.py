"""ratectl settings: flag > env > config file (context, then top level) > default, where
each value came from, the key's search order, and the config/context commands."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ratectl.cli import app
from ratectl.errors import AuthError, CtlError, UsageError
from ratectl.settings import DEFAULT_URL, resolve

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # conftest's scratch_home has cleared the environment; config files go in tmp_path
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config" / "ratectl" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_with_nothing_configured() -> None:
    s = resolve({}, env={})
    assert (s.url.value, s.url.source) == (DEFAULT_URL, "default")
    assert (s.output.value, s.timeout.value, s.store.value) == ("table", 10.0, None)
    assert s.token.value is None and s.context.value is None


def test_precedence_flag_env_context_file_default(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        'current_context = "prod"\nstore = "top"\ntimeout = 3\n'
        '[contexts.prod]\nurl = "http://prod:3000"\nstore = "ctx-store"\n',
    )
    s = resolve({"config": str(path)}, env={})
    assert (s.url.value, s.store.value, s.timeout.value) == ("http://prod:3000", "ctx-store", 3.0)
    assert s.url.source == f"config {path} [contexts.prod]"
    assert s.timeout.source == f"config {path}"
    s = resolve({"config": str(path)}, env={"RATECTL_URL": "http://env:1", "RATECTL_STORE": "e"})
    assert (s.url.value, s.url.source) == ("http://env:1", "env RATECTL_URL")
    assert s.store.value == "e"
    s = resolve({"config": str(path), "url": "http://flag:2/"}, env={"RATECTL_URL": "http://e:1"})
    assert (s.url.value, s.url.source) == ("http://flag:2", "flag --url")


def test_context_from_flag_or_env_must_exist(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[contexts.a]\nurl = "http://a:1"\n')
    assert resolve({"config": str(path), "context": "a"}, env={}).url.value == "http://a:1"
    env = {"RATECTL_CONTEXT": "a"}
    assert resolve({"config": str(path)}, env=env).context.source == "env RATECTL_CONTEXT"
    with pytest.raises(UsageError, match="unknown context 'b'.*known: a"):
        resolve({"config": str(path), "context": "b"}, env={})


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        ({"url": "localhost:3000"}, {}, "not an HTTP URL"),
        ({}, {"RATECTL_TIMEOUT": "soon"}, "RATECTL_TIMEOUT"),
        ({"timeout": 0}, {}, "must be a number of seconds > 0"),
        ({}, {"RATECTL_OUTPUT": "xml"}, "not one of table, wide, json, jsonl, yaml"),
    ],
)
def test_bad_values_name_their_source(
    flags: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        resolve(flags, env=env)


def test_bad_config_file_says_which_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[contexts.a]\nuri = 'http://a:1'\n")
    with pytest.raises(CtlError, match=r"unknown key 'uri' in \[contexts.a\]; accepted: url"):
        resolve({"config": str(path)}, env={})
    path.write_text("this is = = not toml")
    with pytest.raises(CtlError, match="cannot read config file"):
        resolve({"config": str(path)}, env={})


def test_token_search_order(tmp_path: Path) -> None:
    flag_file = tmp_path / "flag.key"
    flag_file.write_text("from-flag\n")
    env_file = tmp_path / "env.key"
    env_file.write_text("from-env-file")
    state = tmp_path / "daemon-state"
    state.mkdir()
    (state / "admin.key").write_text("rh_local_admin\n")
    env = {
        "RATECTL_TOKEN": "from-env",
        "RATECTL_TOKEN_FILE": str(env_file),
        "API_SECRET_KEY": "from-guide-var",
        "RATEHUB_STATE_DIR": str(state),
    }
    order = [resolve({"token_file": str(flag_file)}, env=env).token.value]
    for drop in ("RATECTL_TOKEN", "RATECTL_TOKEN_FILE", "API_SECRET_KEY"):
        order.append(resolve({}, env=env).token.value)
        env.pop(drop)
    assert order == ["from-flag", "from-env", "from-env-file", "from-guide-var"]
    local = resolve({}, env=env).token
    assert (local.value, local.source) == (
        "rh_local_admin",
        f"file {state / 'admin.key'} (the local daemon's admin key)",
    )


def test_local_admin_key_is_never_sent_to_a_remote_daemon(tmp_path: Path) -> None:
    state = tmp_path / "s"
    state.mkdir()
    (state / "admin.key").write_text("secret")
    env = {"RATEHUB_STATE_DIR": str(state)}
    assert resolve({"url": "https://rates.example.com"}, env=env).token.value is None
    assert resolve({"url": "http://localhost:3000"}, env=env).token.value == "secret"


def test_xdg_state_home_finds_the_admin_key(tmp_path: Path) -> None:
    (tmp_path / "xdg" / "ratehub").mkdir(parents=True)
    (tmp_path / "xdg" / "ratehub" / "admin.key").write_text("k1")
    assert resolve({}, env={"XDG_STATE_HOME": str(tmp_path / "xdg")}).token.value == "k1"


def test_missing_or_empty_token_file_is_an_auth_error(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="cannot read the key file"):
        resolve({"token_file": str(tmp_path / "nope")}, env={})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(AuthError, match="is empty"):
        resolve({}, env={"RATECTL_TOKEN_FILE": str(tmp_path / "empty")})


# -- config and context commands ---------------------------------------------------------------


def test_config_init_writes_toml_and_refuses_to_overwrite(tmp_path: Path) -> None:
    r = runner.invoke(app, ["--url", "http://127.0.0.1:4000", "config", "init", "--store", "s1"])
    assert r.exit_code == 0, r.output
    path = tmp_path / "config" / "ratectl" / "config.toml"
    assert f"wrote {path}" in r.stderr and r.stdout == ""
    data = tomllib.loads(path.read_text())
    assert data["current_context"] == "local"
    assert data["contexts"]["local"] == {"url": "http://127.0.0.1:4000", "store": "s1"}
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = runner.invoke(app, ["config", "init"])
    assert again.exit_code == 1 and "already exists" in again.stderr
    assert runner.invoke(app, ["config", "init", "--force"]).exit_code == 0


def test_config_view_redacts_and_shows_sources(tmp_path: Path) -> None:
    env = {"RATECTL_TOKEN": "super-secret-value", "RATECTL_URL": "http://10.0.0.5:3000"}
    r = runner.invoke(app, ["config", "view", "--show-source"], env=env)
    assert r.exit_code == 0, r.output
    assert "super-secret-value" not in r.output
    rows = {line.split()[0]: line.split()[1:] for line in r.stdout.splitlines()[1:]}
    assert rows["url"] == ["http://10.0.0.5:3000", "env", "RATECTL_URL"]
    assert rows["token"] == ["<redacted>", "env", "RATECTL_TOKEN"]
    assert rows["output"] == ["table", "default"]
    plain = json.loads(runner.invoke(app, ["config", "view", "-o", "json"], env=env).stdout)
    assert (plain["token"], plain["timeout"], plain["store"]) == ("<redacted>", 10.0, None)
    sourced = runner.invoke(app, ["config", "view", "--show-source", "-o", "json"], env=env)
    assert json.loads(sourced.stdout)["url"] == {
        "value": "http://10.0.0.5:3000",
        "source": "env RATECTL_URL",
    }


def test_contexts_add_use_list(tmp_path: Path) -> None:
    key = tmp_path / "prod.key"
    r = runner.invoke(
        app, ["context", "add", "prod", "--url", "https://prod:3000", "--token-file", str(key)]
    )
    assert r.exit_code == 0, r.output
    assert "added context 'prod' (current)" in r.stderr
    r = runner.invoke(app, ["context", "add", "lab", "--url", "http://lab:3000", "--store", "s7"])
    assert "added context 'lab' in" in r.stderr
    listed = runner.invoke(app, ["context", "list"]).stdout.splitlines()
    assert listed[0].split() == ["CURRENT", "NAME", "URL", "STORE", "TOKEN", "FILE"]
    assert listed[1].split() == ["lab", "http://lab:3000", "s7", "-"]
    assert listed[2].split() == ["*", "prod", "https://prod:3000", "-", str(key)]
    assert runner.invoke(app, ["context", "use", "lab"]).exit_code == 0
    view = json.loads(runner.invoke(app, ["config", "view", "-o", "json"]).stdout)
    assert (view["context"], view["url"], view["store"]) == ("lab", "http://lab:3000", "s7")
    data = json.loads(runner.invoke(app, ["context", "list", "-o", "json"]).stdout)
    assert [c["name"] for c in data if c["current"]] == ["lab"]
    bad = runner.invoke(app, ["context", "use", "nope"])
    assert bad.exit_code == 1 and "no context 'nope'" in bad.stderr and "lab, prod" in bad.stderr


def test_context_add_rejects_a_bad_url() -> None:
    r = runner.invoke(app, ["context", "add", "x", "--url", "ftp://x"])
    assert r.exit_code == 2 and "not an HTTP URL" in r.stderr


def test_unknown_context_flag_is_a_usage_error() -> None:
    r = runner.invoke(app, ["--context", "ghost", "rates"])
    assert r.exit_code == 2
    assert "unknown context 'ghost'" in r.stderr and "ratectl context add" in r.stderr


def test_context_token_file_comes_before_api_secret_key(tmp_path: Path) -> None:
    key = tmp_path / "ctx.key"
    key.write_text("ctx-key\n")
    path = write_config(
        tmp_path, f'current_context = "c"\n[contexts.c]\nurl = "http://c:1"\ntoken_file = "{key}"\n'
    )
    token = resolve({"config": str(path)}, env={"API_SECRET_KEY": "guide"}).token
    assert token.value == "ctx-key"
    assert token.source == f"file {key} (config {path} [contexts.c])"

"""Configuration: flag > env > file > default, the guide's environment variables, and
errors that list every problem with its key and where the value came from."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ratehubd.config import Config, load_config, state_dir
from ratehubd.errors import ConfigError

D = Decimal


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ratehub.toml"
    path.write_text(text)
    return path


def problems(**kw: Any) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_config(**kw)
    assert err.value.message.startswith("invalid configuration:")
    for p in err.value.problems:
        assert p in err.value.message
    return err.value.problems


# -- precedence -----------------------------------------------------------------------------


def test_defaults_without_file_env_or_flags() -> None:
    cfg = load_config(None, env={})
    assert cfg == Config()
    assert (cfg.server.host, cfg.server.port, cfg.server.hub_port) == ("127.0.0.1", 3000, 3001)
    assert cfg.engine.default_spread == D("0.02")
    assert sorted(cfg.pairs) == ["BTC/CAD", "ETH/CAD", "EUR/CAD", "GBP/CAD", "USD/CAD"]


def test_flag_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[server]\nhost = "10.0.0.1"\nport = 4000\nhub_port = 4001\nlog_level = "debug"\n',
    )
    env = {"API_HOST": "10.0.0.2:5000", "WEBSOCKET_PORT": "5001"}
    flags = {"server": {"port": 6000}}
    cfg = load_config(path, env=env, flags=flags)
    assert cfg.server.port == 6000  # flag
    assert (cfg.server.host, cfg.server.hub_port) == ("10.0.0.2", 5001)  # env
    assert cfg.server.log_level == "debug"  # file
    assert cfg.server.drain_timeout_s == 10.0  # default
    assert load_config(path, env={}).server.port == 4000
    assert load_config(None, env=env).server.port == 5000


def test_file_layers_merge_per_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[engine]\nmin_spread = "0.002"\n[pairs."usd-cad"]\nstart = "1.36"\ntick = "0.0001"\n',
    )
    cfg = load_config(path, env={"DEFAULT_SPREAD": "0.03"})
    assert (cfg.engine.min_spread, cfg.engine.default_spread) == (D("0.002"), D("0.03"))
    assert cfg.engine.max_spread == D("0.10")
    # A pairs table replaces the defaults, and its names are normalized.
    assert list(cfg.pairs) == ["USD/CAD"]


def test_ratehub_config_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[hub]\nqueue_frames = 16\n")
    assert load_config(None, env={"RATEHUB_CONFIG": str(path)}).hub.queue_frames == 16


# -- the guide's environment variables ------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "where", "value"),
    [
        ({"API_HOST": "localhost:3000"}, ("server", "host"), "localhost"),
        ({"API_HOST": "localhost:3000"}, ("server", "port"), 3000),
        ({"API_HOST": "0.0.0.0"}, ("server", "host"), "0.0.0.0"),
        ({"API_HOST": "0.0.0.0"}, ("server", "port"), 3000),
        ({"API_HOST": ":8080"}, ("server", "port"), 8080),
        ({"API_HOST": ":8080"}, ("server", "host"), "127.0.0.1"),
        ({"API_HOST": "[::1]:4000"}, ("server", "host"), "::1"),
        ({"API_HOST": "[::1]:4000"}, ("server", "port"), 4000),
        ({"API_HOST": "::1"}, ("server", "host"), "::1"),
        ({"WEBSOCKET_PORT": "3001"}, ("server", "hub_port"), 3001),
        ({"WEBSOCKET_PORT": "-1"}, ("server", "hub_port"), -1),
        ({"WEBSOCKET_HEARTBEAT_INTERVAL": "30000"}, ("hub", "heartbeat_interval_ms"), 30000),
        ({"RATE_UPDATE_FREQUENCY": "30000"}, ("feed", "update_frequency_ms"), 30000),
        ({"DEFAULT_SPREAD": "0.02"}, ("engine", "default_spread"), D("0.02")),
        ({"DEFAULT_SPREAD": "0.035"}, ("engine", "default_spread"), D("0.035")),
        (
            {"CORS_ORIGINS": "http://localhost:3000,http://localhost:3001"},
            ("server", "cors_origins"),
            ("http://localhost:3000", "http://localhost:3001"),
        ),
        (
            {"CORS_ORIGINS": " https://a.example , ,https://b.example"},
            ("server", "cors_origins"),
            ("https://a.example", "https://b.example"),
        ),
        ({"DEBUG_WEBSOCKET": "true"}, ("server", "debug_websocket"), True),
        ({"DEBUG_WEBSOCKET": "1"}, ("server", "debug_websocket"), True),
        ({"DEBUG_WEBSOCKET": "OFF"}, ("server", "debug_websocket"), False),
        ({"RATEHUB_STATE_DIR": "/var/lib/ratehub"}, ("server", "state_dir"), "/var/lib/ratehub"),
    ],
)
def test_guide_env_vars_map_onto_config_keys(
    env: dict[str, str], where: tuple[str, str], value: Any
) -> None:
    section, key = where
    assert getattr(getattr(load_config(None, env=env), section), key) == value


def test_api_secret_key_is_held_secret() -> None:
    cfg = load_config(None, env={"API_SECRET_KEY": "your_secret_key"})
    assert cfg.security.api_secret_key is not None
    assert cfg.security.api_secret_key.get_secret_value() == "your_secret_key"
    assert "your_secret_key" not in repr(cfg)
    assert "your_secret_key" not in cfg.model_dump_json()


def test_guide_deployment_block_loads() -> None:
    env = {
        "API_HOST": "localhost:3000",
        "NODE_ENV": "development",
        "WEBSOCKET_PORT": "3001",
        "WEBSOCKET_HEARTBEAT_INTERVAL": "30000",
        "RATE_UPDATE_FREQUENCY": "30000",
        "DEFAULT_SPREAD": "0.02",
        "API_SECRET_KEY": "your_secret_key",
        "CORS_ORIGINS": "http://localhost:3000,http://localhost:3001",
    }
    cfg = load_config(None, env=env)
    assert cfg.heartbeat.total_seconds() == 30
    assert cfg.feed.update_frequency_ms == 30000


def test_empty_env_values_are_ignored() -> None:
    assert load_config(None, env={"API_HOST": "", "DEFAULT_SPREAD": ""}) == Config()


def test_default_spread_reaches_every_pair_without_its_own() -> None:
    policies = load_config(None, env={"DEFAULT_SPREAD": "0.03"}).pair_policies()
    assert {p.spread for p in policies.values()} == {D("0.03")}


# -- errors ---------------------------------------------------------------------------------


def test_every_problem_is_listed_with_its_key_and_origin(tmp_path: Path) -> None:
    path = write(tmp_path, '[hub]\nqueue_frames = 1\n[feed]\nkind = "carrier-pigeon"\n')
    env = {
        "API_HOST": "localhost:abc",
        "WEBSOCKET_PORT": "70000",
        "WEBSOCKET_HEARTBEAT_INTERVAL": "soon",
        "DEBUG_WEBSOCKET": "maybe",
        "DEFAULT_SPREAD": "two percent",
    }
    got = problems(path=path, env=env, flags={"server": {"drain_timeout_s": -1}})
    assert len(got) == 8
    expect = {
        "server.port": ("'abc'", "environment variable API_HOST"),
        "server.hub_port": ("65535", "environment variable WEBSOCKET_PORT"),
        "hub.heartbeat_interval_ms": (
            "'soon'",
            "environment variable WEBSOCKET_HEARTBEAT_INTERVAL",
        ),
        "server.debug_websocket": ("boolean", "environment variable DEBUG_WEBSOCKET"),
        "engine.default_spread": ("'two percent'", "environment variable DEFAULT_SPREAD"),
        "hub.queue_frames": ("greater than or equal to 4", f"file {path}"),
        "feed.kind": ("'simulated'", f"file {path}"),
        "server.drain_timeout_s": ("greater than 0", "command-line flag"),
    }
    for key, (what, origin) in expect.items():
        [line] = [p for p in got if p.startswith(key + ":")]
        assert what in line, line
        assert line.endswith(f"(from {origin})"), line


@pytest.mark.parametrize(
    ("text", "key", "hint"),
    [
        ("[server]\nprot = 1\n", "server.prot", "the keys here are host, port, hub_port"),
        ("[servr]\nport = 1\n", "servr", "the keys here are server, hub, feed"),
        (
            '[pairs."USD/CAD"]\nstart = "1.35"\ntick = "0.0001"\ntik = 1\n',
            "pairs.USD/CAD.tik",
            "start, tick",
        ),
    ],
)
def test_unknown_keys_are_rejected_naming_the_known_ones(
    tmp_path: Path, text: str, key: str, hint: str
) -> None:
    [line] = problems(path=write(tmp_path, text), env={})
    assert line.startswith(f"{key}: unknown key; ")
    assert hint in line
    assert line.endswith(f"(from file {tmp_path / 'ratehub.toml'})")


def test_unknown_flag_section() -> None:
    [line] = problems(env={}, flags={"sever": {"port": 1}})
    assert line.startswith("sever: unknown key") and line.endswith("(from command-line flag)")


@pytest.mark.parametrize(
    ("env", "key", "text"),
    [
        ({"DEFAULT_SPREAD": "0.2"}, "engine.default_spread", "0.2 is outside [engine.min_spread"),
        ({"DEFAULT_SPREAD": "0"}, "engine.default_spread", "fraction between 0 and 1"),
        ({"DEFAULT_SPREAD": "2"}, "engine.default_spread", "0.02 means 2 %"),
    ],
)
def test_spread_must_be_a_fraction_within_bounds(env: dict[str, str], key: str, text: str) -> None:
    [line] = problems(env=env)
    assert line.startswith(key + ":")
    assert text in line
    assert line.endswith("(from environment variable DEFAULT_SPREAD)")


def test_cross_key_rules(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[overrides]\ndefault_lifetime_s = 7200\nmax_lifetime_s = 3600\n"
        '[pairs."USD/CAD"]\nstart = "1.35"\ntick = "2"\nspread = "0.5"\n',
    )
    got = problems(path=path, env={})
    assert [p.split(":")[0] for p in got] == [
        "pairs.USD/CAD.spread",
        "pairs.USD/CAD.tick",
        "overrides.default_lifetime_s",
    ]
    assert "exceeds overrides.max_lifetime_s 3600" in got[2]
    min_max = problems(env={}, flags={"engine": {"min_spread": "0.05", "max_spread": "0.01"}})
    assert min_max == ["engine.max_spread: 0.01 must exceed min_spread (from command-line flag)"]


def test_a_bad_pair_name_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[pairs."dollars"]\nstart = "1.35"\ntick = "0.0001"\n')
    [line] = problems(path=path, env={})
    assert line.startswith("pairs:")
    assert "USD/CAD, USDCAD or usd-cad" in line


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(write(tmp_path, "[server\nport = 1"), env={})


def test_state_dir_follows_xdg(tmp_path: Path) -> None:
    assert state_dir("~/x") == Path.home() / "x"
    assert state_dir("", env={"XDG_STATE_HOME": str(tmp_path)}) == tmp_path / "ratehub"
    assert state_dir("", env={}) == Path.home() / ".local" / "state" / "ratehub"

"""Settings: defaults, ini values, REPOPROXY_* overrides, typed parsing, clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from repoproxy.errors import ConfigError
from repoproxy.settings import build_settings, env_name, raw_settings


def test_embedded_defaults() -> None:
    s = build_settings(raw_settings({}, {}))
    assert s.root == Path("var")
    assert s["repoproxy.host"] == "127.0.0.1"
    assert s["repoproxy.port"] == 8080
    assert s["repoproxy.max_upload_size"] == 1024**3


def test_environment_wins_over_ini_and_is_typed() -> None:
    raw = raw_settings({"repoproxy.port": "9000", "repoproxy.plugins.block": "a b"},
                       {"REPOPROXY_PORT": "9100", "REPOPROXY_LOG_REQUESTS": "no"})
    s = build_settings(raw)
    assert s["repoproxy.port"] == 9100
    assert s["repoproxy.log_requests"] is False
    assert s["repoproxy.plugins.block"] == ("a", "b")


def test_env_names() -> None:
    assert env_name("repoproxy.max_upload_size") == "REPOPROXY_MAX_UPLOAD_SIZE"
    assert env_name("repoproxy.plugins.block") == "REPOPROXY_PLUGINS__BLOCK"
    assert env_name("repoproxy_watch.root") == "REPOPROXY_WATCH__ROOT"


@pytest.mark.parametrize(("given", "key"), [
    ({"repoproxy.port": "eighty"}, "repoproxy.port"),
    ({"repoproxy.port": "70000"}, "repoproxy.port"),
    ({"repoproxy.max_upload_size": "-1"}, "repoproxy.max_upload_size"),
    ({"repoproxy.log_requests": "maybe"}, "repoproxy.log_requests"),
])
def test_bad_values_name_the_key(given: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_settings(raw_settings(given, {}))
    assert str(info.value).startswith(key)
    assert "\n" not in str(info.value)


def test_unknown_keys_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        build_settings(raw_settings({"repoproxy.prot": "1"}, {"REPOPROXY_PROT": "2"}))
    assert "unknown setting repoproxy.prot" in caplog.text
    assert "unknown environment setting REPOPROXY_PROT" in caplog.text


def test_plugin_defaults_are_parsed_from_env() -> None:
    raw = raw_settings({}, {"REPOPROXY_X__QUIET": "2.5"})
    s = build_settings(raw, [{"repoproxy_x.quiet": 1.0}])
    assert s["repoproxy_x.quiet"] == 2.5

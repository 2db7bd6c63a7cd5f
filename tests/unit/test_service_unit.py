"""etc/repoproxy.service parses as an ini file and runs commands and options that exist."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

from click.testing import CliRunner

from repoproxy.cli import build_cli

UNIT = Path(__file__).resolve().parents[2] / "etc" / "repoproxy.service"


def test_unit_parses_and_its_command_exists() -> None:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read_string(UNIT.read_text())
    assert {"Unit", "Service", "Install"} <= set(parser.sections())
    service = parser["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "repoproxy"
    assert argv[1] == "serve"
    # every option of the command line is an option of `repoproxy serve`
    serve = build_cli().commands["serve"]
    known = {opt for param in serve.params for opt in getattr(param, "opts", [])}
    assert {a for a in argv[2:] if a.startswith("-")} <= known
    result = CliRunner().invoke(build_cli(), ["serve", "--help"])
    assert result.exit_code == 0
    # the environment names real settings
    from repoproxy.settings import CORE_DEFAULTS, env_name

    names = {env_name(k) for k in CORE_DEFAULTS}
    for assignment in shlex.split(service.get("Environment", "")):
        key = assignment.split("=", 1)[0]
        assert key.startswith("PYTHON") or key in names, key
    assert "production.ini" in service["ExecStart"]
    assert (UNIT.parent / "production.ini").is_file()

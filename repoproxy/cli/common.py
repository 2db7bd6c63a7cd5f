"""What every server-side command shares: logging set-up, ini files, opening the core."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from repoproxy.errors import RepoproxyError

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

log = logging.getLogger("repoproxy")


def setup_logging(level: int = logging.INFO, ini: Path | None = None) -> None:
    """Logging from the ini file's ``[loggers]`` or to stderr; every handler redacts tokens."""
    from repoproxy.web.redact import install_redaction

    if ini is not None and "[loggers]" in ini.read_text():
        # here: ~14 ms (logging.handlers, socket...) that most commands never need
        from logging.config import fileConfig

        fileConfig(str(ini), disable_existing_loggers=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(LineFormatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
        logging.basicConfig(level=level, handlers=[handler])
    install_redaction()


class LineFormatter(logging.Formatter):
    """``logging.Formatter`` whose ``%(asctime)s`` is made once per second, not per record.

    The stock one calls ``localtime()`` and ``strftime()`` for every line: with the access
    log on (the default), a sixth of a line's cost on a server answering thousands of
    requests a second. Same text: the date to the second, then the milliseconds."""

    _second: tuple[int, str] | None = None

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        whole = int(record.created)
        cached = self._second  # one tuple read: threads may format at once
        if cached is None or cached[0] != whole:
            cached = (whole, time.strftime(self.default_time_format,
                                           self.converter(record.created)))
            self._second = cached
        msec = self.default_msec_format
        return msec % (cached[1], record.msecs) if msec else cached[1]


def ini_settings(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(app settings, server settings) of a PasteDeploy ini file."""
    import configparser

    from paste.deploy import appconfig

    path = path.resolve()
    if not path.is_file():
        raise click.ClickException(f"config file {path} does not exist")
    app = dict(appconfig(f"config:{path}"))
    parser = configparser.ConfigParser(defaults={"here": str(path.parent)})
    parser.read(path)
    server = dict(parser["server:main"]) if parser.has_section("server:main") else {}
    return app, server


def open_services(root: Path | None = None, config: Path | None = None,
                  extra: dict[str, Any] | None = None, must_exist: bool = False) -> Any:
    """Core for a server-side command: ini file, then flags (flags win over the env too).

    ``must_exist``: read-only commands refuse a root that has no catalog yet instead of
    creating an empty one (a typo in ``--root`` must not look like an empty server).
    """
    from repoproxy.domain.core import load_core
    from repoproxy.settings import CORE_DEFAULTS, env_name, raw_settings

    settings: dict[str, Any] = {}
    if config is not None:
        settings.update(ini_settings(config)[0])
    env = dict(os.environ)
    if root is not None:
        settings["repoproxy.root"] = str(root)
        env.pop("REPOPROXY_ROOT", None)
    for key, value in (extra or {}).items():
        settings[key] = value
        env.pop(env_name(key), None)  # a flag on the command line wins over the environment
    if must_exist:
        where = Path(raw_settings(settings, env).get("repoproxy.root",
                                                     CORE_DEFAULTS["repoproxy.root"]))
        if not (where.expanduser() / "catalog.db").is_file():
            raise click.ClickException(f"{where} is not a repoproxy server root (no catalog.db)")
    try:
        return load_core(settings, env)
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None


root_option = click.option("--root", type=click.Path(path_type=Path), default=None,
                           help="Server root (default ./var, or REPOPROXY_ROOT).")
config_option = click.option("-c", "--config", type=click.Path(path_type=Path), default=None,
                             help="PasteDeploy ini file (see etc/).")


def check_startup(services: Core) -> None:
    """Settings that are otherwise read per request, checked once before serving.

    A bad value stops start-up with one line naming the key instead of failing every request.
    """
    from repoproxy.builtin.predefined import parse as parse_predefined
    from repoproxy.web.security import parse_bindings

    settings = services.settings
    for key in ("repoproxy.auth.unauthenticated_role_bindings",
                "repoproxy.auth.authenticated_role_bindings"):
        parse_bindings(settings[key], key)
    parse_predefined(settings["repoproxy.auth.predefined_tokens"])

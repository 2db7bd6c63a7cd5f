"""The ``repoproxy`` command line: server-side commands here, client commands in client_cli."""

from __future__ import annotations

import logging
import logging.config
import os
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .errors import RepoproxyError

log = logging.getLogger("repoproxy")


def setup_logging(level: int = logging.INFO, ini: Path | None = None) -> None:
    if ini is not None and "[loggers]" in ini.read_text():
        logging.config.fileConfig(str(ini), disable_existing_loggers=False)
        return
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s [%(name)s] %(message)s")


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
                  extra: dict[str, Any] | None = None) -> Any:
    """Services for a server-side command: ini file, then flags (flags win over the env too)."""
    from .services import load_services
    from .settings import env_name

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
    try:
        return load_services(settings, env)
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None


root_option = click.option("--root", type=click.Path(path_type=Path), default=None,
                           help="Server root (default ./var, or REPOPROXY_ROOT).")
config_option = click.option("-c", "--config", type=click.Path(path_type=Path), default=None,
                             help="PasteDeploy ini file (see etc/).")


@click.group()
@click.version_option(__version__, prog_name="repoproxy")
def cli() -> None:
    """repoproxy: a self-hosted conda package server."""


@cli.command()
@root_option
@config_option
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8080).")
def serve(root: Path | None, config: Path | None, host: str | None, port: int | None) -> None:
    """Serve channels until SIGTERM/SIGINT."""
    from .app import make_app
    from .plugins import describe_plugins
    from .server import recover
    from .server import serve as run

    setup_logging(ini=config)
    server: dict[str, Any] = ini_settings(config)[1] if config else {}
    extra = {}
    if host or server.get("host"):
        extra["repoproxy.host"] = host or server["host"]
    if port is not None or server.get("port"):
        extra["repoproxy.port"] = str(port if port is not None else server["port"])
    services = open_services(root, config, extra)
    for plugin in describe_plugins(services.pm):
        log.info("plugin %s %s loaded (%s)", plugin["name"], plugin["version"] or "",
                 ", ".join(plugin["hooks"]))
    log.info("root %s", services.store.root)
    recover(services)
    app = make_app(services)
    run(services, app, services.settings["repoproxy.host"], services.settings["repoproxy.port"])


@cli.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--channel", "channel", required=True, help="Target channel.")
@click.option("--create", is_flag=True, help="Create the channel if it does not exist.")
@click.option("--privacy", default="public", show_default=True,
              type=click.Choice(["public", "authenticated", "private"]))
@click.option("--force", is_flag=True, help="Replace files that are already in the channel.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: cores).")
@root_option
@config_option
def import_(directory: Path, channel: str, create: bool, privacy: str, force: bool,
            workers: int | None, root: Path | None, config: Path | None) -> None:
    """Import a directory of packages (e.g. a conda-index tree) into a channel, offline."""
    from .bulk import find_packages, import_packages
    from .views.api import create_channel

    setup_logging(logging.WARNING)
    services = open_services(root, config)
    try:
        if services.catalog().get_channel(channel) is None:
            if not create:
                raise click.ClickException(
                    f"channel {channel!r} does not exist (use --create to create it)")
            create_channel(services, channel, privacy=privacy)
        files = find_packages(directory)
        with click.progressbar(length=len(files), label=f"importing into {channel}",
                               file=sys.stderr) as bar:
            result = import_packages(services, channel, files, force=force, workers=workers,
                                     progress=bar.update)
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None
    for path, why in result.failed:
        click.echo(f"refused {path}: {why}", err=True)
    click.echo(f"{len(result.added)} imported, {len(result.skipped)} already present, "
               f"{len(result.failed)} refused")
    if result.failed:
        sys.exit(1)


@cli.command("plugins")
@root_option
@config_option
def plugins_cmd(root: Path | None, config: Path | None) -> None:
    """List loaded plugins with their versions and hooks."""
    import json

    from .plugins import describe_plugins

    services = open_services(root, config)
    click.echo(json.dumps(describe_plugins(services.pm), indent=2))


def build_cli() -> click.Group:
    from . import access_cli, client_cli
    from .plugins import get_plugin_manager
    from .settings import raw_settings

    client_cli.register(cli)
    access_cli.register(cli)
    try:
        pm = get_plugin_manager(raw_settings())
        pm.hook.repoproxy_register_commands(cli=cli)
    except Exception as e:  # a broken plugin must not make the CLI unusable
        click.echo(f"warning: plugins not loaded: {e}", err=True)
    return cli


def main() -> None:
    build_cli()(prog_name="repoproxy")

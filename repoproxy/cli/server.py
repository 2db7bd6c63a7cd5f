"""Server-side commands: serve, import, plugins."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from repoproxy.cli.common import (
    check_startup,
    config_option,
    ini_settings,
    open_services,
    root_option,
    setup_logging,
)
from repoproxy.errors import RepoproxyError

log = logging.getLogger("repoproxy")


@click.command()
@root_option
@config_option
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 8080).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Serving processes sharing the socket (default: repoproxy.serve_workers, "
                   "0 = one per core), and one more process for the background workers.")
def serve(root: Path | None, config: Path | None, host: str | None, port: int | None,
          workers: int | None) -> None:
    """Serve channels until SIGTERM/SIGINT."""
    import os

    from repoproxy.domain.channels import sync_public_view
    from repoproxy.domain.recovery import recover_apart
    from repoproxy.plugins import describe_plugins
    from repoproxy.web.app import make_app
    from repoproxy.web.server import serve as run

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
    count = workers if workers is not None else services.settings["repoproxy.serve_workers"]
    count = count or os.cpu_count() or 1
    try:
        check_startup(services)
        recover_apart(services)  # once, before any worker process exists, in a child
        sync_public_view(services)  # what the nginx front may serve straight from the tree
        if count > 1:
            # before the app is built: plugins set up what the processes share
            services.pm.hook.repoproxy_serve_processes(services=services, workers=count)
        app = make_app(services)  # plugins check their settings here
        run(services, app, services.settings["repoproxy.host"],
            services.settings["repoproxy.port"], workers=count)
    except RepoproxyError as e:  # bad settings, or the address cannot be listened on
        services.close()
        raise click.ClickException(e.message) from None


@click.command("import")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--channel", "channel", required=True, help="Target channel.")
@click.option("--create", is_flag=True, help="Create the channel if it does not exist.")
@click.option("--privacy", default="public", show_default=True,
              type=click.Choice(["public", "authenticated", "private"]))
@click.option("--force", is_flag=True, help="Replace files that are already in the channel.")
@click.option("--workers", type=int, default=None, help="Worker processes (default: cores).")
@click.option("--link", is_flag=True,
              help="Hard-link the files into the channel instead of copying them, where the "
                   "filesystem allows (much faster; do not change the sources in place "
                   "afterwards, replacing them is fine).")
@root_option
@config_option
def import_(directory: Path, channel: str, create: bool, privacy: str, force: bool,
            workers: int | None, link: bool, root: Path | None, config: Path | None) -> None:
    """Import a directory of packages (e.g. a conda-index tree) into a channel, offline."""
    from repoproxy.domain.channels import create_channel
    from repoproxy.domain.packages import import_files
    from repoproxy.pipeline.bulk import find_packages

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
            result = import_files(services, channel, files, force=force, workers=workers,
                                  progress=bar.update, link=link)
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None
    for path, why in result.failed:
        click.echo(f"refused {path}: {why}", err=True)
    click.echo(f"{len(result.added)} imported, {len(result.skipped)} already present, "
               f"{len(result.failed)} refused")
    if result.failed:
        sys.exit(1)


@click.command("plugins")
@root_option
@config_option
def plugins_cmd(root: Path | None, config: Path | None) -> None:
    """List loaded plugins with their versions and hooks."""
    import json

    from repoproxy.plugins import describe_plugins

    services = open_services(root, config)
    click.echo(json.dumps(describe_plugins(services.pm), indent=2))

"""The hook implementations of the ``repoproxy_watch`` plugin (exposed by the package)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from repoproxy import hookimpl

from .config import DEFAULTS, WatchConfig

if TYPE_CHECKING:
    import click
    from pyramid.config import Configurator

    from repoproxy.domain.core import Core


@hookimpl
def repoproxy_settings_defaults() -> dict[str, Any]:
    return dict(DEFAULTS)


@hookimpl
def repoproxy_migrations() -> Any:
    from .state import migrations

    return migrations


@hookimpl
def repoproxy_configure(config: Configurator) -> None:
    # a bad value stops start-up here, naming the key, rather than in a background thread
    WatchConfig.from_settings(config.registry.services.settings)
    config.include("repoproxy_watch.views")


@hookimpl
def repoproxy_background_workers(services: Core) -> Iterable[Any]:
    config = WatchConfig.from_settings(services.settings)
    if not config.enabled:
        return []
    from .worker import WatchWorker

    return [WatchWorker(services, config)]


@hookimpl
def repoproxy_channel_removed(services: Core, channel: Any) -> None:
    # files waiting in a removed channel's folder must not fill (or, with create_channels,
    # re-create) a channel created later under the same name; its rejects go with it
    import shutil

    config = WatchConfig.from_settings(services.settings)
    if not config.enabled:
        return
    for directory in (config.root / channel.name, config.rejected_dir / channel.name):
        shutil.rmtree(directory, ignore_errors=True)


@hookimpl
def repoproxy_register_commands(cli: click.Group) -> None:
    from .cli import watch

    cli.add_command(watch)

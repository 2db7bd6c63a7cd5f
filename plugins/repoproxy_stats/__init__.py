"""repoproxy_stats: count package downloads per file, per day and per identity.

The hot path only increments an in-memory counter (``repoproxy_file_served``); a background
worker writes batches every ``repoproxy_stats.flush_interval`` seconds and on shutdown. See
:mod:`repoproxy_stats.counter` for the crash-loss bound (one flush interval).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import click

from repoproxy import hookimpl

if TYPE_CHECKING:
    from repoproxy.domain.core import Core


def _counter() -> ModuleType:
    # the store (sqlite-utils) loads on first use, not with the plugin: `repoproxy --help`
    # loads every plugin and must stay instant
    from . import counter

    return counter

__version__ = "0.1.0"


@hookimpl
def repoproxy_settings_defaults() -> dict[str, Any]:
    return {"repoproxy_stats.flush_interval": 2.0}


@hookimpl
def repoproxy_migrations() -> Any:
    return _counter().migrations


@hookimpl
def repoproxy_configure(config: Any) -> None:
    config.include("repoproxy_stats.views")


@hookimpl
def repoproxy_file_served(request: Any, channel: Any, subdir: str, filename: str) -> None:
    # the app records the identity's name in the environ once the access check computed it
    who = request.environ.get("repoproxy.identity_name") or request.identity.name
    _counter().buffer_for(request.services).add(channel.name, subdir, filename, who)


@hookimpl
def repoproxy_channel_removed(services: Core, channel: Any) -> None:
    _counter().forget_channel(services, channel.name)


@hookimpl
def repoproxy_process_workers(services: Core) -> Any:
    # every serving process counts into its own buffer, so every one flushes it
    interval = float(services.settings["repoproxy_stats.flush_interval"])
    return [_counter().FlushWorker(services, interval)]


@hookimpl
def repoproxy_package_extra(request: Any, channel: Any, record: Any) -> dict[str, Any]:
    downloads = _counter().file_downloads(request.services, channel.name, record.subdir,
                                          record.filename)
    return {"downloads": downloads}


@hookimpl
def repoproxy_channel_extra(request: Any, channel: Any) -> dict[str, Any]:
    # the caller was admitted to the channel; the files its policy hides do not count
    totals = _counter().channel_totals(request.services, channel.name,
                                       exclude=request.reads.hidden_paths(channel))
    return {"downloads": totals["downloads"]}


@hookimpl
def repoproxy_register_commands(cli: click.Group) -> None:
    from .cli import report

    cli.add_command(report)

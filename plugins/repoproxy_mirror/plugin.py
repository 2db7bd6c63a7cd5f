"""The mirror plugin's hook implementations. Heavy modules (store, rattler, urllib3) load on
first use: ``repoproxy --help`` loads every plugin and must stay instant."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pluggy

from repoproxy import hookimpl
from repoproxy.models import Channel

from . import hookspecs

if TYPE_CHECKING:
    from repoproxy.domain.core import Core


@hookimpl
def repoproxy_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def repoproxy_settings_defaults() -> dict[str, Any]:
    return {
        # "<url-prefix>=<bearer|basic|token|apikey>:<secret> ..." (docs/mirrors.md)
        "repoproxy_mirror.credentials": "",
        "repoproxy_mirror.timeout": 30.0,  # connect and per-read timeout, seconds
        "repoproxy_mirror.download_deadline": 3600.0,  # a whole download, seconds
        "repoproxy_mirror.download_workers": 4,  # active: parallel downloads of a run
        "repoproxy_mirror.index_freshness": 300.0,  # passive: an index is fresh this long
        "repoproxy_mirror.negative_ttl": 30.0,  # passive: an upstream 404 is believed this long
        "repoproxy_mirror.max_stale": 7 * 86400.0,  # passive: stale served at most this long
        # passive: a shard the shard index stopped naming is still served this long
        "repoproxy_mirror.shard_grace": 3600.0,
        "repoproxy_mirror.solve_timeout": 60.0,  # active: one --only_spec closure solve
        "repoproxy_mirror.retention_days": 7.0,  # active: dropped upstream files kept this long
        "repoproxy_mirror.poll_interval": 5.0,  # worker: how often due runs are looked for
    }


@hookimpl
def repoproxy_migrations() -> Any:
    from .store import migrations

    return migrations


@hookimpl
def repoproxy_configure(config: Any) -> None:
    config.include("repoproxy_mirror.views")


@hookimpl
def repoproxy_register_commands(cli: Any) -> None:
    from .commands import mirror

    cli.add_command(mirror)


@hookimpl
def repoproxy_background_workers(services: Core) -> Iterable[Any]:
    from .worker import MirrorWorker

    return [MirrorWorker(services)]


_passive: Any = None  # the .passive module, imported at the first conda file request


@hookimpl
def repoproxy_channel_file(request: Any, channel: Channel, subdir: str, filename: str) -> Any:
    # every conda file request of every channel asks this: for a channel that is no proxy it
    # costs one stat of passive.json (an import statement here per call cost as much again)
    global _passive
    if _passive is None:
        from . import passive

        _passive = passive
    p = _passive.proxy(request.services)
    mirror = p.mirror_for(channel.name)
    if mirror is None:
        return None
    return p.serve(request, channel, mirror, subdir, filename)


@hookimpl
def repoproxy_channel_file_claims(services: Core) -> Any:
    from .passive import proxy

    p = proxy(services)
    # asked once per channel and access generation, which service._publish_passive moves on
    return lambda channel: p.mirror_for(channel) is not None


@hookimpl
def repoproxy_channel_file_lean(services: Core) -> Any:
    from .passive import proxy

    # a proxied subdir's fresh cached indexes and its shards, answered in front of Pyramid
    return proxy(services).lean_file


@hookimpl
def repoproxy_removed_files(services: Core, channel: Channel, subdir: str) -> list[str]:
    from .removed import removed_files

    return sorted(removed_files(services, channel.name, subdir))


@hookimpl
def repoproxy_channel_extra(request: Any, channel: Channel) -> dict[str, Any] | None:
    from .service import mirror_store

    return {"mirrors": mirror_store(request.services).count(channel.name)}


@hookimpl
def repoproxy_channel_page_sections(request: Any, channel: Channel) -> list[Any]:
    from .page import mirrors_section

    return [mirrors_section(request, channel)]


@hookimpl
def repoproxy_channel_removed(services: Core, channel: Channel) -> None:
    from .service import channel_removed

    channel_removed(services, channel.name)

"""Every core route, with symbolic names. API routes first: channel names cannot be 'api'."""

from __future__ import annotations

from pyramid.config import Configurator


def includeme(config: Configurator) -> None:
    config.add_route("meta.health", "/-/health")
    config.add_route("meta.plugins", "/-/plugins")

    config.add_route("api.channels", "/api/v1/channels")
    config.add_route("api.channel", "/api/v1/channels/{name}")
    config.add_route("api.channel_files", "/api/v1/channels/{name}/files")
    config.add_route("api.upload", "/api/v1/upload/{channel}")
    config.add_route("api.delete", "/api/v1/delete/{channel}/{subdir}/{filename}")
    config.add_route("api.reindex", "/api/v1/reindex/{channel}/{subdir}")
    config.add_route("api.quetz_upload", "/api/channels/{channel}/upload/{filename}")

    # conda-facing routes last: they match almost anything of their shape
    config.add_route("channel.root", "/{channel}/")
    config.add_route("channel.root_file", "/{channel}/{filename}")
    config.add_route("channel.shard", "/{channel}/{subdir}/shards/{filename}")
    config.add_route("channel.file", "/{channel}/{subdir}/{filename}")

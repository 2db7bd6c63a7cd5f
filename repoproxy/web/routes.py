"""Every core route, with symbolic names. API routes first: channel names cannot be 'api'."""

from __future__ import annotations

from pyramid.config import Configurator

from repoproxy.names import RESERVED_CHANNELS

# a channel segment is never a reserved word, so plugin routes under /-/ or /api/ are not
# swallowed by the conda-facing catch-all routes (which match almost any short path)
CHANNEL = "{channel:(?!(?:" + "|".join(sorted(RESERVED_CHANNELS)) + ")/)[^/]+}"


def includeme(config: Configurator) -> None:
    config.add_route("meta.health", "/-/health")
    config.add_route("meta.plugins", "/-/plugins")

    config.add_route("api.channels", "/api/v1/channels")
    config.add_route("api.channel", "/api/v1/channels/{name}")
    config.add_route("api.channel_files", "/api/v1/channels/{name}/files")
    config.add_route("api.members", "/api/v1/channels/{name}/members")
    config.add_route("api.member", "/api/v1/channels/{name}/members/{user}")
    config.add_route("api.tokens", "/api/v1/tokens")
    config.add_route("api.token", "/api/v1/tokens/{id}")
    config.add_route("api.whoami", "/api/v1/whoami")
    config.add_route("api.audit", "/api/v1/audit")
    config.add_route("api.upload", "/api/v1/upload/{channel}")
    config.add_route("api.delete", "/api/v1/delete/{channel}/{subdir}/{filename}")
    config.add_route("api.reindex", "/api/v1/reindex/{channel}/{subdir}")
    config.add_route("api.quetz_upload", "/api/channels/{channel}/upload/{filename}")
    config.add_route("api.openapi", "/api/openapi.json")
    config.add_view("repoproxy.web.openapi.openapi_view", route_name="api.openapi",
                    request_method="GET", renderer="json")

    config.include(".views.details")  # package details API (its own includeme)
    config.include(".views.search")  # cross-channel search

    # conda-facing routes last: they match almost anything of their shape
    config.add_route("channel.root", f"/{CHANNEL}/")
    config.add_route("channel.root_file", f"/{CHANNEL}/{{filename}}")
    config.add_route("channel.shard", f"/{CHANNEL}/{{subdir}}/shards/{{filename}}")
    config.add_route("channel.file", f"/{CHANNEL}/{{subdir}}/{{filename}}")

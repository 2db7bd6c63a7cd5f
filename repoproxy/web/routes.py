"""Every core route, with symbolic names and its resource (``factory=``). API routes first:
channel names cannot be 'api'. Views declare the permission they need on that resource."""

from __future__ import annotations

from pyramid.config import Configurator
from pyramid.security import NO_PERMISSION_REQUIRED

from repoproxy.names import RESERVED_CHANNELS
from repoproxy.web.resources import ServerResource, channel_factory

# a channel segment is never a reserved word, so plugin routes under /-/ or /api/ are not
# swallowed by the conda-facing catch-all routes (which match almost any short path)
CHANNEL = "{channel:(?!(?:" + "|".join(sorted(RESERVED_CHANNELS)) + ")/)[^/]+}"


def includeme(config: Configurator) -> None:
    def server(name: str, pattern: str) -> None:
        config.add_route(name, pattern, factory=ServerResource)

    def channel(name: str, pattern: str) -> None:
        config.add_route(name, pattern, factory=channel_factory)

    server("meta.health", "/-/health")
    server("meta.plugins", "/-/plugins")

    server("api.channels", "/api/v1/channels")
    channel("api.channel", "/api/v1/channels/{name}")
    channel("api.channel_files", "/api/v1/channels/{name}/files")
    channel("api.members", "/api/v1/channels/{name}/members")
    channel("api.member", "/api/v1/channels/{name}/members/{user}")
    server("api.tokens", "/api/v1/tokens")
    server("api.token", "/api/v1/tokens/{id}")
    server("api.whoami", "/api/v1/whoami")
    server("api.audit", "/api/v1/audit")
    channel("api.upload", "/api/v1/upload/{channel}")
    channel("api.delete", "/api/v1/delete/{channel}/{subdir}/{filename}")
    channel("api.reindex", "/api/v1/reindex/{channel}/{subdir}")
    channel("api.quetz_upload", "/api/channels/{channel}/upload/{filename}")
    server("api.openapi", "/api/openapi.json")
    config.add_view("repoproxy.web.openapi.openapi_view", route_name="api.openapi",
                    request_method="GET", renderer="json", permission=NO_PERMISSION_REQUIRED)

    config.include(".views.details")  # package details API (its own includeme)
    config.include(".views.search")  # cross-channel search

    config.include(".ui")  # the web UI's pages under /ui/ (and redirects for browsers)

    # conda-facing routes last: they match almost anything of their shape
    channel("channel.root", f"/{CHANNEL}/")
    channel("channel.root_file", f"/{CHANNEL}/{{filename}}")
    # a subdir opened in a browser (only the UI answers it: a redirect to the channel page)
    channel("channel.subdir", f"/{CHANNEL}/{{subdir}}/")
    channel("channel.shard", f"/{CHANNEL}/{{subdir}}/shards/{{filename}}")
    channel("channel.file", f"/{CHANNEL}/{{subdir}}/{{filename}}")

"""Every core route, with symbolic names and its resource (``factory=``). API routes first:
channel names cannot be 'api'. Views declare the permission they need on that resource."""

from __future__ import annotations

from pyramid.config import Configurator
from pyramid.security import NO_PERMISSION_REQUIRED

from repoproxy.names import RESERVED_CHANNELS
from repoproxy.web.resources import ServerResource, channel_factory

# a channel segment is never a reserved word, so plugin routes under /-/ or /api/ are not
# swallowed by the conda-facing catch-all routes (which match almost any short path)
# A subchannel follows its channel as a second segment (``C/SUB``, the ``channel`` match);
# a segment shaped like a subdir (``noarch``, ``<os>-<arch>``) is never one (subchannel names
# may not take that shape), so ``/C/linux-64/...`` stays channel C's subdir.
SUB = r"(?:/(?!(?:noarch|[a-z0-9]+-[a-z0-9]+)(?:/|$))[^/]+)?"
CHANNEL = "{channel:(?!(?:" + "|".join(sorted(RESERVED_CHANNELS)) + ")/)[^/]+" + SUB + "}"
#: a channel or a subchannel in an /api/ path
CHANNEL_PATH = "{channel:[^/]+" + SUB + "}"


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
    channel("api.upload", f"/api/v1/upload/{CHANNEL_PATH}")
    channel("api.delete", f"/api/v1/delete/{CHANNEL_PATH}/{{subdir}}/{{filename}}")
    channel("api.reindex", f"/api/v1/reindex/{CHANNEL_PATH}/{{subdir}}")
    channel("api.quetz_upload", f"/api/channels/{CHANNEL_PATH}/upload/{{filename}}")
    # --- subchannels; copy, move, remove (issue 15) ---
    channel("api.subchannels", "/api/v1/channels/{name}/subchannels")
    channel("api.subchannel", "/api/v1/channels/{name}/subchannels/{sub}")
    channel("api.subchannel_files", "/api/v1/channels/{name}/subchannels/{sub}/files")
    channel("api.copy", f"/api/v1/copy/{CHANNEL_PATH}")
    channel("api.move", f"/api/v1/move/{CHANNEL_PATH}")
    channel("api.remove", f"/api/v1/remove/{CHANNEL_PATH}")
    # --- end of issue 15's block ---
    server("api.openapi", "/api/openapi.json")
    config.add_view("repoproxy.web.openapi.openapi_view", route_name="api.openapi",
                    request_method="GET", renderer="json", permission=NO_PERMISSION_REQUIRED)

    config.include(".views.details")  # package details API (its own includeme)
    config.include(".views.search")  # cross-channel search
    config.include(".views.artifacts")  # generic artifacts and notebooks (family gra)

    config.include(".ui")  # the web UI's pages under /ui/ (and redirects for browsers)

    # conda-facing routes last: they match almost anything of their shape
    channel("channel.root", f"/{CHANNEL}/")
    channel("channel.root_file", f"/{CHANNEL}/{{filename}}")
    # a subdir opened in a browser (only the UI answers it: a redirect to the channel page)
    channel("channel.subdir", f"/{CHANNEL}/{{subdir}}/")
    channel("channel.shard", f"/{CHANNEL}/{{subdir}}/shards/{{filename}}")
    channel("channel.file", f"/{CHANNEL}/{{subdir}}/{{filename}}")

"""SBOM routes: one package file, or a whole channel subdir (built on request).

Both are under their channel's resource and declare ``channel:read``; files come from the read
model, so a file a policy hides has no SBOM (404) and a subdir SBOM leaves it out.
"""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.view import view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.errors import NotFound
from repoproxy.names import is_subdir
from repoproxy.web.files import file_response
from repoproxy.web.resources import channel_factory
from repoproxy.web.routes import CHANNEL_PATH

CONTENT_TYPE = "application/vnd.cyclonedx+json"


def includeme(config: Configurator) -> None:
    config.add_route("sbom.subdir", f"/api/channels/{CHANNEL_PATH}/sbom/{{subdir}}",
                     factory=channel_factory)
    config.add_route("sbom.file", f"/api/channels/{CHANNEL_PATH}/sbom/{{subdir}}/{{filename}}",
                     factory=channel_factory)
    config.scan(".views")


@view_config(route_name="sbom.file", request_method=("GET", "HEAD"),
             permission=Permissions.CHANNEL_READ)
def file_sbom(request: Any) -> Any:
    from . import sbom_path
    from .queue import build_one

    md = request.matchdict
    channel = request.context.channel
    services = request.services
    rec = request.reads.file(channel, md["subdir"], md["filename"])
    path = sbom_path(services, channel.name, rec.subdir, rec.filename)
    if not path.exists():  # still queued (or from before the plugin was enabled): build now
        build_one(services, channel.name, rec.subdir, rec.filename)
    response = file_response(request, path, channel, immutable=False)
    response.content_type = CONTENT_TYPE
    return response


@view_config(route_name="sbom.subdir", request_method="GET",
             permission=Permissions.CHANNEL_READ)
def subdir_sbom(request: Any) -> Any:
    from . import channel_url
    from .build import build_subdir_sbom

    md = request.matchdict
    channel = request.context.channel
    if not is_subdir(md["subdir"]):
        raise NotFound(f"{md['subdir']} not found")
    url = channel_url(request.services, channel.name)
    records = request.reads.packages(channel, subdir=md["subdir"])
    if not records:
        raise NotFound(f"{channel.name}/{md['subdir']} has no package files")
    text = build_subdir_sbom(channel.name, md["subdir"], [(r, url) for r in records])
    response = Response(text, content_type=CONTENT_TYPE, charset="utf-8")
    response.md5_etag()
    response.cache_control = "private, max-age=60"
    response.conditional_response = True
    return response

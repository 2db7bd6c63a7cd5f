"""SBOM routes: one package file, or a whole channel subdir (built on request)."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.view import view_config

from repoproxy.errors import NotFound
from repoproxy.names import is_subdir
from repoproxy.web.access import require_channel

CONTENT_TYPE = "application/vnd.cyclonedx+json"


def includeme(config: Configurator) -> None:
    config.add_route("sbom.subdir", "/api/channels/{channel}/sbom/{subdir}")
    config.add_route("sbom.file", "/api/channels/{channel}/sbom/{subdir}/{filename}")
    config.scan(".views")


@view_config(route_name="sbom.file", request_method=("GET", "HEAD"))
def file_sbom(request: Any) -> Any:
    from repoproxy.web.views.channel import file_response

    from . import sbom_path, write_sbom

    md = request.matchdict
    channel = require_channel(request, md["channel"])
    services = request.services
    rec = services.catalog().get_package(channel.name, md["subdir"], md["filename"])
    if rec is None:
        raise NotFound(f"{md['filename']} not found")
    path = sbom_path(services, channel.name, rec.subdir, rec.filename)
    if not path.exists():  # a file from before the plugin was enabled
        write_sbom(services, rec, services.store.package_path(channel.name, rec.subdir,
                                                              rec.filename))
    response = file_response(request, path, channel, immutable=False)
    response.content_type = CONTENT_TYPE
    return response


@view_config(route_name="sbom.subdir", request_method="GET")
def subdir_sbom(request: Any) -> Any:
    from . import channel_url
    from .build import build_subdir_sbom

    md = request.matchdict
    channel = require_channel(request, md["channel"])
    if not is_subdir(md["subdir"]):
        raise NotFound(f"{md['subdir']} not found")
    url = channel_url(request.services, channel.name)
    records = list(request.services.catalog().packages(channel.name, subdir=md["subdir"]))
    if not records:
        raise NotFound(f"{channel.name}/{md['subdir']} has no package files")
    text = build_subdir_sbom(channel.name, md["subdir"], [(r, url) for r in records])
    response = Response(text, content_type=CONTENT_TYPE, charset="utf-8")
    response.md5_etag()
    response.cache_control = "private, max-age=60"
    response.conditional_response = True
    return response

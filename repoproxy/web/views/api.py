"""JSON API: channels, package deletion, reindex."""

from __future__ import annotations

from typing import Any

from pyramid.view import view_config

from repoproxy.domain import channels, packages
from repoproxy.domain.permissions import Permissions
from repoproxy.models import Channel
from repoproxy.plugins import collect
from repoproxy.web.access import readable_channels, require_channel
from repoproxy.web.body import BadRequest, json_body


def channel_details(request: Any, channel: Channel) -> dict[str, Any]:
    catalog = request.services.catalog()
    counts = dict(
        catalog.db.execute(
            "SELECT subdir, COUNT(*) FROM packages WHERE channel = ? GROUP BY subdir",
            [channel.name],
        ).fetchall()
    )
    subdirs = catalog.subdirs(channel.name)
    details = dict(
        channel.as_json(),
        subdirs=subdirs,
        package_files={sd: counts.get(sd, 0) for sd in subdirs},
        url=request.route_url("channel.root", channel=channel.name),
    )
    for extra in collect(request.services.pm.hook.repoproxy_channel_extra(
            request=request, channel=channel)):
        details.update(extra)
    return details


@view_config(route_name="api.channels", request_method="GET", renderer="json")
def list_channels(request: Any) -> Any:
    return {"channels": [ch.as_json() for ch in readable_channels(request)]}


@view_config(route_name="api.channels", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_CREATE)
def post_channel(request: Any) -> Any:
    """Admins create channels; so do users, who become the channel's first owner."""
    body = json_body(request)
    name = body.get("name")
    if not isinstance(name, str):
        raise BadRequest("'name' is required")
    channel = channels.create_channel(
        request.services, name, str(body.get("description") or ""),
        str(body.get("privacy") or "public"), actor=request.identity)
    request.response.status_int = 201
    return channel_details(request, channel)


@view_config(route_name="api.channel", request_method="GET", renderer="json")
def get_channel(request: Any) -> Any:
    return channel_details(request, require_channel(request, request.matchdict["name"]))


@view_config(route_name="api.channel", request_method="DELETE", renderer="json",
             permission=Permissions.CHANNEL_MANAGE)
def remove_channel(request: Any) -> Any:
    channel = channels.remove_channel(request.services, request.context.channel.name,
                                      actor=request.identity)
    return {"deleted": channel.name}


@view_config(route_name="api.channel_files", request_method="GET", renderer="json")
def channel_files(request: Any) -> Any:
    channel = require_channel(request, request.matchdict["name"])
    subdir = request.GET.get("subdir")
    files = []
    for rec in request.services.catalog().packages(channel.name, subdir=subdir):
        item = {
            "subdir": rec.subdir, "filename": rec.filename, "name": rec.name,
            "version": rec.version, "build": rec.build, "size": rec.size,
            "sha256": rec.sha256, "md5": rec.md5, "indexed_timestamp": rec.indexed_timestamp,
            "uploader": rec.uploader, "uploaded_at": rec.uploaded_at,
        }
        for extra in collect(request.services.pm.hook.repoproxy_package_extra(
                request=request, channel=channel, record=rec)):
            item.update(extra)
        files.append(item)
    return {"channel": channel.name, "files": files}


@view_config(route_name="api.delete", request_method="DELETE", renderer="json",
             permission=Permissions.CHANNEL_DELETE)
def delete_file(request: Any) -> Any:
    md = request.matchdict
    rec = packages.delete_file(request.services, request.context.channel.name, md["subdir"],
                               md["filename"], actor=request.identity)
    return {"deleted": rec.path}


@view_config(route_name="api.reindex", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_UPLOAD)
def reindex(request: Any) -> Any:
    channel, subdir = request.context.channel.name, request.matchdict["subdir"]
    stats = packages.reindex(request.services, channel, subdir, actor=request.identity)
    return {"channel": channel, "subdir": subdir, **stats}

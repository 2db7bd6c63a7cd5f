"""JSON API: channels, package deletion, reindex."""

from __future__ import annotations

from itertools import islice
from typing import Any

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from repoproxy.domain import channels, packages
from repoproxy.domain.permissions import Permissions
from repoproxy.models import Channel, PackageRecord
from repoproxy.plugins import collect
from repoproxy.web.bodies import (
    MAX_NAME,
    MAX_TEXT,
    BadRequest,
    int_query,
    json_body,
    str_field,
)
from repoproxy.web.request import Request
from repoproxy.web.resources import channel_url
from repoproxy.web.streaming import json_listing


def channel_details(request: Request, channel: Channel) -> dict[str, Any]:
    """The channel as the API shows it; ``channel`` is one the caller was admitted to."""
    from repoproxy.domain.channel_info import channel_overview

    counts = request.reads.subdir_counts(channel)  # policy-hidden files are not counted
    details = dict(
        channel.as_json(),
        subdirs=list(counts),
        package_files=counts,
        url=channel_url(request, "channel.root", channel=channel.name),
    )
    # owners, dates and counts; plugins (subchannels, mirrors) override their counts below
    details.update(channel_overview(request.reads, channel,
                                    show_owners=request.identity.kind != "anonymous"))
    if "/" in channel.name:  # a subchannel: access follows its parent
        details["parent"] = channel.name.partition("/")[0]
    for extra in collect(request.services.pm.hook.repoproxy_channel_extra(
            request=request, channel=channel)):
        details.update(extra)
    return details


# anyone may list: the read model lists only the channels the caller may read
@view_config(route_name="api.channels", request_method="GET", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def list_channels(request: Request) -> Any:
    return {"channels": [ch.as_json() for ch in request.reads.channels()]}


@view_config(route_name="api.channels", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_CREATE)
def post_channel(request: Request) -> Any:
    """Admins create channels; so do users, who become the channel's first owner."""
    body = json_body(request)
    channel = channels.create_channel(
        request.services, str_field(body, "name", required=True) or "",
        str_field(body, "description", max_len=MAX_TEXT) or "",
        str_field(body, "privacy"), actor=request.identity)
    request.response.status_int = 201
    return channel_details(request, channel)


@view_config(route_name="api.channel", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def get_channel(request: Request) -> Any:
    return channel_details(request, request.context.channel)


@view_config(route_name="api.channel", request_method="DELETE", renderer="json",
             permission=Permissions.CHANNEL_MANAGE)
def remove_channel(request: Request) -> Any:
    channel = channels.remove_channel(request.services, request.context.channel.name,
                                      actor=request.identity)
    return {"deleted": channel.name}


#: most files one page of the file listing holds
MAX_PAGE = 1000


def _file_item(request: Request, channel: Channel, rec: PackageRecord) -> dict[str, Any]:
    item = {
        "subdir": rec.subdir, "filename": rec.filename, "name": rec.name,
        "version": rec.version, "build": rec.build, "size": rec.size,
        "sha256": rec.sha256, "md5": rec.md5, "indexed_timestamp": rec.indexed_timestamp,
        "uploader": rec.uploader, "uploaded_at": rec.uploaded_at,
    }
    for extra in collect(request.services.pm.hook.repoproxy_package_extra(
            request=request, channel=channel, record=rec)):
        item.update(extra)
    return item


def _cursor(request: Request) -> tuple[str, str] | None:
    raw = request.GET.get("after")
    if not raw:
        return None
    subdir, sep, filename = raw.partition("/")
    if not sep or not subdir or not filename or len(raw) > 2 * MAX_NAME:
        raise BadRequest("'after' must be '<subdir>/<filename>' (a page's 'next')")
    return subdir, filename


@view_config(route_name="api.channel_files", request_method="GET",
             permission=Permissions.CHANNEL_READ)
def channel_files(request: Request) -> Any:
    """The channel's visible files in (subdir, filename) order.

    With ``limit`` (at most :data:`MAX_PAGE`): one page, and ``next``, the cursor to pass as
    ``after`` for the following one (null on the last page). Without it: every file, written
    as it is read (web/streaming.py), so a channel of any size costs bounded memory.
    """
    channel = request.context.channel
    limit, after = int_query(request.GET, "limit", 1, MAX_PAGE), _cursor(request)
    records = request.reads.walk_packages(channel, subdir=request.GET.get("subdir") or None,
                                          after=after)
    head = {"channel": channel.name}
    if limit is None:
        return json_listing(head, "files", (_file_item(request, channel, r) for r in records),
                            {"next": None})
    page = list(islice(records, limit + 1))
    more = len(page) > limit
    page = page[:limit]
    files = [_file_item(request, channel, r) for r in page]
    return json_listing(head, "files", files,
                        {"next": f"{page[-1].subdir}/{page[-1].filename}" if more else None})


@view_config(route_name="api.delete", request_method="DELETE", renderer="json",
             permission=Permissions.CHANNEL_DELETE)
def delete_file(request: Request) -> Any:
    md = request.matchdict
    rec = packages.delete_file(request.services, request.context.channel.name, md["subdir"],
                               md["filename"], actor=request.identity)
    return {"deleted": rec.path}


@view_config(route_name="api.reindex", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_UPLOAD)
def reindex(request: Request) -> Any:
    channel, subdir = request.context.channel.name, request.matchdict["subdir"]
    stats = packages.reindex(request.services, channel, subdir, actor=request.identity)
    return {"channel": channel, "subdir": subdir, **stats}

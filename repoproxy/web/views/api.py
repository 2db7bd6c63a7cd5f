"""JSON API: channels, package deletion, reindex."""

from __future__ import annotations

from typing import Any

from pyramid.view import view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.errors import ChannelExists, InvalidName, RepoproxyError
from repoproxy.models import Channel, Privacy
from repoproxy.names import check_channel_name, check_subdir
from repoproxy.plugins import collect
from repoproxy.storage.accounts import Accounts
from repoproxy.storage.catalog import Catalog, utcnow
from repoproxy.storage.db import write_transaction
from repoproxy.web.access import readable_channels, require_admin, require_channel
from repoproxy.web.bodies import MAX_TEXT, json_object, str_field


class BadRequest(RepoproxyError):
    status = 400
    code = "bad-request"


def json_body(request: Any) -> dict[str, Any]:
    return json_object(request, request.services.settings["repoproxy.max_json_body"])


def create_channel(services: Any, name: str, description: str = "",
                   privacy: str = "public") -> Channel:
    """Create a channel and materialise its empty noarch index (shared by API and CLI)."""
    check_channel_name(name)
    try:
        priv = Privacy(privacy)
    except ValueError:
        raise InvalidName(
            f"invalid privacy {privacy!r}: use public, authenticated or private"
        ) from None
    channel = Channel(name=name, description=description, privacy=priv, created=utcnow())
    db = services.db()
    with write_transaction(db):
        catalog = Catalog(db)
        if catalog.get_channel(name) is not None:
            raise ChannelExists(f"channel {name!r} already exists")
        catalog.insert_channel(channel)
    services.indexer.build(name, "noarch")
    services.indexer.build_channeldata(name)
    return channel


def delete_channel(services: Any, name: str) -> None:
    import shutil

    db = services.db()
    with write_transaction(db):
        catalog = Catalog(db)
        catalog.require_channel(name)
        catalog.delete_channel(name)
    shutil.rmtree(services.store.channel_dir(name), ignore_errors=True)


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


@view_config(route_name="api.channels", request_method="POST", renderer="json")
def post_channel(request: Any) -> Any:
    """Admins create channels; so do users, who become the channel's first owner."""
    ident = request.identity
    user = None
    if not ident.is_admin:
        user = Accounts(request.services.db()).get_user(ident.name)
        if user is None or ident.kind not in ("user", "token"):
            require_admin(request)
    body = json_body(request)
    channel = create_channel(
        request.services, str_field(body, "name", required=True) or "",
        str_field(body, "description", max_len=MAX_TEXT) or "",
        str_field(body, "privacy") or "public",
    )
    db = request.services.db()
    with write_transaction(db):
        accounts = Accounts(db)
        if user is not None:
            accounts.add_member(channel.name, user["name"], "owner")
        accounts.audit(ident.name, "channel.create", channel.name, None,
                       privacy=str(channel.privacy))
    request.response.status_int = 201
    return channel_details(request, channel)


@view_config(route_name="api.channel", request_method="GET", renderer="json")
def get_channel(request: Any) -> Any:
    return channel_details(request, require_channel(request, request.matchdict["name"]))


@view_config(route_name="api.channel", request_method="DELETE", renderer="json")
def remove_channel(request: Any) -> Any:
    channel = require_channel(request, request.matchdict["name"], Permissions.CHANNEL_MANAGE)
    delete_channel(request.services, channel.name)
    db = request.services.db()
    with write_transaction(db):
        Accounts(db).audit(request.identity.name, "channel.delete", channel.name)
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


@view_config(route_name="api.delete", request_method="DELETE", renderer="json")
def delete_file(request: Any) -> Any:
    md = request.matchdict
    channel = require_channel(request, md["channel"], Permissions.CHANNEL_DELETE)
    check_subdir(md["subdir"])
    rec = request.services.ingestor.remove(channel.name, md["subdir"], md["filename"])
    db = request.services.db()
    with write_transaction(db):
        Accounts(db).audit(request.identity.name, "package.delete", channel.name, rec.path)
    return {"deleted": rec.path}


@view_config(route_name="api.reindex", request_method="POST", renderer="json")
def reindex(request: Any) -> Any:
    md = request.matchdict
    channel = require_channel(request, md["channel"], Permissions.CHANNEL_UPLOAD)
    check_subdir(md["subdir"])
    stats = request.services.ingestor.reconcile(channel.name, md["subdir"])
    request.services.indexer.build(channel.name, md["subdir"], force=True)
    request.services.indexer.build_channeldata(channel.name)
    return {"channel": channel.name, "subdir": md["subdir"], **stats}

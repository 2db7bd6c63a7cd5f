"""Conda-facing GET/HEAD of channel files, served straight from the materialised tree.

Per request: the access generation, read from memory (the channel and a known token come from
in-memory snapshots), a stat of the file, and for package files a stat of the subdir's
hidden-files list (cached by mtime). No catalog query once warm.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pyramid.view import view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.errors import NotFound
from repoproxy.models import Channel
from repoproxy.names import is_package_filename, is_subdir
from repoproxy.pipeline.repodata import HIDDEN, SHARD_INDEX
from repoproxy.plugins import notify
from repoproxy.web.accel import accel_prefix, accel_response
from repoproxy.web.files import file_response
from repoproxy.web.request import Request

log = logging.getLogger(__name__)

INDEX_FILES = frozenset(
    {"repodata.json", "repodata.json.zst", SHARD_INDEX, "run_exports.json",
     "run_exports.json.zst"}
)


def _missing(name: str) -> NotFound:
    return NotFound(f"{name} not found")


@view_config(route_name="channel.file", request_method=("GET", "HEAD"),
             permission=Permissions.CHANNEL_READ)
def channel_file(request: Request) -> Any:
    md = request.matchdict
    channel = request.context.channel
    subdir, filename = md["subdir"], md["filename"]
    if not is_subdir(subdir):
        raise _missing(f"{md['channel']}/{subdir}")
    answer = request.services.pm.hook.repoproxy_channel_file(
        request=request, channel=channel, subdir=subdir, filename=filename)
    if answer is not None:
        return answer
    # strings, not Paths: joining Paths cost a tenth of a 304
    directory = request.services.store.subdir_path(channel.name, subdir)
    path = os.path.join(directory, filename)  # noqa: PTH118 (hot path: str paths)
    if filename in INDEX_FILES:
        try:
            return file_response(request, path, channel, immutable=False)
        except NotFound:
            if subdir != "noarch":
                raise
        # every channel serves noarch/repodata.json from its first moment (clients treat a
        # missing noarch as a missing channel): build it if a crash left it unbuilt
        request.services.indexer.build(channel.name, subdir)
        return file_response(request, path, channel, immutable=False)
    package = filename.removesuffix(".attestation.json")
    if is_package_filename(package):
        hidden = request.registry.hidden_cache.get(os.path.join(directory, HIDDEN))  # noqa: PTH118 (hot path: str paths)
        if package in hidden:
            raise _missing(filename)
        prefix = accel_prefix(request)
        if prefix:  # behind the nginx front: it sends the bytes (web/accel.py)
            response = accel_response(request, prefix, path, channel, subdir, filename)
        else:
            response = file_response(request, path, channel, immutable=True)
        if request.method == "GET" and package == filename:
            file_served(request, channel, subdir, filename)
        return response
    raise _missing(filename)


def file_served(request: Request, channel: Channel, subdir: str, filename: str) -> None:
    """Tell the download observers (``repoproxy_file_served``): from this view and from the
    server's lean path (web/lean.py)."""
    # observers (download counting) are isolated one by one: a failing plugin neither turns
    # the download into an error nor silences the observers after it
    notify(request.services.pm, "repoproxy_file_served", request=request, channel=channel,
           subdir=subdir, filename=filename)


@view_config(route_name="channel.shard", request_method=("GET", "HEAD"),
             permission=Permissions.CHANNEL_READ)
def channel_shard(request: Request) -> Any:
    md = request.matchdict
    channel = request.context.channel
    name = md["filename"]
    digest = name.removesuffix(".msgpack.zst")
    if not is_subdir(md["subdir"]) or len(digest) != 64 or digest.strip("0123456789abcdef"):
        raise _missing(name)
    answer = request.services.pm.hook.repoproxy_channel_file(
        request=request, channel=channel, subdir=md["subdir"], filename=f"shards/{name}")
    if answer is not None:
        return answer
    path = os.path.join(request.services.store.subdir_path(channel.name, md["subdir"]),  # noqa: PTH118 (hot path: str paths)
                        "shards", f"{digest}.msgpack.zst")
    return file_response(request, path, channel, immutable=True)


@view_config(route_name="channel.root_file", request_method=("GET", "HEAD"),
             permission=Permissions.CHANNEL_READ)
def channel_root_file(request: Request) -> Any:
    md = request.matchdict
    channel = request.context.channel
    if md["filename"] != "channeldata.json":
        raise _missing(md["filename"])
    path = request.services.store.channel_dir(channel.name) / "channeldata.json"
    if not path.exists():
        request.services.indexer.build_channeldata(channel.name)
    return file_response(request, path, channel, immutable=False)



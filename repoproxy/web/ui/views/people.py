"""People who open the server's URLs in a browser are sent to the pages.

``/``, a channel URL (``/<channel>/``, what ``repoproxy channel show`` prints) and a subdir
URL answer a browser (it asks for ``text/html`` and is no package manager) with a redirect;
conda clients match no view here and see exactly what they saw before. The redirect is the
same for a channel that exists and one that does not (the page then answers 404 for both), so
it tells nothing.
"""

from __future__ import annotations

from typing import Any

from pyramid.httpexceptions import HTTPFound
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from repoproxy.names import is_subdir
from repoproxy.web.request import Request


@view_config(route_name="ui.people_root", request_method=("GET", "HEAD"), browser=True,
             permission=NO_PERMISSION_REQUIRED)
@view_config(route_name="ui.bare", request_method=("GET", "HEAD"),
             permission=NO_PERMISSION_REQUIRED)
def to_home(request: Request) -> Any:
    return HTTPFound(location=request.route_path("ui.home"))


def _to_channel(request: Request, subdir: str | None = None) -> Any:
    query = {"subdir": subdir} if subdir else None
    name = request.matchdict["channel"]
    return HTTPFound(location=request.route_path("ui.channel", channel=name, _query=query)
                     if query else request.route_path("ui.channel", channel=name))


@view_config(route_name="channel.root", request_method=("GET", "HEAD"), browser=True,
             permission=NO_PERMISSION_REQUIRED)
def channel_root(request: Request) -> Any:
    return _to_channel(request)


@view_config(route_name="channel.subdir", request_method=("GET", "HEAD"), browser=True,
             permission=NO_PERMISSION_REQUIRED)
def channel_subdir(request: Request) -> Any:
    subdir = request.matchdict["subdir"]
    return _to_channel(request, subdir if is_subdir(subdir) else None)


@view_config(route_name="channel.root_file", request_method=("GET", "HEAD"), browser=True,
             names_subdir=True, permission=NO_PERMISSION_REQUIRED)
def channel_subdir_bare(request: Request) -> Any:
    """``/<channel>/linux-64`` (no slash): a subdir, for a person (files are not matched)."""
    return _to_channel(request, request.matchdict["filename"])

"""Search across every channel the caller may read:
``GET /api/v1/search?q=&family=conda|gra``."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from repoproxy.errors import RepoproxyError
from repoproxy.web.request import Request
from repoproxy.web.resources import ServerResource


class BadSearch(RepoproxyError):
    status = 400
    code = "bad-request"


def includeme(config: Configurator) -> None:
    config.add_route("api.search", "/api/v1/search", factory=ServerResource)


# anyone may search: the read model only ever queries the channels the caller may read, and
# only files their policies leave visible
@view_config(route_name="api.search", request_method="GET", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def search(request: Request) -> Any:
    q = (request.GET.get("q") or "").strip().lower()
    family = request.GET.get("family") or "conda"
    if not q:
        raise BadSearch("'q' is required")
    if family == "gra":  # generic artifacts and notebooks
        from repoproxy.domain.artifacts import search_artifacts

        results = search_artifacts(request.reads, q)
    elif family == "conda":
        results = request.reads.search(q, family)
    else:
        raise BadSearch(f"unknown family {family!r}: use 'conda' or 'gra'")
    return {"query": q, "family": family, "count": len(results), "results": results}

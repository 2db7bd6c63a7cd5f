"""CVE API: the package-details ``.../cves`` route (under its channel's resource, declaring
``channel:read``; files a policy hides are left out) and the CVE list."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.web.request import Request
from repoproxy.web.resources import ServerResource, channel_factory
from repoproxy.web.routes import CHANNEL_PATH

from .matching import facts_for
from .plugin import cve_store


def includeme(config: Configurator) -> None:
    config.add_route("cve.package", f"/api/channels/{CHANNEL_PATH}/artifacts/conda/{{name}}/cves",
                     factory=channel_factory)
    config.add_route("cve.list", "/api/v1/cves", factory=ServerResource)
    config.scan("repoproxy_cve.views")


@view_config(route_name="cve.package", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def package_cves(request: Request) -> Any:
    channel = request.context.channel
    name = request.matchdict["name"]
    records = request.reads.packages(channel, name=name)
    facts = facts_for(cve_store(request.services), records)
    store = cve_store(request.services)
    ids = sorted({f["id"] for fs in facts.values() for f in fs})
    return {
        "channel": channel.name, "name": name,
        "cves": [dict(store.get(i), status=store.get(i)["status"] or "uncurated") for i in ids],
        "files": {f"{sd}/{fn}": [f["id"] for f in fs] for (sd, fn), fs in sorted(facts.items())},
    }


# the CVE data is public knowledge, not channel content: no right needed
@view_config(route_name="cve.list", request_method="GET", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def list_cves(request: Request) -> Any:
    return {"cves": [dict(c, status=c["status"] or "uncurated")
                     for c in cve_store(request.services).all()]}

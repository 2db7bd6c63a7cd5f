"""CVE API: the package-details ``.../cves`` route and a CVE list."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.view import view_config

from repoproxy.web.access import require_channel

from .matching import facts_for
from .plugin import cve_store


def includeme(config: Configurator) -> None:
    config.add_route("cve.package", "/api/channels/{channel}/artifacts/conda/{name}/cves")
    config.add_route("cve.list", "/api/v1/cves")
    config.scan("repoproxy_cve.views")


@view_config(route_name="cve.package", request_method="GET", renderer="json")
def package_cves(request: Any) -> Any:
    channel = require_channel(request, request.matchdict["channel"])
    name = request.matchdict["name"]
    records = list(request.services.catalog().packages(channel.name, name=name))
    hidden = {sd: request.services.indexer.hidden_files(channel.name, sd)
              for sd in {r.subdir for r in records}}
    records = [r for r in records if r.filename not in hidden[r.subdir]]
    facts = facts_for(cve_store(request.services), records)
    store = cve_store(request.services)
    ids = sorted({f["id"] for fs in facts.values() for f in fs})
    return {
        "channel": channel.name, "name": name,
        "cves": [dict(store.get(i), status=store.get(i)["status"] or "uncurated") for i in ids],
        "files": {f"{sd}/{fn}": [f["id"] for f in fs] for (sd, fn), fs in sorted(facts.items())},
    }


@view_config(route_name="cve.list", request_method="GET", renderer="json")
def list_cves(request: Any) -> Any:
    return {"cves": [dict(c, status=c["status"] or "uncurated")
                     for c in cve_store(request.services).all()]}

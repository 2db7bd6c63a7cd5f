"""CVE API: the package-details ``.../cves`` route (under its channel's resource, declaring
``channel:read``; files a policy hides are left out) and the CVE list."""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.errors import TooLarge
from repoproxy.web.bodies import BadRequest, json_body, str_field
from repoproxy.web.request import Request
from repoproxy.web.resources import ServerResource, channel_factory
from repoproxy.web.routes import CHANNEL_PATH

from .matching import facts_for
from .plugin import affected_files, cve_store, import_path, set_status

STATUSES = ("active", "reported", "mitigated", "cleared", "disputed", "uncurated")


def includeme(config: Configurator) -> None:
    config.add_route("cve.package", f"/api/channels/{CHANNEL_PATH}/artifacts/conda/{{name}}/cves",
                     factory=channel_factory)
    config.add_route("cve.list", "/api/v1/cves", factory=ServerResource)
    # before cve.one: "import" is not a CVE id
    config.add_route("cve.import", "/api/v1/cves/import", factory=ServerResource)
    config.add_route("cve.one", "/api/v1/cves/{id}", factory=ServerResource)
    config.add_route("cve.files", "/api/v1/cves/{id}/files", factory=ServerResource)
    config.scan("repoproxy_cve.views")


@view_config(route_name="cve.package", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def package_cves(request: Request) -> Any:
    channel = request.context.channel
    name = request.matchdict["name"]
    # a package with no visible file is absent here as on every details route (the same 404)
    records = list(request.reads.package(channel, name).records)
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


@view_config(route_name="cve.one", request_method="GET", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def get_cve(request: Request) -> Any:
    cve = cve_store(request.services).get(request.matchdict["id"])
    return dict(cve, status=cve["status"] or "uncurated")


# which files a CVE affects is channel content: only readable channels, only visible files
@view_config(route_name="cve.files", request_method="GET", renderer="json",
             permission=NO_PERMISSION_REQUIRED)
def cve_files(request: Request) -> Any:
    cve = cve_store(request.services).get(request.matchdict["id"])
    return {"id": cve["id"],
            "files": affected_files(request.services, cve["id"], request.reads)}


@view_config(route_name="cve.one", request_method="PATCH", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def patch_cve(request: Request) -> Any:
    body = json_body(request)
    status = str_field(body, "status", required=True)
    if status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    cve = set_status(request.services, request.matchdict["id"],
                     None if status == "uncurated" else status, actor=request.identity)
    return dict(cve, status=cve["status"] or "uncurated")


@view_config(route_name="cve.import", request_method="POST", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def import_cves(request: Request) -> Any:
    """The body is what ``repoproxy cve import`` reads: one JSON file or a zip of them."""
    limit = int(request.services.settings["repoproxy.max_upload_size"])
    store = request.services.store
    with store.temp_file(suffix=".cve") as (tmp, f):
        size = 0
        while chunk := request.body_file.read(1024 * 1024):
            size += len(chunk)
            if size > limit:
                raise TooLarge(f"body is over the limit of {limit} bytes")
            f.write(chunk)
        f.flush()
        if not size:
            raise BadRequest("an empty body: send a JSON file or a zip")
        try:
            result = import_path(request.services, tmp, actor=request.identity)
        except (ValueError, OSError) as e:
            raise BadRequest(f"unreadable CVE data: {e}") from None
    return result

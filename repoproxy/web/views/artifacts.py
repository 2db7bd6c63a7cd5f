"""Generic artifacts (family ``gra``, notebooks included) over HTTP.

``/api/channels/<ch>/artifacts/gra/<name>/<version>/<filename>``: ``POST`` uploads (raw body
or multipart ``file`` part, ``X-File-SHA256`` optional, ``?force=true`` replaces), ``GET`` and
``HEAD`` download, ``DELETE`` deletes. The package details routes
(``/api/channels/<ch>/artifacts[/gra/<name>[/files]]``) answer for the family ``gra`` with the
functions below. Each view declares the same permission a package view needs, and reads go
through the read model, so a private channel answers exactly like an absent one.
"""

from __future__ import annotations

from typing import Any

from pyramid.config import Configurator
from pyramid.view import view_config

from repoproxy.domain import artifacts
from repoproxy.domain.permissions import Permissions
from repoproxy.models import Channel
from repoproxy.storage.artifacts import ArtifactRecord
from repoproxy.web.files import file_response
from repoproxy.web.request import Request
from repoproxy.web.resources import channel_factory
from repoproxy.web.uploads import BadUpload, MultipartUpload

FILE_ROUTE = "/api/channels/{channel}/artifacts/gra/{name}/{version}/{filename}"


def includeme(config: Configurator) -> None:
    config.add_route("artifacts.file", FILE_ROUTE, factory=channel_factory)


def artifact_json(request: Request, rec: ArtifactRecord) -> dict[str, Any]:
    return dict(rec.as_json(), family=artifacts.FAMILY,
                url=request.route_url("artifacts.file", channel=rec.channel, name=rec.name,
                                      version=rec.version, filename=rec.filename))


# --- the family "gra" of the package details routes -----------------------------------------
def package_entries(request: Request, channel: Channel) -> list[dict[str, Any]]:
    """``/api/channels/<ch>/artifacts``: one entry per artifact name."""
    by_name: dict[str, list[ArtifactRecord]] = {}
    for rec in artifacts.artifacts(request.reads, channel):
        by_name.setdefault(rec.name, []).append(rec)
    return [{
        "name": name, "family": artifacts.FAMILY, "latest_version": records[0].version,
        "license": "", "summary": records[0].description, "platforms": [],
        "file_count": len(records),
    } for name, records in sorted(by_name.items())]


def summary(request: Request, channel: Channel, name: str) -> dict[str, Any]:
    records = artifacts.artifacts(request.reads, channel, name)
    newest = records[0]
    versions = list(dict.fromkeys(r.version for r in records))
    return {
        "channel": channel.name, "name": name, "family": artifacts.FAMILY,
        "summary": newest.description, "license": "", "home": "", "dev_url": "",
        "doc_url": "", "latest_version": newest.version, "versions": versions,
        "platforms": [], "file_count": len(records), "latest_release": 0,
        "kinds": sorted({r.kind for r in records}),
    }


def files(request: Request, channel: Channel, name: str, offset: int,
          limit: int) -> dict[str, Any]:
    records = artifacts.artifacts(request.reads, channel, name)
    for key in ("version", "filename"):
        if request.GET.get(key):
            records = [r for r in records if getattr(r, key) == request.GET[key]]
    page = records[offset:offset + limit]
    return {"channel": channel.name, "name": name, "total": len(records), "offset": offset,
            "limit": limit, "files": [artifact_json(request, r) for r in page]}


def delete_name(request: Request, channel: Channel, name: str) -> dict[str, Any]:
    removed = artifacts.delete_artifact_name(request.services, channel.name, name,
                                             actor=request.identity)
    return {"deleted": [r.path for r in removed]}


# --- one file --------------------------------------------------------------------------------
@view_config(route_name="artifacts.file", request_method="POST", renderer="json",
             permission=Permissions.CHANNEL_UPLOAD)
def upload(request: Request) -> Any:
    md = request.matchdict
    channel = request.context.channel
    limit = request.services.settings["repoproxy.max_upload_size"]
    if request.content_length is not None and request.content_length > limit + 64 * 1024:
        from repoproxy.errors import TooLarge

        raise TooLarge(f"upload of {request.content_length} bytes is over the limit of "
                       f"{limit} bytes")
    sha = request.headers.get("X-File-SHA256") or request.GET.get("sha256")
    read = request.body_file.read
    if (request.content_type or "").startswith("multipart/form-data"):
        body = MultipartUpload(request.body_file, request.headers["Content-Type"],
                               request.content_length)
        body.find_file()
        sha = body.file_headers.get("x-file-sha256") or sha
        read = body.read
    elif request.content_length is None and "chunked" not in (
            request.headers.get("Transfer-Encoding") or "").lower():
        raise BadUpload("an artifact upload needs a body (Content-Length)")
    force = str(request.GET.get("force", "")).lower() in ("1", "true", "yes")
    rec = artifacts.upload_artifact(
        request.services, channel.name, read, md["filename"], name=md["name"],
        version=md["version"], actor=request.identity, expected_sha256=sha, force=force,
        description=str(request.GET.get("description") or ""))
    request.response.status_int = 201
    return artifact_json(request, rec)


@view_config(route_name="artifacts.file", request_method=("GET", "HEAD"),
             permission=Permissions.CHANNEL_READ)
def download(request: Request) -> Any:
    md = request.matchdict
    channel = request.context.channel
    rec, path = artifacts.artifact_file(request.reads, channel, md["name"], md["version"],
                                        md["filename"])
    response = file_response(request, path, channel, immutable=False, etag=rec.sha256)
    response.content_type = ("application/x-ipynb+json" if rec.kind == "notebook"
                             else "application/octet-stream")
    response.content_disposition = f'attachment; filename="{rec.filename}"'
    return response


@view_config(route_name="artifacts.file", request_method="DELETE", renderer="json",
             permission=Permissions.CHANNEL_DELETE)
def delete(request: Request) -> Any:
    md = request.matchdict
    rec = artifacts.delete_artifact(request.services, request.context.channel.name,
                                    md["name"], md["version"], md["filename"],
                                    actor=request.identity)
    return {"deleted": rec.path}

"""Package details API (one package name of one channel): summary, files, dependencies,
dependents, readme, and deletion of the whole package.

Routes follow the Anaconda Platform shape: ``/api/channels/<ch>/artifacts/conda/<name>...``,
each under the route's channel resource (``channel_factory``). Read views declare
``channel:read`` (a channel the caller may not read answers like a missing one) and ask the
read model (``request.reads``), so a file a policy hides is absent from every answer.
"""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from pyramid.config import Configurator
from pyramid.view import view_config

from repoproxy.domain import packages
from repoproxy.domain.permissions import Permissions
from repoproxy.domain.reads import Package
from repoproxy.errors import NotFound
from repoproxy.models import Channel, PackageRecord
from repoproxy.plugins import collect
from repoproxy.web.bodies import int_query
from repoproxy.web.request import Request
from repoproxy.web.resources import channel_factory, channel_url
from repoproxy.web.routes import CHANNEL_PATH
from repoproxy.web.streaming import json_listing
from repoproxy.web.views import artifacts as gra

# a subchannel's packages too: ``{channel}`` matches ``C`` or ``C/SUB``
ARTIFACT = f"/api/channels/{CHANNEL_PATH}/artifacts/{{family}}/{{name}}"
FILE_FIELDS = ("subdir", "filename", "name", "version", "build", "build_number", "size",
               "sha256", "md5", "indexed_timestamp", "uploader", "uploaded_at")


def includeme(config: Configurator) -> None:
    for name, pattern in (
        ("details.package", ARTIFACT),
        ("details.files", ARTIFACT + "/files"),
        ("details.dependencies", ARTIFACT + "/dependencies"),
        ("details.dependents", ARTIFACT + "/dependents"),
        ("details.readme", ARTIFACT + "/readme"),
        ("details.packages", f"/api/channels/{CHANNEL_PATH}/artifacts"),
    ):
        config.add_route(name, pattern, factory=channel_factory)


def ckey(rec: PackageRecord) -> str:
    """A stable key of one file of one channel (same file, same key, across restarts)."""
    return hashlib.sha256(f"conda:{rec.path}".encode()).hexdigest()[:20]


def file_json(request: Request, channel: Channel, rec: PackageRecord) -> dict[str, Any]:
    item: dict[str, Any] = {k: getattr(rec, k) for k in FILE_FIELDS}
    item["platform"] = rec.subdir
    item["ckey"] = ckey(rec)
    item["license"] = rec.record.get("license") or rec.about.get("license") or ""
    item["url"] = channel_url(request, "channel.file", channel=channel.name,
                              subdir=rec.subdir, filename=rec.filename)
    for extra in collect(request.services.pm.hook.repoproxy_package_extra(
            request=request, channel=channel, record=rec)):
        item.update(extra)
    return item


def _gra(request: Request) -> bool:
    """Whether the route asks for generic artifacts (views/artifacts.py answers those)."""
    return bool(request.matchdict["family"] == "gra")


def _family(request: Request) -> None:
    if request.matchdict["family"] != "conda":
        raise NotFound(f"artifact type {request.matchdict['family']!r} not found")


def _package(request: Request) -> Package:
    _family(request)
    return request.reads.package(request.context.channel, request.matchdict["name"])


def summary(request: Request, package: Package,
            files: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The package's details; ``files`` are its files' JSON when the caller has them."""
    channel, records, newest = package.channel, list(package.records), package.newest
    if files is None:
        files = [file_json(request, channel, r) for r in records]
    about = newest.about
    out: dict[str, Any] = {
        "channel": channel.name,
        "name": newest.name,
        "family": "conda",
        "summary": about.get("summary") or "",
        "license": newest.record.get("license") or about.get("license") or "",
        "home": about.get("home") or "",
        "dev_url": about.get("dev_url") or "",
        "doc_url": about.get("doc_url") or "",
        "latest_version": newest.version,
        "versions": package.versions,
        "platforms": package.platforms,
        "file_count": len(records),
        "latest_release": package.latest_release,
    }
    # plugins' per-file extras of the newest file (badge snippets, SBOM link...) describe the
    # package; per-file counters are summed instead
    newest_extra = next(f for f in files if f["filename"] == newest.filename
                        and f["subdir"] == newest.subdir)
    for key, value in newest_extra.items():
        if key not in out and key not in FILE_FIELDS and key not in ("platform", "ckey", "url"):
            out[key] = value
    if any("downloads" in f for f in files):
        out["downloads"] = sum(int(f.get("downloads") or 0) for f in files)
    return out


@view_config(route_name="details.packages", request_method="GET",
             permission=Permissions.CHANNEL_READ)
def list_packages(request: Request) -> Any:
    """Every package name of the channel, written as it is read (web/streaming.py): one
    batch of names' facts in memory at a time, however many names the channel has."""
    channel = request.context.channel
    conda = ({
        "name": package.name, "family": "conda", "latest_version": package.latest_version,
        "license": license, "summary": summary, "platforms": list(package.platforms),
        "file_count": package.file_count,
    } for package, license, summary in request.reads.package_listing(channel))
    artifacts = gra.package_entries(request, channel)  # decided before anything is sent
    return json_listing({"channel": channel.name}, "packages", itertools.chain(conda, artifacts))


@view_config(route_name="details.package", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def get_package(request: Request) -> Any:
    if _gra(request):
        return gra.summary(request, request.context.channel, request.matchdict["name"])
    return summary(request, _package(request))


@view_config(route_name="details.package", request_method="DELETE", renderer="json",
             permission=Permissions.CHANNEL_DELETE)
def delete_package(request: Request) -> Any:
    if _gra(request):
        return gra.delete_name(request, request.context.channel, request.matchdict["name"])
    _family(request)
    removed = packages.delete_package(request.services, request.context.channel.name,
                                      request.matchdict["name"], actor=request.identity)
    return {"deleted": [r.path for r in removed]}


def _int(request: Request, key: str, default: int, low: int, high: int) -> int:
    value = int_query(request.GET, key, low, high, default)
    assert value is not None  # a default was given
    return value


@view_config(route_name="details.files", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def get_files(request: Request) -> Any:
    channel = request.context.channel
    if _gra(request):
        return gra.files(request, channel, request.matchdict["name"],
                         _int(request, "offset", 0, 0, 10**9),
                         _int(request, "limit", 100, 1, 1000))
    _family(request)
    records = request.reads.files(
        channel, request.matchdict["name"],
        **{key: request.GET.get(key) for key in ("subdir", "version", "build", "filename")})
    limit = _int(request, "limit", 100, 1, 1000)
    offset = _int(request, "offset", 0, 0, 10**9)
    page = records[offset:offset + limit]
    return {"channel": channel.name, "name": request.matchdict["name"],
            "total": len(records), "offset": offset, "limit": limit,
            "files": [file_json(request, channel, r) for r in page]}


@view_config(route_name="details.dependencies", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def get_dependencies(request: Request) -> Any:
    package = _package(request)
    version, deps = request.reads.dependencies(package.channel, package.name,
                                               request.GET.get("version"))
    return {
        "channel": package.channel.name, "name": package.name, "version": version,
        "dependencies": deps,
        "dependents": request.reads.dependents(package.channel, package.name),
    }


@view_config(route_name="details.dependents", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def get_dependents(request: Request) -> Any:
    package = _package(request)
    return {"channel": package.channel.name, "name": package.name,
            "dependents": request.reads.dependents(package.channel, package.name)}


@view_config(route_name="details.readme", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def get_readme(request: Request) -> Any:
    package = _package(request)
    text, source = request.reads.readme(package.channel, package.name)
    return {"channel": package.channel.name, "name": package.name, "readme": text,
            "source": source}

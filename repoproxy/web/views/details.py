"""Package details API (one package name of one channel): summary, files, dependencies,
dependents, readme, and deletion of the whole package.

Routes follow the Anaconda Platform shape: ``/api/channels/<ch>/artifacts/conda/<name>...``.
Every view first checks read access with :func:`repoproxy.access.require_channel`, so a
channel the caller may not read answers like a missing one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from pyramid.config import Configurator
from pyramid.view import view_config

from repoproxy.domain import packages
from repoproxy.domain.permissions import Permissions
from repoproxy.errors import NotFound, RepoproxyError
from repoproxy.models import Channel, PackageRecord
from repoproxy.plugins import collect
from repoproxy.web.access import require_channel
from repoproxy.web.resources import channel_factory

ARTIFACT = "/api/channels/{channel}/artifacts/{family}/{name}"
FILE_FIELDS = ("subdir", "filename", "name", "version", "build", "build_number", "size",
               "sha256", "md5", "indexed_timestamp", "uploader", "uploaded_at")


class BadQuery(RepoproxyError):
    status = 400
    code = "bad-request"


def includeme(config: Configurator) -> None:
    config.add_route("details.package", ARTIFACT, factory=channel_factory)
    config.add_route("details.files", ARTIFACT + "/files")
    config.add_route("details.dependencies", ARTIFACT + "/dependencies")
    config.add_route("details.dependents", ARTIFACT + "/dependents")
    config.add_route("details.readme", ARTIFACT + "/readme")
    config.add_route("details.packages", "/api/channels/{channel}/artifacts")


def version_key(version: str) -> Any:
    """A sort key in conda's version order (py-rattler's ``Version``)."""
    from rattler import Version

    try:
        return (1, Version(version))
    except Exception:  # an unparsable version sorts below every valid one
        return (0, version)


def ckey(rec: PackageRecord) -> str:
    """A stable key of one file of one channel (same file, same key, across restarts)."""
    return hashlib.sha256(f"conda:{rec.path}".encode()).hexdigest()[:20]


def file_json(request: Any, channel: Channel, rec: PackageRecord) -> dict[str, Any]:
    item: dict[str, Any] = {k: getattr(rec, k) for k in FILE_FIELDS}
    item["platform"] = rec.subdir
    item["ckey"] = ckey(rec)
    item["license"] = rec.record.get("license") or rec.about.get("license") or ""
    item["url"] = request.route_url("channel.file", channel=channel.name, subdir=rec.subdir,
                                    filename=rec.filename)
    for extra in collect(request.services.pm.hook.repoproxy_package_extra(
            request=request, channel=channel, record=rec)):
        item.update(extra)
    return item


def _family(request: Any) -> None:
    if request.matchdict["family"] != "conda":
        raise NotFound(f"artifact type {request.matchdict['family']!r} not found")


def package_records(request: Any, permission: str = Permissions.CHANNEL_READ
                    ) -> tuple[Channel, list[PackageRecord]]:
    channel = require_channel(request, request.matchdict["channel"], permission)
    _family(request)
    name = request.matchdict["name"]
    records = list(request.services.catalog().packages(channel.name, name=name))
    if not records:
        raise NotFound(f"package {name!r} not found in channel {channel.name!r}")
    return channel, records


def latest(records: Iterable[PackageRecord]) -> PackageRecord:
    return max(records, key=lambda r: (version_key(r.version), r.build_number,
                                       r.indexed_timestamp))


def summary(request: Any, channel: Channel, records: list[PackageRecord]) -> dict[str, Any]:
    newest = latest(records)
    versions = sorted({r.version for r in records}, key=version_key, reverse=True)
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
        "versions": versions,
        "platforms": sorted({r.subdir for r in records}),
        "file_count": len(records),
        "latest_release": max(r.indexed_timestamp for r in records),
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


@view_config(route_name="details.packages", request_method="GET", renderer="json")
def list_packages(request: Any) -> Any:
    channel = require_channel(request, request.matchdict["channel"])
    by_name: dict[str, list[PackageRecord]] = {}
    for rec in request.services.catalog().packages(channel.name):
        by_name.setdefault(rec.name, []).append(rec)
    packages = []
    for name, records in sorted(by_name.items()):
        newest = latest(records)
        packages.append({
            "name": name, "family": "conda", "latest_version": newest.version,
            "license": newest.record.get("license") or "",
            "summary": newest.about.get("summary") or "",
            "platforms": sorted({r.subdir for r in records}), "file_count": len(records),
        })
    return {"channel": channel.name, "packages": packages}


@view_config(route_name="details.package", request_method="GET", renderer="json")
def get_package(request: Any) -> Any:
    channel, records = package_records(request)
    return summary(request, channel, records)


@view_config(route_name="details.package", request_method="DELETE", renderer="json",
             permission=Permissions.CHANNEL_DELETE)
def delete_package(request: Any) -> Any:
    _family(request)
    removed = packages.delete_package(request.services, request.context.channel.name,
                                      request.matchdict["name"], actor=request.identity)
    return {"deleted": [r.path for r in removed]}


def _int(request: Any, key: str, default: int, low: int, high: int) -> int:
    raw = request.GET.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{key!r} must be an integer") from None
    if not low <= value <= high:
        raise BadQuery(f"{key!r} must be between {low} and {high}")
    return value


@view_config(route_name="details.files", request_method="GET", renderer="json")
def get_files(request: Any) -> Any:
    channel, records = package_records(request)
    for key in ("subdir", "version", "build", "filename"):
        wanted = request.GET.get(key)
        if wanted:
            records = [r for r in records if getattr(r, key) == wanted]
    records.sort(key=lambda r: (version_key(r.version), r.build_number, r.subdir,
                                r.filename), reverse=True)
    limit = _int(request, "limit", 100, 1, 1000)
    offset = _int(request, "offset", 0, 0, 10**9)
    page = records[offset:offset + limit]
    return {"channel": channel.name, "name": request.matchdict["name"],
            "total": len(records), "offset": offset, "limit": limit,
            "files": [file_json(request, channel, r) for r in page]}


def _dep(spec: str) -> dict[str, str]:
    name, _, constraint = spec.strip().partition(" ")
    return {"name": name, "spec": constraint.strip(), "raw": spec}


@view_config(route_name="details.dependencies", request_method="GET", renderer="json")
def get_dependencies(request: Any) -> Any:
    channel, records = package_records(request)
    version = request.GET.get("version") or latest(records).version
    chosen = [r for r in records if r.version == version]
    if not chosen:
        raise NotFound(f"version {version!r} not found")
    deps: dict[str, dict[str, Any]] = {}
    for rec in chosen:
        for spec in rec.record.get("depends") or []:
            dep = _dep(spec)
            entry = deps.setdefault(spec, {**dep, "subdirs": []})
            entry["subdirs"].append(rec.subdir)
    name = request.matchdict["name"]
    dependents: dict[str, set[str]] = {}
    for rec in request.services.catalog().packages(channel.name):
        if any(_dep(s)["name"] == name for s in rec.record.get("depends") or []):
            dependents.setdefault(rec.name, set()).add(rec.version)
    return {
        "channel": channel.name, "name": name, "version": version,
        "dependencies": sorted(deps.values(), key=lambda d: d["raw"]),
        "dependents": [{"name": n, "versions": sorted(v, key=version_key, reverse=True)}
                       for n, v in sorted(dependents.items())],
    }


@view_config(route_name="details.dependents", request_method="GET", renderer="json")
def get_dependents(request: Any) -> Any:
    data = get_dependencies(request)
    return {"channel": data["channel"], "name": data["name"], "dependents": data["dependents"]}


@view_config(route_name="details.readme", request_method="GET", renderer="json")
def get_readme(request: Any) -> Any:
    channel, records = package_records(request)
    about = latest(records).about
    text = about.get("description") or about.get("summary") or ""
    return {"channel": channel.name, "name": request.matchdict["name"], "readme": text,
            "source": "description" if about.get("description") else
            ("summary" if text else None)}

"""Browsing pages: home (readable channels, search), a channel, a package with its tabs.

Everything comes from the read model (``request.reads``): a channel the caller may not read is
absent from lists and answers like an absent one, policy-hidden files appear nowhere. The
package page's file rows are the API's (``details.file_json``), so what plugins add to a file
there (badge snippets, SBOM link, download counts, CVEs) is what its tabs show.
"""

from __future__ import annotations

from typing import Any

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from repoproxy.domain import members
from repoproxy.domain.permissions import Permissions
from repoproxy.errors import NotFound
from repoproxy.models import PageSection
from repoproxy.names import is_subdir
from repoproxy.plugins import collect
from repoproxy.web.request import Request
from repoproxy.web.ui import helpers, renderer
from repoproxy.web.views.details import file_json, summary

PACKAGES_PER_PAGE = 50
FILES_PER_PAGE = 100
#: the package page's tabs: (id, title); plugins' tabs appear when their data is there
CORE_TABS = (("overview", "Overview"), ("files", "Files"), ("dependencies", "Dependencies"),
             ("readme", "Readme"))
PLUGIN_TABS = (("cves", "CVEs", "cves"), ("badges", "Badges", "badges"),
               ("downloads", "Downloads", "downloads"))


# anyone may look: the read model lists only the channels the caller may read
@view_config(route_name="ui.home", request_method=("GET", "HEAD"),
             renderer=renderer("home.jinja2"), permission=NO_PERMISSION_REQUIRED)
def home(request: Request) -> dict[str, Any]:
    q = str(request.GET.get("q", "")).strip()[:200]
    reads = request.reads
    channels = [reads.overview(ch) for ch in reads.channels()]
    results = reads.search(q) if q else None
    return {"channels": channels, "q": q, "results": results}


def _may(request: Request, permission: str) -> bool:
    return bool(request.has_permission(permission, request.context))


@view_config(route_name="ui.channel", request_method=("GET", "HEAD"),
             renderer=renderer("channel.jinja2"), permission=Permissions.CHANNEL_READ)
def channel_page(request: Request) -> dict[str, Any]:
    channel = request.context.channel
    reads = request.reads
    counts = reads.subdir_counts(channel)
    q = str(request.GET.get("q", "")).strip().lower()[:200]
    subdir = str(request.GET.get("subdir", ""))
    subdir = subdir if is_subdir(subdir) and subdir in counts else ""
    listing = reads.package_summaries(channel)
    if q:
        listing = [p for p in listing if q in p.name.lower()]
    if subdir:
        listing = [p for p in listing if subdir in p.platforms]
    shown, page, pages = helpers.paginate(listing, helpers.page_number(request.GET.get("page")),
                                          PACKAGES_PER_PAGE)
    summaries = reads.summaries(channel, shown)  # this page's packages only
    manage = _may(request, Permissions.CHANNEL_MANAGE)
    return {
        "channel": channel, "overview": reads.overview(channel), "counts": counts,
        "packages": shown, "summaries": summaries, "q": q, "subdir": subdir, "page": page,
        "pages": pages, "matching": len(listing),
        "usage": helpers.usage_snippets(request, channel),
        "uploads": helpers.upload_snippets(request, channel),
        "channel_url": helpers.channel_url(request, channel),
        "may_upload": _may(request, Permissions.CHANNEL_UPLOAD),
        "may_manage": manage,
        "members": members.list_members(request.services, channel.name) if manage else [],
        "max_upload": request.services.settings["repoproxy.max_upload_size"],
        "sections": _plugin_sections(request, channel),
    }


def _plugin_sections(request: Request, channel: Any) -> list[PageSection]:
    """What plugins add to the channel page (its mirrors, ...), each a heading and a table."""
    return [section for section in collect(
        request.services.pm.hook.repoproxy_channel_page_sections(request=request,
                                                                  channel=channel))
            if isinstance(section, PageSection)]


def _tab(request: Request) -> str:
    return str(request.matchdict.get("tab") or "overview")


@view_config(route_name="ui.package", request_method=("GET", "HEAD"),
             renderer=renderer("package.jinja2"), permission=Permissions.CHANNEL_READ)
@view_config(route_name="ui.package_tab", request_method=("GET", "HEAD"),
             renderer=renderer("package.jinja2"), permission=Permissions.CHANNEL_READ)
def package_page(request: Request) -> dict[str, Any]:
    channel = request.context.channel
    reads = request.reads
    package = reads.package(channel, request.matchdict["name"])
    files = [file_json(request, channel, r) for r in reads.files(channel, package.name)]
    info = summary(request, package, files)
    tabs = list(CORE_TABS)
    for tab_id, title, key in PLUGIN_TABS:
        if any(key in f for f in files):  # the plugin that provides it is enabled
            tabs.append((tab_id, title))
    tab = _tab(request)
    if tab not in dict(tabs):
        raise NotFound(f"no tab {tab!r} on this page")
    out: dict[str, Any] = {"channel": channel, "package": package, "info": info, "tabs": tabs,
                           "tab": tab, "files": files, "newest": package.newest}
    if tab == "overview":
        newest = package.newest
        out["usage"] = helpers.usage_snippets(request, channel, package.name)
        out["links"] = [(label, info[key]) for key, label in (
            ("home", "Home page"), ("dev_url", "Development"), ("doc_url", "Documentation"))
            if str(info.get(key, "")).startswith(("https://", "http://"))]
        out["newest_file"] = next(f for f in files if f["filename"] == newest.filename
                                  and f["subdir"] == newest.subdir)
    elif tab == "files":
        _files_tab(request, out, files)
    elif tab == "dependencies":
        version = str(request.GET.get("version", "")) or None
        if version not in package.versions:
            version = None
        out["version"], out["dependencies"] = reads.dependencies(channel, package.name, version)
        out["dependents"] = reads.dependents(channel, package.name)
        out["known"] = reads.package_names(channel)
    elif tab == "readme":
        text, source = reads.readme(channel, package.name)
        out["readme"] = helpers.render_readme(text, source)
    elif tab == "cves":
        out["cves"] = _cves(files)
    elif tab == "badges":
        newest_file = next(f for f in files if f["filename"] == package.newest.filename)
        out["badges"] = [
            dict(kind=kind, preview=str(b["url"]).split("?", 1)[0], **b)
            for kind, b in sorted(newest_file.get("badges", {}).items())]
    elif tab == "downloads":
        out["total"] = sum(int(f.get("downloads") or 0) for f in files)
    return out


def _files_tab(request: Request, out: dict[str, Any], files: list[dict[str, Any]]) -> None:
    subdir = str(request.GET.get("subdir", ""))
    version = str(request.GET.get("version", ""))
    chosen = [f for f in files if (not subdir or f["subdir"] == subdir)
              and (not version or f["version"] == version)]
    shown, page, pages = helpers.paginate(chosen, helpers.page_number(request.GET.get("page")),
                                          FILES_PER_PAGE)
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in shown:  # newest version first (the read model's order)
        groups.setdefault(f["version"], []).append(f)
    out.update(groups=groups, subdir=subdir, version=version, page=page, pages=pages,
               matching=len(chosen))


def _cves(files: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for f in files:
        for cve in f.get("cves") or []:
            entry = found.setdefault(cve["id"], {**cve, "files": []})
            entry["files"].append(f"{f['subdir']}/{f['filename']}")
    return sorted(found.values(), key=lambda c: (-(c["score"] or 0), c["id"]))

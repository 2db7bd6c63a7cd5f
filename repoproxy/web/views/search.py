"""Search across every channel the caller may read: ``GET /api/v1/search?q=&family=conda``."""

from __future__ import annotations

import json
from typing import Any

from pyramid.config import Configurator
from pyramid.view import view_config

from repoproxy.errors import RepoproxyError
from repoproxy.web.access import readable_channels
from repoproxy.web.views.details import version_key


class BadSearch(RepoproxyError):
    status = 400
    code = "bad-request"


def includeme(config: Configurator) -> None:
    config.add_route("api.search", "/api/v1/search")


@view_config(route_name="api.search", request_method="GET", renderer="json")
def search(request: Any) -> Any:
    q = (request.GET.get("q") or "").strip().lower()
    family = request.GET.get("family") or "conda"
    if not q:
        raise BadSearch("'q' is required")
    if family != "conda":
        raise BadSearch(f"unknown family {family!r}: only 'conda' is served here")
    catalog = request.services.catalog()
    results = []
    # only channels the caller may read are ever queried, so nothing else can leak
    for channel in readable_channels(request):
        rows = catalog.db.execute(
            "SELECT name, version, build, subdir, record FROM packages "
            "WHERE channel = ? AND instr(lower(name), ?) > 0",
            [channel.name, q],
        ).fetchall()
        by_name: dict[str, list[tuple[str, str, str, str]]] = {}
        for name, version, build, subdir, record in rows:
            by_name.setdefault(name, []).append((version, build, subdir, record))
        for name, files in sorted(by_name.items()):
            latest = max(files, key=lambda f: version_key(f[0]))
            latest_files = [f for f in files if f[0] == latest[0]]
            results.append({
                "channel": channel.name,
                "name": name,
                "version": latest[0],
                "family": "conda",
                "build": latest[1],
                "license": json.loads(latest[3]).get("license") or "",
                "platforms": sorted({f[2] for f in latest_files}),
                "exact": name.lower() == q,
            })
    results.sort(key=lambda r: (not r["exact"], r["name"], r["channel"]))
    return {"query": q, "family": family, "count": len(results), "results": results}

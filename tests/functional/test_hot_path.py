"""Hot paths (indexes, shards, packages, 304s) do no catalog query at all once warm: the channel
comes from the in-memory snapshot, a known token from the verified-token cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import zstandard

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package


def test_hot_paths_query_nothing(testapp: Any, services: Any, make_channel: Any,
                                 admin_headers: dict[str, str], pkgdir: Path) -> None:
    make_channel("hot")
    path = build_package(PackageSpec("fast", "1.0"), pkgdir)
    upload_raw(testapp, "hot", path, admin_headers)
    index = testapp.get("/hot/noarch/repodata_shards.msgpack.zst").body
    digest = msgpack.unpackb(zstandard.ZstdDecompressor().decompressobj().decompress(index))[
        "shards"]["fast"].hex()
    etag = testapp.get("/hot/noarch/repodata.json").headers["ETag"]
    testapp.get("/hot/noarch/repodata.json", headers=admin_headers)  # the token verified once

    statements: list[str] = []
    services.db().conn.set_trace_callback(statements.append)  # webtest runs in this thread
    try:
        for url, headers, status in [
            (f"/hot/noarch/{path.name}", {}, 200),
            ("/hot/noarch/repodata.json", {"If-None-Match": etag}, 304),
            ("/hot/noarch/repodata.json.zst", {}, 200),
            ("/hot/noarch/repodata_shards.msgpack.zst", {}, 200),
            (f"/hot/noarch/shards/{digest}.msgpack.zst", {}, 200),
            ("/hot/noarch/repodata.json", {"If-None-Match": etag, **admin_headers}, 304),
            ("/hot/noarch/repodata.json.zst", admin_headers, 200),
        ]:
            statements.clear()
            testapp.get(url, headers=headers, status=status)
            assert statements == [], url
    finally:
        services.db().conn.set_trace_callback(None)

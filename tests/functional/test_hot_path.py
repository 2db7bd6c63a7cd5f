"""Hot paths (indexes, shards, packages, 304s) do no catalog query beyond the auth check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import zstandard

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package


def test_hot_paths_query_only_the_channel(testapp: Any, services: Any, make_channel: Any,
                                          admin_headers: dict[str, str], pkgdir: Path) -> None:
    make_channel("hot")
    path = build_package(PackageSpec("fast", "1.0"), pkgdir)
    upload_raw(testapp, "hot", path, admin_headers)
    index = testapp.get("/hot/noarch/repodata_shards.msgpack.zst").body
    digest = msgpack.unpackb(zstandard.ZstdDecompressor().decompressobj().decompress(index))[
        "shards"]["fast"].hex()
    etag = testapp.get("/hot/noarch/repodata.json").headers["ETag"]

    statements: list[str] = []
    services.db().conn.set_trace_callback(statements.append)  # webtest runs in this thread
    try:
        for url, headers, status in [
            (f"/hot/noarch/{path.name}", {}, 200),
            ("/hot/noarch/repodata.json", {"If-None-Match": etag}, 304),
            ("/hot/noarch/repodata.json.zst", {}, 200),
            ("/hot/noarch/repodata_shards.msgpack.zst", {}, 200),
            (f"/hot/noarch/shards/{digest}.msgpack.zst", {}, 200),
        ]:
            statements.clear()
            testapp.get(url, headers=headers, status=status)
            assert len(statements) == 1, (url, statements)
            # the one channel lookup (Catalog.find_channel, constant-cost)
            assert statements[0].startswith("SELECT name, description, privacy, created"), \
                statements
            assert " FROM channels WHERE " in statements[0], statements
    finally:
        services.db().conn.set_trace_callback(None)

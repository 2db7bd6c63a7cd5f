"""Helpers shared by the policy and CVE plugin tests: what a channel really serves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgpack
import zstandard

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package


def unzst(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def served(testapp: Any, channel: str, subdir: str) -> set[str]:
    """File names the subdir serves, checked to agree in repodata.json, .zst and the shards."""
    repodata = testapp.get(f"/{channel}/{subdir}/repodata.json").json
    names = set(repodata["packages"]) | set(repodata["packages.conda"])
    import json

    zst = json.loads(unzst(testapp.get(f"/{channel}/{subdir}/repodata.json.zst").body))
    assert set(zst["packages"]) | set(zst["packages.conda"]) == names
    index = msgpack.unpackb(unzst(
        testapp.get(f"/{channel}/{subdir}/repodata_shards.msgpack.zst").body))
    in_shards: set[str] = set()
    for name, digest in index["shards"].items():
        shard = msgpack.unpackb(unzst(
            testapp.get(f"/{channel}/{subdir}/shards/{digest.hex()}.msgpack.zst").body))
        files = set(shard["packages"]) | set(shard["packages.conda"])
        assert files, f"shard index names {name} but its shard is empty"
        in_shards |= files
    assert in_shards == names, "shards and repodata.json disagree"
    return names


def served_all(testapp: Any, channel: str) -> set[str]:
    subdirs = testapp.get(f"/api/v1/channels/{channel}").json["subdirs"]
    return {f"{sd}/{fn}" for sd in subdirs for fn in served(testapp, channel, sd)}


def upload_specs(testapp: Any, channel: str, pkgdir: Path, headers: dict[str, str],
                 specs: list[tuple[PackageSpec, str]]) -> list[str]:
    """Build and upload (spec, fmt) pairs; returns ``subdir/filename`` of each."""
    out = []
    for spec, fmt in specs:
        path = build_package(spec, pkgdir, fmt)
        upload_raw(testapp, channel, path, headers)
        out.append(f"{spec.subdir}/{path.name}")
    return out

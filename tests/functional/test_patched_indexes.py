"""Publishes patch repodata.json, run_exports.json and channeldata.json (pipeline/jsonindex.py):
after every kind of change, and after a restart (no layout in memory), each file is byte for
byte what a whole rebuild from the catalog writes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from repoproxy.domain.channels import create_channel
from repoproxy.domain.core import Core, load_core
from repoproxy.testing.packages import PackageSpec, build_package

FILES = ("repodata.json", "repodata.json.zst", "run_exports.json", "run_exports.json.zst")


def _core(root: Path) -> Core:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    return load_core({"repoproxy.root": str(root), "repoproxy.log_requests": "false"}, env)


def _snapshot(root: Path) -> dict[str, bytes]:
    import zstandard

    channel = root / "channels" / "ch"
    out = {"channeldata.json": (channel / "channeldata.json").read_bytes()}
    for subdir in ("noarch", "linux-64"):
        for name in FILES:
            path = channel / subdir / name
            if path.exists():
                data = path.read_bytes()
                # the .zst compared by what it holds (its frames are not the point)
                out[f"{subdir}/{name}"] = (zstandard.ZstdDecompressor().decompress(data)
                                           if name.endswith(".zst") else data)
    return out


def _rebuilt_whole(root: Path, tmp: Path) -> dict[str, bytes]:
    copy = tmp / "whole"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(root, copy)
    core = _core(copy)
    try:
        for subdir in ("noarch", "linux-64"):
            if (copy / "channels" / "ch" / subdir).is_dir():
                core.indexer.build("ch", subdir, force=True)
        core.indexer.build_channeldata("ch")
        return _snapshot(copy)
    finally:
        core.close()


def test_patched_index_files_equal_whole_rebuilds(tmp_path: Path) -> None:
    root, pkgs = tmp_path / "root", tmp_path / "pkgs"
    core = _core(root)
    create_channel(core, "ch")

    def ingest(spec: PackageSpec, **kwargs: Any) -> None:
        core.ingestor.ingest_file("ch", build_package(spec, pkgs), **kwargs)

    def check() -> None:
        assert _snapshot(root) == _rebuilt_whole(root, tmp_path)

    for i in range(12):
        ingest(PackageSpec(f"p{i % 5}", f"1.{i}", run_exports={"weak": [f"p{i % 5} >=1.{i}"]},
                           subdir="linux-64" if i % 3 == 0 else "noarch"))
    check()
    ingest(PackageSpec("a-first", "0.1"))  # sorts before every file so far
    ingest(PackageSpec("zz-last", "9.9", build="1"))  # after every one
    check()
    # a member replaced in place
    ingest(PackageSpec("p1", "1.1", about={"summary": "replaced"}), force=True)
    check()
    core.ingestor.remove_many("ch", [("noarch", "p1-1.1-0.conda"),
                                     ("noarch", "a-first-0.1-0.conda")])
    check()
    core.close()

    core = _core(root)  # a new process: no layouts in memory, channeldata.json scanned
    ingest(PackageSpec("p2", "7.0"))
    check()
    ingest(PackageSpec("p3", "7.0", subdir="linux-64"))
    core.ingestor.remove_many("ch", [("noarch", "zz-last-9.9-1.conda")])
    check()
    core.close()

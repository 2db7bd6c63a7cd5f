"""Start-up recovery of a copied or restored server root.

A copy (``cp -r``, a restored backup, a volume moved to another disk) gives every package file
a new inode and mtime, which is also what a crash between rename and commit leaves behind.
Recovery tells the two apart by the file's digest: bytes that are their row's only have their
identity recorded; anything else is read again as before.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from repoproxy.domain import channels, packages
from repoproxy.domain.core import load_core
from repoproxy.domain.recovery import recover
from repoproxy.testing.packages import PackageSpec, build_package


def _identities(core: Any, tree: Path) -> tuple[dict[str, Any], dict[str, tuple[int, int, int]]]:
    """(catalog identities, the same read from the disk) of the channel's noarch files."""
    known = core.catalog().file_identity("c", "noarch")
    disk = {}
    for name in known:
        st = (tree / name).stat()
        disk[name] = (st.st_size, st.st_ino, st.st_mtime_ns)
    return known, disk


def test_a_copied_root_is_recovered_without_rereading_its_files(
        services: Any, root: Path, tmp_path: Path, pkgdir: Path) -> None:
    channels.create_channel(services, "c", "", "public")
    paths = [build_package(PackageSpec(f"p{i}", "1.0"), pkgdir, "conda" if i % 2 else "tar.bz2")
             for i in range(6)]
    packages.import_files(services, "c", [(p, None) for p in paths])
    rows = {r.filename: r for r in services.catalog().packages("c")}
    services.close()

    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    tree = copy / "channels" / "c" / "noarch"
    # one file of the copy changed in place, its size kept: its bytes are not its row's
    changed = tree / paths[0].name
    data = bytearray(changed.read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed.write_bytes(bytes(data))

    core = load_core({"repoproxy.root": str(copy), "repoproxy.log_requests": "false"}, {})
    try:
        known, disk = _identities(core, tree)
        assert all(known[n][:3] != disk[n] for n in known)  # every inode is new
        stats = core.ingestor.reconcile("c", "noarch")
        assert stats["refreshed"] == len(paths) - 1
        assert stats["added"] == stats["removed"] == 0
        # the changed file was read again: re-indexed with its new bytes, or refused
        assert stats["updated"] + stats["invalid"] == 1

        known, disk = _identities(core, tree)
        unchanged = [p.name for p in paths[1:]]
        assert all(known[n][:3] == disk[n] for n in unchanged)
        # their rows are the same rows: nothing was re-committed
        after = {r.filename: r for r in core.catalog().packages("c")}
        for name in unchanged:
            assert after[name].record == rows[name].record
            assert after[name].indexed_timestamp == rows[name].indexed_timestamp

        # recovery at start-up now finds only what reading cannot fix
        again = core.ingestor.reconcile("c", "noarch")
        assert again["refreshed"] == again["added"] == again["removed"] == 0
        recover(core)
        assert core.catalog().file_identity("c", "noarch").keys() == known.keys()
    finally:
        core.close()

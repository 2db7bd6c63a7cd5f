"""The package builder makes packages that libarchive reads and py-rattler indexes and installs."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import time
import tracemalloc
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libarchive
import pytest
import zstandard

from repoproxy.testing.packages import (
    DEFAULT_TIMESTAMP,
    HOSTILE_KINDS,
    PackageSpec,
    build_conda,
    build_hostile,
    build_many,
    build_package,
    build_tar_bz2,
)

FORMATS = ["conda", "tar.bz2"]


@dataclass
class Member:
    name: str
    size: int
    mode: int
    uid: int
    mtime: int
    linkpath: str | None
    data: bytes | None  # None for members too large to keep


def _entries(reader: Any, keep_below: int) -> list[Member]:
    members = []
    with reader as archive:
        for entry in archive:
            data = None
            if entry.isfile and (entry.size or 0) < keep_below:
                data = b"".join(entry.get_blocks())
            members.append(
                Member(
                    name=entry.pathname,
                    size=entry.size or 0,
                    mode=entry.mode & 0o7777,
                    uid=entry.uid,
                    mtime=entry.mtime,
                    linkpath=entry.linkpath,
                    data=data,
                )
            )
    return members


def read_package(path: Path, keep_below: int = 32 * 1024**2) -> dict[str, list[Member]]:
    """Members by part (``info``/``pkg`` for .conda, ``all`` for .tar.bz2), via libarchive."""
    if path.name.endswith(".tar.bz2"):
        return {"all": _entries(libarchive.file_reader(str(path)), keep_below)}
    with zipfile.ZipFile(path) as zf:
        stem = path.name[: -len(".conda")]
        return {
            part: _entries(libarchive.memory_reader(zf.read(f"{part}-{stem}.tar.zst")), keep_below)
            for part in ("info", "pkg")
        }


def info_members(path: Path, keep_below: int = 32 * 1024**2) -> dict[str, Member]:
    parts = read_package(path, keep_below)
    members = parts.get("info", parts.get("all", []))
    # a .tar.bz2 mixes payload in: keep info/ and the hostile names that escape the prefix
    return {
        m.name: m for m in members if m.name.startswith(("info/", "/")) or ".." in m.name.split("/")
    }


def index_of(path: Path) -> dict[str, Any]:
    data = info_members(path)["info/index.json"].data
    assert data is not None
    return dict(json.loads(data))


# --- index.json and the info/ files -------------------------------------------------


def test_index_json_noarch_matches_conda_build_shape() -> None:
    assert PackageSpec("a", depends=["b >=1"]).index() == {
        "name": "a",
        "version": "1.0",
        "build": "0",
        "build_number": 0,
        "depends": ["b >=1"],
        "license": "MIT",
        "subdir": "noarch",
        "noarch": "generic",
        "arch": None,
        "platform": None,
        "timestamp": DEFAULT_TIMESTAMP,
    }


@pytest.mark.parametrize(
    ("subdir", "arch", "platform"),
    [
        ("linux-64", "x86_64", "linux"),
        ("linux-aarch64", "aarch64", "linux"),
        ("osx-arm64", "arm64", "osx"),
        ("win-64", "x86_64", "win"),
    ],
)
def test_index_json_platform_subdirs(subdir: str, arch: str, platform: str) -> None:
    index = PackageSpec("a", subdir=subdir).index()
    assert (index["arch"], index["platform"], index["subdir"]) == (arch, platform, subdir)
    assert "noarch" not in index


def test_index_json_optional_fields_and_extra_index_wins() -> None:
    spec = PackageSpec(
        "a",
        "2.0",
        build="py_1",
        build_number=1,
        constrains=["c <2"],
        license=None,
        license_family="BSD",
        purls=["pkg:pypi/a@2.0"],
        timestamp=1_600_000_000_000,
        extra_index={"track_features": "x", "build_number": 7},
    )
    index = spec.index()
    assert index["constrains"] == ["c <2"]
    assert "license" not in index
    assert index["license_family"] == "BSD"
    assert index["purls"] == ["pkg:pypi/a@2.0"]
    assert index["timestamp"] == 1_600_000_000_000
    assert (index["track_features"], index["build_number"]) == ("x", 7)
    assert spec.stem == "a-2.0-py_1"
    # constrains is left out when empty, like conda-build does
    assert "constrains" not in PackageSpec("a").index()


@pytest.mark.parametrize("fmt", FORMATS)
def test_info_files_describe_the_payload(tmp_path: Path, fmt: str) -> None:
    files = {"bin/tool": b"#!/bin/sh\necho hi\n", "share/a/data.txt": b"data"}
    spec = PackageSpec(
        "a",
        files=files,
        about={"summary": "custom", "extra": 1},
        run_exports={"weak": ["a >=1.0"]},
    )
    path = build_package(spec, tmp_path, fmt)
    info = info_members(path)
    assert sorted(info) == [
        "info/about.json",
        "info/files",
        "info/index.json",
        "info/paths.json",
        "info/run_exports.json",
    ]
    raw = {name: m.data or b"" for name, m in info.items()}
    assert raw["info/index.json"] == json.dumps(spec.index(), indent=2, sort_keys=True).encode()
    assert raw["info/files"] == b"bin/tool\nshare/a/data.txt\n"
    assert json.loads(raw["info/paths.json"]) == {
        "paths": [
            {
                "_path": p,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(c).hexdigest(),
                "size_in_bytes": len(c),
            }
            for p, c in sorted(files.items())
        ],
        "paths_version": 1,
    }
    about = json.loads(raw["info/about.json"])
    assert about["summary"] == "custom"
    assert about["extra"] == 1
    assert about["license"] == "MIT"
    assert "home" in about
    assert json.loads(raw["info/run_exports.json"]) == {"weak": ["a >=1.0"]}


def test_default_payload_and_no_run_exports(tmp_path: Path) -> None:
    path = build_conda(PackageSpec("a", "3.1"), tmp_path)
    pkg = read_package(path)["pkg"]
    assert [m.name for m in pkg] == ["share/a/3.1.txt"]
    assert pkg[0].data
    assert "info/run_exports.json" not in info_members(path)


# --- archive layout -----------------------------------------------------------------


def test_conda_is_a_stored_zip_in_cep34_order(tmp_path: Path) -> None:
    path = build_conda(PackageSpec("a", files={"x/y.txt": b"payload"}), tmp_path)
    assert path == tmp_path / "a-1.0-0.conda"
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == [
            "metadata.json",
            "pkg-a-1.0-0.tar.zst",
            "info-a-1.0-0.tar.zst",
        ]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        # streaming zip readers need sizes in the local headers, not in data descriptors
        assert all(not i.flag_bits & 0x08 for i in infos)
        assert json.loads(zf.read("metadata.json")) == {"conda_pkg_format_version": 2}
        # the inner tarballs are plain zstd frames that zstandard + tarfile read too
        raw = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(zf.read(infos[1].filename)))
        with tarfile.open(fileobj=raw, mode="r|") as tar:
            assert [(m.name, tar.extractfile(m).read()) for m in tar] == [  # type: ignore[union-attr]
                ("x/y.txt", b"payload")
            ]
    info = read_package(path)["info"]
    assert all(m.name.startswith("info/") for m in info)


def test_tar_bz2_has_info_first_and_deterministic_headers(tmp_path: Path) -> None:
    files = {"bin/run": b"#!/bin/sh\n", "lib/a.txt": b"a"}
    path = build_tar_bz2(PackageSpec("a", files=files, timestamp=1_650_000_000_123), tmp_path)
    assert path == tmp_path / "a-1.0-0.tar.bz2"
    assert path.read_bytes()[:3] == b"BZh"
    members = read_package(path)["all"]
    names = [m.name for m in members]
    assert names == [
        "info/about.json",
        "info/files",
        "info/index.json",
        "info/paths.json",
        "bin/run",
        "lib/a.txt",
    ]
    assert {(m.uid, m.mtime) for m in members} == {(0, 1_650_000_000)}
    modes = {m.name: m.mode for m in members}
    assert modes["lib/a.txt"] == 0o644
    assert modes["info/index.json"] == 0o644
    assert modes["bin/run"] == 0o755  # scripts stay runnable once installed


def test_builds_are_reproducible(tmp_path: Path) -> None:
    spec = PackageSpec("a", depends=["b"], run_exports={"weak": ["a"]})
    first = [build_package(spec, tmp_path / "one", fmt) for fmt in FORMATS]
    time.sleep(1.1)  # a leaked wall-clock mtime would show up as a difference
    second = [build_package(spec, tmp_path / "two", fmt) for fmt in FORMATS]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        build_package(PackageSpec("a"), tmp_path, "zip")
    for bad in ("/etc/passwd", "../x", "a/../../x", "info/index.json", ""):
        with pytest.raises(ValueError, match="payload path"):
            build_conda(PackageSpec("a", files={bad: b"x"}), tmp_path)
    with pytest.raises(ValueError, match="hostile kind"):
        build_hostile("nope", tmp_path)


def test_build_many_makes_distinct_packages_with_several_versions(tmp_path: Path) -> None:
    paths = build_many(tmp_path, 12, fmt="tar.bz2", subdir="linux-64", prefix="p")
    assert len(paths) == len({p.name for p in paths}) == 12
    assert paths[0].name == "p0-1.0-0.tar.bz2"
    assert paths[11].name == "p2-1.1-0.tar.bz2"
    index = index_of(paths[7])
    assert (index["name"], index["version"], index["subdir"]) == ("p1", "1.2", "linux-64")


# --- hostile packages ---------------------------------------------------------------


def _check_hostile(kind: str, path: Path, fmt: str) -> None:
    if kind == "empty":
        assert path.stat().st_size == 0
        return
    if kind in ("truncated", "not_archive"):
        # no central directory for zipfile, no complete stream for libarchive
        expected = zipfile.BadZipFile if fmt == "conda" else libarchive.ArchiveError
        with pytest.raises(expected):
            read_package(path)
        if kind == "not_archive":
            assert path.read_bytes().startswith(b"this is not a conda package\n")
        return
    info = info_members(path)
    if kind == "missing_index":
        assert "info/index.json" not in info
        assert "info/paths.json" in info
        return
    raw_index = info["info/index.json"].data
    assert raw_index is not None
    if kind == "invalid_json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(raw_index)
        return
    index = json.loads(raw_index)
    if kind == "name_mismatch":
        assert index["name"] == "not-bad"
        assert path.name.startswith("bad-1.0-0.")
    elif kind == "wrong_subdir":
        assert (index["subdir"], index["platform"], index["arch"]) == (
            "linux-64",
            "linux",
            "x86_64",
        )
        assert "noarch" not in index
    elif kind == "traversal":
        assert "info/../../evil.txt" in info
    elif kind == "absolute":
        assert "/etc/evil.txt" in info
    elif kind == "zipslip":
        if fmt == "conda":
            with zipfile.ZipFile(path) as zf:
                assert zf.namelist() == [
                    "metadata.json",
                    "pkg-bad-1.0-0.tar.zst",
                    "info-bad-1.0-0.tar.zst",
                    "../evil.txt",
                ]
        else:
            assert info["info/link"].linkpath == "../../../etc/passwd"
    elif kind == "bomb":
        assert index["name"] == "bad"
        assert info["info/bomb.bin"].size == 2 * 1024**2
        assert path.stat().st_size < 64 * 1024
    elif kind == "huge_index":
        assert len(raw_index) == 3 * 1024**2
        assert index["name"] == "bad"
    elif kind == "future_timestamp":
        years = (index["timestamp"] / 1000 - time.time()) / (365.25 * 86400)
        assert 9.9 < years < 10.1
    else:  # pragma: no cover - a new kind needs a check here
        pytest.fail(f"no check for {kind}")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", HOSTILE_KINDS)
def test_hostile_kind_is_what_it_claims(tmp_path: Path, kind: str, fmt: str) -> None:
    size = {"bomb": 2 * 1024**2, "huge_index": 3 * 1024**2}.get(kind, 0)
    path = build_hostile(kind, tmp_path, fmt=fmt, size=size)
    assert path == tmp_path / f"bad-1.0-0.{fmt}"
    _check_hostile(kind, path, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_is_half_of_a_valid_package(tmp_path: Path, fmt: str) -> None:
    valid = build_package(PackageSpec("bad"), tmp_path / "valid", fmt)
    cut = build_hostile("truncated", tmp_path / "cut", fmt=fmt)
    assert cut.read_bytes() == valid.read_bytes()[: valid.stat().st_size // 2]


def test_wrong_subdir_differs_from_the_requested_one(tmp_path: Path) -> None:
    path = build_hostile("wrong_subdir", tmp_path, subdir="linux-64")
    assert index_of(path)["subdir"] == "win-64"


@pytest.mark.parametrize("fmt", FORMATS)
def test_default_bomb_is_streamed_not_held_in_memory(tmp_path: Path, fmt: str) -> None:
    tracemalloc.start()
    try:
        path = build_hostile("bomb", tmp_path, fmt=fmt)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024**2
    bomb = info_members(path, keep_below=0)["info/bomb.bin"]
    assert bomb.size == 64 * 1024**2
    assert path.stat().st_size < 256 * 1024


def test_default_huge_index_is_16_mib_of_valid_json(tmp_path: Path) -> None:
    raw = info_members(build_hostile("huge_index", tmp_path))["info/index.json"].data
    assert raw is not None
    assert len(raw) == 16 * 1024**2
    assert json.loads(raw)["version"] == "1.0"


# --- py-rattler indexes and installs them -------------------------------------------

# py-rattler 0.28 can crash at interpreter exit after its work succeeded, so it runs in a
# child that prints one JSON line and leaves with os._exit before any teardown.
RATTLER_SCRIPT = """
import asyncio, json, os, sys
from pathlib import Path

import rattler
import rattler.index

channel, prefix, cache = (Path(a) for a in sys.argv[1:4])
specs = json.loads(sys.argv[4])


async def main():
    await rattler.index.index_fs(channel, write_shards=False, write_zst=False)
    gateway = rattler.Gateway(cache_dir=cache / "repodata", show_progress=False)
    records = await rattler.solve(
        sources=[channel.as_uri()],
        specs=specs,
        gateway=gateway,
        platforms=["linux-64", "noarch"],
        virtual_packages=[],
    )
    await rattler.install(
        records,
        target_prefix=prefix,
        cache_dir=cache / "pkgs",
        platform=rattler.Subdir("linux-64"),
        show_progress=False,
    )
    return sorted(str(r.file_name) for r in records)


try:
    result = {"installed": asyncio.run(main())}
except BaseException as exc:
    result = {"error": f"{type(exc).__name__}: {exc}"}
sys.stdout.write(json.dumps(result) + "\\n")
sys.stdout.flush()
sys.stderr.flush()
os._exit(0 if "error" not in result else 1)
"""

CHANNEL = [
    (PackageSpec("lib", "1.0", subdir="linux-64", files={"lib/lib.txt": b"lib 1.0"}), "conda"),
    (
        PackageSpec(
            "lib",
            "1.1",
            subdir="linux-64",
            build="h1_1",
            build_number=1,
            files={"lib/lib.txt": b"lib 1.1"},
            run_exports={"weak": ["lib >=1.1"]},
        ),
        "tar.bz2",
    ),
    (
        PackageSpec(
            "app",
            "2.0",
            depends=["lib >=1.0"],
            files={"bin/app": b"#!/bin/sh\necho app\n", "share/app/data.txt": b"app data"},
        ),
        "tar.bz2",
    ),
    (PackageSpec("app", "1.0", depends=["lib"]), "conda"),
    (PackageSpec("tool", "0.1", depends=["app >=2"], constrains=["lib <2"]), "conda"),
    (PackageSpec("other", "5.0", subdir="linux-64", purls=["pkg:generic/other@5.0"]), "tar.bz2"),
]


def _run_rattler(channel: Path, prefix: Path, cache: Path, specs: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            RATTLER_SCRIPT,
            *map(str, (channel, prefix, cache)),
            json.dumps(specs),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cache), "XDG_CACHE_HOME": str(cache / "xdg")},
    )
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr
    result = dict(json.loads(lines[-1]))
    assert proc.returncode == 0, (result, proc.stderr)
    return result


@pytest.mark.slow
def test_rattler_indexes_solves_and_installs(tmp_path: Path) -> None:
    channel = tmp_path / "ch"
    built = {}
    for spec, fmt in CHANNEL:
        path = build_package(spec, channel / spec.subdir, fmt)
        built[path.name] = path

    result = _run_rattler(channel, tmp_path / "prefix", tmp_path / "cache", ["tool", "lib ==1.0"])

    # the index lists every package, under the key of its format, with our sha256/size
    seen = set()
    for subdir in ("noarch", "linux-64"):
        repodata = json.loads((channel / subdir / "repodata.json").read_text())
        for key, ext in (("packages", ".tar.bz2"), ("packages.conda", ".conda")):
            for fn, record in repodata[key].items():
                assert fn.endswith(ext)
                data = built[fn].read_bytes()
                assert record["sha256"] == hashlib.sha256(data).hexdigest()
                assert record["size"] == len(data)
                assert record["subdir"] == subdir
                assert record["timestamp"] == DEFAULT_TIMESTAMP
                seen.add(fn)
    assert seen == set(built)
    linux = json.loads((channel / "linux-64" / "repodata.json").read_text())
    assert linux["packages"]["lib-1.1-h1_1.tar.bz2"]["arch"] == "x86_64"
    tool = json.loads((channel / "noarch" / "repodata.json").read_text())["packages.conda"]
    assert tool["tool-0.1-0.conda"]["constrains"] == ["lib <2"]
    assert tool["tool-0.1-0.conda"]["depends"] == ["app >=2"]

    # both formats, from both subdirs, installed with their payload
    assert result["installed"] == ["app-2.0-0.tar.bz2", "lib-1.0-0.conda", "tool-0.1-0.conda"]
    prefix = tmp_path / "prefix"
    assert (prefix / "lib" / "lib.txt").read_bytes() == b"lib 1.0"
    assert (prefix / "share" / "app" / "data.txt").read_bytes() == b"app data"
    assert (prefix / "share" / "tool" / "0.1.txt").is_file()
    app = prefix / "bin" / "app"
    assert app.read_bytes() == b"#!/bin/sh\necho app\n"
    assert app.stat().st_mode & 0o111
    meta = json.loads((prefix / "conda-meta" / "tool-0.1-0.json").read_text())
    assert meta["files"] == ["share/tool/0.1.txt"]

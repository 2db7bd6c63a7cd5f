"""What clients rely on: validators, 304s, HEAD, shards, empty channels, 404 for variants."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path
from typing import Any

import msgpack
import zstandard

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

INDEXES = ["repodata.json", "repodata.json.zst", "repodata_shards.msgpack.zst",
           "run_exports.json"]


def _unzst(data: bytes) -> Any:
    return msgpack.unpackb(zstandard.ZstdDecompressor().decompressobj().decompress(data))


def _published(testapp: Any, make_channel: Any, admin_headers: dict[str, str],
               pkgdir: Path) -> list[Path]:
    make_channel("proto")
    paths = [
        build_package(PackageSpec("one", "1.0", depends=["two"]), pkgdir, "conda"),
        build_package(PackageSpec("two", "1.0"), pkgdir, "tar.bz2"),
        build_package(PackageSpec("two", "2.0"), pkgdir, "conda"),
    ]
    for p in paths:
        upload_raw(testapp, "proto", p, admin_headers)
    return paths


def test_new_empty_channel_serves_noarch_repodata(testapp: Any, make_channel: Any) -> None:
    make_channel("empty")
    body = testapp.get("/empty/noarch/repodata.json").json
    assert body == {"info": {"subdir": "noarch"}, "packages": {}, "packages.conda": {},
                    "removed": [], "repodata_version": 1}
    index = _unzst(testapp.get("/empty/noarch/repodata_shards.msgpack.zst").body)
    assert index["shards"] == {}
    assert index["info"]["base_url"] == "./"
    assert index["info"]["shards_base_url"] == "./shards/"
    assert testapp.get("/empty/channeldata.json").json["subdirs"] == ["noarch"]


def test_absent_variants_and_subdirs_are_404(testapp: Any, make_channel: Any) -> None:
    make_channel("empty")
    for path in ("/empty/linux-64/repodata.json", "/empty/linux-64/repodata_shards.msgpack.zst",
                 "/empty/noarch/repodata.json.bz2", "/empty/noarch/current_repodata.json",
                 "/empty/noarch/nothing-1.0-0.conda", "/empty/noarch/.hidden.json",
                 f"/empty/noarch/shards/{'0' * 64}.msgpack.zst"):
        assert testapp.get(path, status=404).json["error"] == "not-found"
        testapp.head(path, status=404)


def test_validators_and_304(testapp: Any, make_channel: Any, admin_headers: dict[str, str],
                            pkgdir: Path) -> None:
    paths = _published(testapp, make_channel, admin_headers, pkgdir)
    for name in [*INDEXES, paths[0].name]:
        url = f"/proto/noarch/{name}"
        first = testapp.get(url)
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert etag.startswith('"')
        assert not etag.startswith('W/')
        head = testapp.head(url)
        assert head.headers["ETag"] == etag
        assert head.headers["Content-Length"] == str(len(first.body))
        for validators in ({"If-None-Match": etag}, {"If-Modified-Since": modified}):
            r = testapp.get(url, headers=validators, status=304)
            assert r.headers["ETag"] == etag
            assert r.headers["Last-Modified"] == modified
            assert r.body == b""
    pkg = testapp.get(f"/proto/noarch/{paths[0].name}")
    assert "immutable" in pkg.headers["Cache-Control"]
    assert pkg.body == paths[0].read_bytes()
    assert "immutable" not in testapp.get("/proto/noarch/repodata.json").headers["Cache-Control"]


def test_gzip_when_asked(app: Any, testapp: Any, make_channel: Any,
                         admin_headers: dict[str, str], pkgdir: Path) -> None:
    from webob import Request

    _published(testapp, make_channel, admin_headers, pkgdir)
    plain = testapp.get("/proto/noarch/repodata.json")
    # straight through WebOb: WebTest would decode the body and drop Content-Encoding
    zipped = Request.blank("/proto/noarch/repodata.json",
                           headers={"Accept-Encoding": "gzip"}).get_response(app)
    assert zipped.status_int == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert json.loads(gzip.decompress(zipped.body)) == plain.json
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert "Content-Encoding" not in plain.headers


def test_shards_are_content_addressed_and_match_repodata(
        testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path) -> None:
    _published(testapp, make_channel, admin_headers, pkgdir)
    repodata = testapp.get("/proto/noarch/repodata.json").json
    index = _unzst(testapp.get("/proto/noarch/repodata_shards.msgpack.zst").body)
    assert set(index["shards"]) == {"one", "two"}
    seen = {}
    for name, digest in index["shards"].items():
        assert isinstance(digest, bytes)
        assert len(digest) == 32
        r = testapp.get(f"/proto/noarch/shards/{digest.hex()}.msgpack.zst")
        assert hashlib.sha256(r.body).digest() == digest
        assert "immutable" in r.headers["Cache-Control"]
        shard = _unzst(r.body)
        for key in ("packages", "packages.conda"):
            for fn, rec in shard[key].items():
                assert rec["name"] == name
                assert isinstance(rec["sha256"], bytes)
                assert isinstance(rec["md5"], bytes)
                expected = dict(repodata[key][fn])
                expected["sha256"] = bytes.fromhex(expected["sha256"])
                expected["md5"] = bytes.fromhex(expected["md5"])
                assert rec == expected
                seen[fn] = True
    assert len(seen) == 3


def test_adding_one_package_rewrites_one_shard(testapp: Any, make_channel: Any,
                                               admin_headers: dict[str, str],
                                               pkgdir: Path) -> None:
    _published(testapp, make_channel, admin_headers, pkgdir)
    before = _unzst(testapp.get("/proto/noarch/repodata_shards.msgpack.zst").body)["shards"]
    upload_raw(testapp, "proto", build_package(PackageSpec("two", "3.0"), pkgdir), admin_headers)
    after = _unzst(testapp.get("/proto/noarch/repodata_shards.msgpack.zst").body)["shards"]
    assert after["one"] == before["one"]
    assert after["two"] != before["two"]
    # the superseded shard stays available for clients holding the older index
    testapp.get(f"/proto/noarch/shards/{before['two'].hex()}.msgpack.zst", status=200)


def test_delete_rebuilds_repodata_and_shards(testapp: Any, make_channel: Any,
                                             admin_headers: dict[str, str],
                                             pkgdir: Path) -> None:
    paths = _published(testapp, make_channel, admin_headers, pkgdir)
    testapp.delete(f"/api/v1/delete/proto/noarch/{paths[0].name}", headers=admin_headers)
    repodata = testapp.get("/proto/noarch/repodata.json").json
    assert paths[0].name not in repodata["packages.conda"]
    index = _unzst(testapp.get("/proto/noarch/repodata_shards.msgpack.zst").body)
    assert "one" not in index["shards"]
    testapp.get(f"/proto/noarch/{paths[0].name}", status=404)
    assert "one" not in testapp.get("/proto/channeldata.json").json["packages"]


def test_run_exports_and_channeldata(testapp: Any, make_channel: Any,
                                     admin_headers: dict[str, str], pkgdir: Path) -> None:
    make_channel("rx")
    spec = PackageSpec("lib", "1.2", subdir="linux-64", run_exports={"weak": ["lib >=1.2"]},
                       about={"summary": "a lib", "home": "https://example.org"})
    path = build_package(spec, pkgdir)
    upload_raw(testapp, "rx", path, admin_headers)
    upload_raw(testapp, "rx", build_package(PackageSpec("lib", "1.10", subdir="linux-64"),
                                            pkgdir), admin_headers)
    rx = testapp.get("/rx/linux-64/run_exports.json").json
    assert rx["packages.conda"][path.name] == {"run_exports": {"weak": ["lib >=1.2"]}}
    cd = testapp.get("/rx/channeldata.json").json
    assert cd["packages"]["lib"]["version"] == "1.10"  # conda's ordering: 1.10 > 1.2
    assert cd["packages"]["lib"]["subdirs"] == ["linux-64"]
    assert sorted(cd["subdirs"]) == ["linux-64", "noarch"]


def test_token_path_prefix_on_every_route(testapp: Any, make_channel: Any,
                                          admin_token: str) -> None:
    make_channel("tp", privacy="private")
    testapp.get("/tp/noarch/repodata.json", status=401)
    testapp.get(f"/t/{admin_token}/tp/noarch/repodata.json", status=200)
    testapp.get(f"/t/{admin_token}/api/v1/channels/tp", status=200)
    r = testapp.get("/tp/noarch/repodata.json", status=401)
    assert "WWW-Authenticate" in r.headers

"""End to end: the nginx front of `repoproxy nginx-conf` answers exactly as repoproxy alone.

A real `repoproxy serve` (with repoproxy.accel_redirect) and a real nginx running the printed
configuration. Every request goes both ways, and status, body and the headers clients act on
(validators, cache policy, type, encoding) must agree: public indexes, shards and packages
(200 and 304), a private channel with and without a token, a policy-hidden file, an absent
file, an absent channel; and a channel turned private stops being served by nginx at once.
"""

from __future__ import annotations

import http.client
from pathlib import Path
from typing import Any

import msgpack
import pytest
import requests
import zstandard

from repoproxy.cli.http import Client
from repoproxy.testing.front import (
    ACCEL,
    NGINX,
    RunningNginx,
    env_without_settings,
    nginx_conf,
)
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.server import RunningServer, free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(NGINX is None, reason="nginx is not installed (.ci/run installs it "
                                              "with apt: apt-get install nginx)"),
]

COMPARED = ("ETag", "Last-Modified", "Cache-Control", "Content-Type", "Content-Encoding",
            "Vary", "Content-Length")
SPECS = [
    PackageSpec("libcore", "2.0", subdir="linux-64", files={"lib/libcore.txt": b"core 2.0"}),
    PackageSpec("helper", "0.5", depends=["libcore >=2,<3"],
                files={"share/helper/README": b"helper 0.5"}),
    PackageSpec("app", "3.0", subdir="linux-64", depends=["helper >=0.5", "libcore"],
                files={"bin/app": b"#!/bin/sh\necho app 3.0\n"}),
]


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Any:
    tmp = tmp_path_factory.mktemp("front")
    env = env_without_settings(REPOPROXY_ACCEL_REDIRECT=ACCEL)
    srv = RunningServer(tmp / "root", free_port(), tmp / "server.log", env).start()
    nginx = alone = None
    try:
        admin = srv.token("--admin", "--name", "admin")
        client = Client(srv.url, admin)
        pkgdir = tmp / "pkgs"
        pkgdir.mkdir()
        files: dict[str, str] = {}
        for name, privacy in (("pub", "public"), ("sec", "private"), ("pol", "public")):
            client.request("POST", "/api/v1/channels", json={"name": name, "privacy": privacy})
            for spec in SPECS:
                path = build_package(spec, pkgdir)
                client.upload(name, path)
                files[spec.name] = f"{spec.subdir}/{path.name}"
        # the policy hides helper and libcore in pol: their files are absent there
        r = requests.post(f"{srv.url}/api/v1/policies", timeout=60,
                          headers={"Authorization": f"Bearer {admin}"},
                          json={"name": "only-app", "channel_name": "pol",
                                "package_name": "app"})
        assert r.status_code == 201, r.text
        reader = srv.token("--channel", "sec", "--permission", "read", "--name", "reader")
        # the reference: the same root served by repoproxy alone (no accel_redirect)
        alone = RunningServer(srv.root, free_port(), tmp / "alone.log",
                              env_without_settings()).start()
        port = free_port()
        conf = nginx_conf(srv.root, [f"127.0.0.1:{srv.port}"], f"127.0.0.1:{port}", env)
        nginx = RunningNginx(conf, tmp / "nginx", port).start()
        yield alone, nginx, admin, reader, files, srv
    finally:
        if nginx is not None:
            nginx.stop()
        if alone is not None:
            alone.stop()
        srv.stop()


def fetch(base: str, path: str, headers: dict[str, str] | None = None,
          method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    """Status, headers and the raw body (no decoding: Content-Encoding must be compared)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def same(front: Any, path: str, headers: dict[str, str] | None = None,
         method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    srv, nginx, *_ = front
    direct = fetch(srv.url, path, headers, method)
    via = fetch(nginx.url, path, headers, method)
    assert via[0] == direct[0], (path, headers, via, direct)
    assert via[2] == direct[2], (path, headers)
    # a 304 has no body: nginx drops the headers that describe one (Content-Encoding,
    # Content-Length), as RFC 9110 allows; the validators and the cache policy must agree
    compared = COMPARED if direct[0] != 304 else (*COMPARED[:4], "Vary")
    for name in compared:
        assert via[1].get(name.lower()) == direct[1].get(name.lower()), (path, headers, name,
                                                                         via[1], direct[1])
    return direct


def shard_paths(front: Any, channel: str, subdir: str, auth: dict[str, str]) -> list[str]:
    srv = front[0]
    _, _, body = fetch(srv.url, f"/{channel}/{subdir}/repodata_shards.msgpack.zst", auth)
    index = msgpack.unpackb(zstandard.ZstdDecompressor().decompressobj().decompress(body))
    return [f"/{channel}/{subdir}/shards/{d.hex()}.msgpack.zst"
            for d in index["shards"].values()]


INDEXES = ("repodata.json", "repodata.json.zst", "repodata_shards.msgpack.zst",
           "run_exports.json", "run_exports.json.zst")


def test_public_indexes_shards_and_packages_with_validators(front: Any) -> None:
    files = front[4]
    paths = [f"/pub/{sd}/{name}" for sd in ("noarch", "linux-64") for name in INDEXES]
    paths += ["/pub/channeldata.json", *shard_paths(front, "pub", "linux-64", {})]
    paths += [f"/pub/{f}" for f in files.values()]
    for path in paths:
        for encoding in ({}, {"Accept-Encoding": "gzip"}):
            status, headers, _ = same(front, path, encoding)
            assert status == 200, path
            same(front, path, encoding, method="HEAD")
            for validator in ({"If-None-Match": headers["etag"]},
                              {"If-Modified-Since": headers["last-modified"]}):
                assert same(front, path, {**encoding, **validator})[0] == 304
            assert same(front, path, {"If-None-Match": '"0-0"'})[0] == 200
    status, headers, _ = same(front, "/pub/noarch/repodata.json", {"Accept-Encoding": "gzip"})
    assert headers["content-encoding"] == "gzip"


def test_an_index_whose_gzip_twin_is_missing_answers_alike(front: Any) -> None:
    """A publish removes the .gz twin before it replaces the file: meanwhile nginx sends the
    plain file, with the Vary repoproxy sends (a fixed header, not nginx's gzip_vary, which
    says Vary only while the twin exists)."""
    behind = front[5]
    twin = behind.root / "channels" / "pub" / "noarch" / "run_exports.json.gz"
    kept = twin.with_name("kept.gz")
    twin.rename(kept)
    try:
        for encoding in ({}, {"Accept-Encoding": "gzip"}):
            status, headers, _ = same(front, "/pub/noarch/run_exports.json", encoding)
            assert status == 200
            assert "content-encoding" not in headers
            assert headers["vary"] == "Accept-Encoding"
            assert same(front, "/pub/noarch/run_exports.json",
                        {**encoding, "If-None-Match": headers["etag"]})[0] == 304
    finally:
        kept.rename(twin)


def test_nginx_itself_sends_public_indexes_and_package_bytes(front: Any) -> None:
    """The fast paths are really taken: index files from the tree without asking repoproxy,
    packages decided by repoproxy and sent by nginx."""
    nginx, files, behind = front[1], front[4], front[5]
    for path in ("/pub/noarch/repodata.json", "/pub/linux-64/repodata.json.zst",
                 "/pub/channeldata.json"):
        assert fetch(nginx.url, f"{path}?probe=static")[0] == 200
    status, _, body = fetch(nginx.url, f"/pub/{files['app']}?probe=accel")
    assert status == 200
    assert body[:2] == b"PK"
    log = behind.log_path.read_text()
    assert "probe=static" not in log
    assert "probe=accel" in log  # repoproxy decided (and counted) the download
    status, headers, body = fetch(behind.url, f"/pub/{files['app']}")
    assert status == 200
    assert body == b""
    assert headers["x-accel-redirect"].startswith(ACCEL)


def test_private_channel_with_and_without_token(front: Any) -> None:
    reader = front[3]
    files = front[4]
    auth = {"Authorization": f"Bearer {reader}"}
    paths = [f"/sec/linux-64/{name}" for name in INDEXES] + ["/sec/channeldata.json"]
    paths += shard_paths(front, "sec", "linux-64", auth)
    paths += [f"/sec/{f}" for f in files.values()]
    for path in paths:
        assert same(front, path)[0] in (401, 404), path  # nothing without the token
        status, headers, _ = same(front, path, auth)
        assert status == 200, path
        assert headers["cache-control"].startswith("private"), path
        assert same(front, path, {**auth, "If-None-Match": headers["etag"]})[0] == 304
        assert same(front, f"/t/{reader}{path}")[0] == 200


def test_hidden_absent_and_odd_requests_answer_alike(front: Any) -> None:
    files = front[4]
    for path in (f"/pol/{files['helper']}", f"/pol/{files['libcore']}",
                 "/pub/noarch/nothing-1.0-0.conda", "/pub/linux-64/.hidden.json",
                 "/pub/noarch/shards/" + "0" * 64 + ".msgpack.zst", "/pub/osx-64/repodata.json",
                 "/nochannel/noarch/repodata.json", "/nochannel/channeldata.json",
                 f"/nochannel/{files['app']}", "/-/accel/pub/" + files["app"]):
        # an absent channel asks for credentials, as a private one does (nothing leaks)
        assert same(front, path)[0] in (401, 404), path
        assert same(front, path, method="HEAD")[0] in (401, 404), path
    assert same(front, f"/pol/{files['app']}")[0] == 200
    # writes to index names are not static requests: repoproxy answers them, as alone
    same(front, "/pub/noarch/repodata.json", method="PUT")
    same(front, "/pub/noarch/repodata.json", method="POST")


def test_turning_a_channel_private_stops_direct_serving_at_once(front: Any) -> None:
    srv, nginx, admin, *_ = front
    client = Client(srv.url, admin)
    client.request("POST", "/api/v1/channels", json={"name": "flip"})
    path = "/flip/noarch/repodata.json"
    assert fetch(nginx.url, path)[0] == 200
    client.request("PATCH", "/api/v1/channels/flip", json={"privacy": "private"})
    assert same(front, path)[0] in (401, 404)
    client.request("PATCH", "/api/v1/channels/flip", json={"privacy": "authenticated"})
    assert same(front, path)[0] in (401, 404)
    client.request("PATCH", "/api/v1/channels/flip", json={"privacy": "public"})
    assert same(front, path)[0] == 200
    assert fetch(nginx.url, f"{path}?probe=flip")[0] == 200
    assert "probe=flip" not in front[5].log_path.read_text()  # back on the fast path
    client.request("DELETE", "/api/v1/channels/flip")
    assert same(front, path)[0] in (401, 404)
    assert not (Path(srv.root) / "public" / "flip").exists()


def test_public_subchannels_are_served_by_nginx_and_leave_with_their_privacy(
        front: Any, tmp_path: Path) -> None:
    srv, nginx, admin, *_ = front
    client = Client(srv.url, admin)
    client.request("POST", "/api/v1/channels", json={"name": "tree"})
    client.request("POST", "/api/v1/channels", json={"name": "tree/dev"})
    path = build_package(SPECS[0], tmp_path)
    client.upload("tree/dev", path)
    indexes = [f"/tree/dev/linux-64/{name}" for name in INDEXES] + ["/tree/dev/channeldata.json"]
    paths = [*indexes, *shard_paths(front, "tree/dev", "linux-64", {})]
    for p in paths:
        status, headers, _ = same(front, p)
        assert status == 200, p
        assert same(front, p, {"If-None-Match": headers["etag"]})[0] == 304
        assert fetch(nginx.url, f"{p}?probe=sub")[0] == 200
    assert "probe=sub" not in front[5].log_path.read_text()  # nginx sent them itself
    # the parent turned private takes the subchannel out of nginx's reach with it
    client.request("PATCH", "/api/v1/channels/tree", json={"privacy": "private"})
    for p in paths:
        assert same(front, p)[0] in (401, 404), p
    client.request("PATCH", "/api/v1/channels/tree", json={"privacy": "public"})
    assert fetch(nginx.url, f"{indexes[0]}?probe=back")[0] == 200
    assert "probe=back" not in front[5].log_path.read_text()
    # a removed subchannel is gone from the front too (before its tree is moved away)
    client.request("DELETE", "/api/v1/channels/tree/subchannels/dev")
    for p in paths:
        assert same(front, p)[0] in (401, 404), p
    assert not (Path(srv.root) / "public" / "tree+dev").exists()
    assert (Path(srv.root) / "public" / "tree").is_symlink()

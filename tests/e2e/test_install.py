"""End to end: a real `repoproxy serve`, real packages, py-rattler solving and installing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from repoproxy.testing import rattler_client
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.wire import upload_prefix_multipart, upload_prefix_raw

pytestmark = pytest.mark.e2e

# a dependency graph across noarch and linux-64, several versions, both formats
SPECS = [
    (PackageSpec("libcore", "1.0", subdir="linux-64", files={"lib/libcore-1.0.txt": b"1.0"}),
     "conda"),
    (PackageSpec("libcore", "2.0", subdir="linux-64", files={"lib/libcore.txt": b"core 2.0"}),
     "conda"),
    (PackageSpec("libcore", "2.1", subdir="linux-64", build="1", build_number=1,
                 files={"lib/libcore.txt": b"core 2.1"}), "tar.bz2"),
    (PackageSpec("helper", "0.5", depends=["libcore >=2,<3"],
                 files={"share/helper/README": b"helper 0.5"}), "tar.bz2"),
    (PackageSpec("helper", "0.4", depends=["libcore <2"],
                 files={"share/helper/README": b"helper 0.4"}), "conda"),
    (PackageSpec("app", "3.0", subdir="linux-64", depends=["helper >=0.5", "libcore"],
                 files={"bin/app": b"#!/bin/sh\necho app 3.0\n"}), "conda"),
    (PackageSpec("app", "2.0", subdir="linux-64", depends=["helper"],
                 files={"bin/app": b"#!/bin/sh\necho app 2.0\n"}), "tar.bz2"),
]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A server holding the graph, uploaded in both prefix.dev wire forms."""
    from repoproxy.testing.fixtures import RunningServer, free_port

    tmp = tmp_path_factory.mktemp("e2e")
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    srv = RunningServer(tmp / "root", free_port(), tmp / "server.log", env).start()
    admin = srv.token("--admin", "--name", "admin")
    auth = {"Authorization": f"Bearer {admin}"}
    for name, privacy in (("pub", "public"), ("secret", "private")):
        r = requests.post(f"{srv.url}/api/v1/channels", json={"name": name, "privacy": privacy},
                          headers=auth, timeout=30)
        assert r.status_code == 201, r.text
    pkgdir = tmp / "pkgs"
    pkgdir.mkdir()
    for i, (spec, fmt) in enumerate(SPECS):
        path = build_package(spec, pkgdir, fmt)
        for channel in ("pub", "secret"):
            upload = upload_prefix_multipart if i % 2 == 0 else upload_prefix_raw
            r = upload(srv.url, channel, path, admin)
            assert r.status_code == 201, r.text
    reader = srv.token("--channel", "secret", "--permission", "read", "--name", "reader")
    subprocess.run([sys.executable, "-m", "repoproxy", "user", "add", "dora", "--root",
                    str(srv.root), "--password-stdin"], input="dora-secret-pw\n", text=True,
                   check=True, env=env, capture_output=True, timeout=60)
    r = requests.post(f"{srv.url}/api/v1/channels/secret/members",
                      json={"user": "dora", "role": "member"}, headers=auth, timeout=30)
    assert r.status_code == 201, r.text
    yield srv, admin, reader, tmp
    srv.stop()


def _installed(prefix: Path) -> dict[str, str]:
    meta = {p.stem: json.loads(p.read_text()) for p in (prefix / "conda-meta").glob("*.json")}
    return {m["name"]: m["version"] for m in meta.values()}


@pytest.mark.parametrize("use_shards", [True, False], ids=["shards", "flat"])
def test_rattler_solves_and_installs_from_public_channel(published: Any, tmp_path: Path,
                                                         use_shards: bool) -> None:
    srv, *_ = published
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{srv.url}/pub"], ["app"], prefix,
                                    ["linux-64", "noarch"], use_shards=use_shards)
    assert result.returncode == 0, result.data
    assert _installed(prefix) == {"app": "3.0", "helper": "0.5", "libcore": "2.1"}
    assert (prefix / "bin/app").read_bytes() == b"#!/bin/sh\necho app 3.0\n"
    assert (prefix / "lib/libcore.txt").read_bytes() == b"core 2.1"
    assert (prefix / "share/helper/README").read_bytes() == b"helper 0.5"


def test_rattler_older_pin_pulls_older_dependency(published: Any, tmp_path: Path) -> None:
    srv, *_ = published
    result = rattler_client.solve([f"{srv.url}/pub"], ["helper <0.5"], ["linux-64", "noarch"])
    assert result.returncode == 0, result.data
    versions = {r["name"]: r["version"] for r in result.data["records"]}
    assert versions == {"helper": "0.4", "libcore": "1.0"}


def test_private_channel_with_bearer_token_in_auth_file(published: Any, tmp_path: Path) -> None:
    srv, _, reader, _ = published
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"127.0.0.1": {"BearerToken": reader}}))
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{srv.url}/secret"], ["app"], prefix,
                                    ["linux-64", "noarch"], auth_file=auth_file)
    assert result.returncode == 0, result.data
    assert _installed(prefix)["app"] == "3.0"


def test_private_channel_with_token_in_url(published: Any, tmp_path: Path) -> None:
    srv, _, reader, _ = published
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{srv.url}/t/{reader}/secret"], ["app"], prefix,
                                    ["linux-64", "noarch"], use_shards=False)
    assert result.returncode == 0, result.data
    assert (prefix / "bin/app").exists()


@pytest.mark.parametrize("password", ["token", "user-password"])
def test_private_channel_with_basic_credentials(published: Any, tmp_path: Path,
                                                password: str) -> None:
    srv, _, reader, _ = published
    creds = ({"username": "ci", "password": reader} if password == "token"
             else {"username": "dora", "password": "dora-secret-pw"})
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"127.0.0.1": {"BasicHTTP": creds}}))
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{srv.url}/secret"], ["app"], prefix,
                                    ["linux-64", "noarch"], auth_file=auth_file)
    assert result.returncode == 0, result.data
    assert _installed(prefix)["app"] == "3.0"


def test_token_of_another_channel_sees_no_channel(published: Any, tmp_path: Path) -> None:
    srv, admin, _, _ = published
    requests.post(f"{srv.url}/api/v1/channels", json={"name": "elsewhere", "privacy": "private"},
                  headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    other = srv.token("--channel", "elsewhere", "--name", "other")
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"127.0.0.1": {"BearerToken": other}}))
    result = rattler_client.solve([f"{srv.url}/secret"], ["app"], ["linux-64", "noarch"],
                                  auth_file=auth_file)
    assert result.returncode != 0
    assert "404" in result.data["error"] or "not found" in result.data["error"].lower()
    assert "401" not in result.data["error"]


def test_private_channel_without_credentials_fails(published: Any, tmp_path: Path) -> None:
    srv, *_ = published
    result = rattler_client.solve([f"{srv.url}/secret"], ["app"], ["linux-64", "noarch"])
    assert result.returncode != 0
    assert "401" in result.data["error"]


def test_tokens_never_reach_the_log(published: Any) -> None:
    srv, admin, reader, _ = published
    log = srv.log_path.read_text()
    assert "/t/<redacted>/secret" in log  # the /t/ form was used and logged, redacted
    assert admin not in log
    assert reader not in log
    assert "dora-secret-pw" not in log
    assert "Basic " not in log


def test_both_repodata_paths_were_really_taken(published: Any, tmp_path: Path) -> None:
    srv, *_ = published
    for use_shards in (True, False):
        result = rattler_client.solve([f"{srv.url}/pub"], ["app"], ["linux-64", "noarch"],
                                      use_shards=use_shards)
        assert result.returncode == 0, result.data
    log = srv.log_path.read_text()
    assert '"GET /pub/linux-64/repodata_shards.msgpack.zst" 200' in log
    assert '"GET /pub/linux-64/shards/' in log
    assert '"GET /pub/linux-64/repodata.json.zst" 200' in log
    assert '"HEAD /pub/noarch/repodata.json.zst" 200' in log

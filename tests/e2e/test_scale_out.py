"""End to end: one writer and two readers (separate `repoproxy serve` on one root) behind the
nginx front of `repoproxy nginx-conf`: writes go to the writer, reads are balanced over the
readers; an upload through the front is visible through each reader, and py-rattler installs
from a private channel through the front with a bearer token."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from repoproxy.cli.http import Client
from repoproxy.testing import rattler_client
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

SPECS = [
    PackageSpec("libcore", "2.0", subdir="linux-64", files={"lib/libcore.txt": b"core 2.0"}),
    PackageSpec("app", "3.0", subdir="linux-64", depends=["libcore"],
                files={"bin/app": b"#!/bin/sh\necho app 3.0\n"}),
]


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    env = env_without_settings(REPOPROXY_ACCEL_REDIRECT=ACCEL)
    root = tmp_path / "root"
    started: list[RunningServer] = []
    nginx = None
    try:
        # the writer first: it creates the root and recovers; readers then share it
        for name in ("writer", "reader1", "reader2"):
            srv = RunningServer(root, free_port(), tmp_path / f"{name}.log", env)
            started.append(srv.start())
        writer, *readers = started
        port = free_port()
        conf = nginx_conf(root, [f"127.0.0.1:{r.port}" for r in readers], f"127.0.0.1:{port}",
                          env, f"127.0.0.1:{writer.port}")
        nginx = RunningNginx(conf, tmp_path / "nginx", port).start()
        yield writer, readers, nginx
    finally:
        if nginx is not None:
            nginx.stop()
        for srv in reversed(started):
            srv.stop()


def test_upload_through_the_front_is_visible_through_each_reader(cluster: Any,
                                                                  tmp_path: Path) -> None:
    writer, readers, nginx = cluster
    admin = writer.token("--admin", "--name", "admin")
    front = Client(nginx.url, admin)
    front.request("POST", "/api/v1/channels", json={"name": "team", "privacy": "private"})
    pkgdir = tmp_path / "pkgs"
    pkgdir.mkdir()
    names = []
    for spec in SPECS:
        path = build_package(spec, pkgdir)
        front.upload("team", path)
        names.append(path.name)
    auth = {"Authorization": f"Bearer {admin}"}
    for srv in (*readers, nginx):
        r = requests.get(f"{srv.url}/team/linux-64/repodata.json", headers=auth, timeout=30)
        assert r.status_code == 200, r.text
        assert set(r.json()["packages.conda"]) == set(names)
    # every request through the front that wrote went to the writer, reads to the readers
    assert "POST /api/v1/upload/team" in writer.log_path.read_text()
    for srv in readers:
        assert "POST " not in srv.log_path.read_text()
    served = [srv.log_path.read_text().count("GET /team/") for srv in readers]
    assert sum(served) >= 1

    reader = writer.token("--channel", "team", "--permission", "read", "--name", "ci")
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"127.0.0.1": {"BearerToken": reader}}))
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{nginx.url}/team"], ["app"], prefix,
                                    ["linux-64", "noarch"], auth_file=auth_file)
    assert result.returncode == 0, result.data
    assert (prefix / "bin/app").read_bytes() == b"#!/bin/sh\necho app 3.0\n"
    # the package bytes were decided by the readers, sent by nginx
    assert sum(srv.log_path.read_text().count(".conda") for srv in readers) >= 2

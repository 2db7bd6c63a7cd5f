"""End to end: py-rattler installs from a real server; the download counts and the CSV
report show exactly the files it fetched, also across a clean restart."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from repoproxy.testing import rattler_client
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.wire import upload_prefix_raw

pytestmark = pytest.mark.e2e


def test_rattler_install_is_counted_per_file_and_identity(server_factory: Any,
                                                          tmp_path: Path) -> None:
    root = tmp_path / "root"
    srv = server_factory(root)
    admin = srv.token("--admin", "--name", "admin")
    reader = srv.token("--name", "ci", "--channel", "secret")
    auth = {"Authorization": f"Bearer {admin}"}
    for name, privacy in (("pub", "public"), ("secret", "private")):
        r = requests.post(f"{srv.url}/api/v1/channels", json={"name": name, "privacy": privacy},
                          headers=auth, timeout=30)
        assert r.status_code == 201, r.text
    pkgdir = tmp_path / "pkgs"
    pkgdir.mkdir()
    paths = [build_package(s, pkgdir, fmt) for s, fmt in (
        (PackageSpec("core", "1.0", subdir="linux-64"), "conda"),
        (PackageSpec("app", "2.0", depends=["core"]), "tar.bz2"),
        (PackageSpec("unused", "1.0"), "conda"),
    )]
    for path in paths:
        for ch in ("pub", "secret"):
            assert upload_prefix_raw(srv.url, ch, path, admin).status_code == 201

    result = rattler_client.install([f"{srv.url}/pub"], ["app"], tmp_path / "env1",
                                    ["linux-64", "noarch"])
    assert result.returncode == 0, result.data
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"127.0.0.1": {"BearerToken": reader}}))
    result = rattler_client.install([f"{srv.url}/secret"], ["app"], tmp_path / "env2",
                                    ["linux-64", "noarch"], auth_file=auth_file)
    assert result.returncode == 0, result.data

    # a clean shutdown right away: the buffer must be flushed by the worker's stop()
    assert srv.stop() == 0
    srv = server_factory(root)
    totals = requests.get(f"{srv.url}/api/channels/pub/downloads", timeout=30).json()
    assert {(f["subdir"], f["filename"], f["downloads"]) for f in totals["files"]} == {
        ("linux-64", paths[0].name, 1), ("noarch", paths[1].name, 1)}
    detail = requests.get(f"{srv.url}/api/channels/pub/artifacts/conda/app", timeout=30).json()
    assert detail["downloads"] == 1

    today = datetime.now(UTC).date().isoformat()
    out = tmp_path / "report"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    subprocess.run([sys.executable, "-m", "repoproxy", "report", "--url", srv.url,
                    "--token", admin, "--date-from", today, "--date-to", today,
                    "--file-type", "csv", "--filename", str(out)],
                   check=True, env=env, timeout=120, capture_output=True)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "report.csv").read_text())))
    got = sorted((r["who"], r["channel"], r["subdir"], r["file"], r["package"], r["count"])
                 for r in rows)
    assert got == sorted([
        ("anonymous", "pub", "linux-64", paths[0].name, "core", "1"),
        ("anonymous", "pub", "noarch", paths[1].name, "app", "1"),
        ("token:ci", "secret", "linux-64", paths[0].name, "core", "1"),
        ("token:ci", "secret", "noarch", paths[1].name, "app", "1"),
    ])

"""End to end: a real `repoproxy serve`, a policy naming only `app`, and py-rattler.

Without include-dependencies the channel serves `app` but hides what it depends on, so
py-rattler cannot solve it; with include-dependencies added (an edit through the API) the
dependencies selected by app's MatchSpecs come back and rattler solves and installs app.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from repoproxy.cli.http import Client
from repoproxy.testing import rattler_client
from repoproxy.testing.packages import PackageSpec, build_package

pytestmark = pytest.mark.e2e

SPECS = [
    PackageSpec("libcore", "1.0", subdir="linux-64", files={"lib/libcore.txt": b"core 1.0"}),
    PackageSpec("libcore", "2.0", subdir="linux-64", files={"lib/libcore.txt": b"core 2.0"}),
    PackageSpec("helper", "0.5", depends=["libcore >=2,<3"],
                files={"share/helper/README": b"helper 0.5"}),
    PackageSpec("app", "3.0", subdir="linux-64", depends=["helper >=0.5", "libcore"],
                files={"bin/app": b"#!/bin/sh\necho app 3.0\n"}),
    PackageSpec("unrelated", "1.0"),
]


@pytest.mark.parametrize("use_shards", [True, False], ids=["shards", "flat"])
def test_policy_with_only_app_needs_include_dependencies_to_solve_and_install(
    server_factory: Callable[..., Any], tmp_path: Path, use_shards: bool
) -> None:
    srv = server_factory()
    admin = srv.token("--admin", "--name", "admin")
    auth = {"Authorization": f"Bearer {admin}"}
    client = Client(srv.url, admin)
    client.request("POST", "/api/v1/channels", json={"name": "pol"})
    pkgdir = tmp_path / "pkgs"
    pkgdir.mkdir()
    for spec in SPECS:
        client.upload("pol", build_package(spec, pkgdir))

    channel, platforms = f"{srv.url}/pol", ["linux-64", "noarch"]
    assert rattler_client.solve([channel], ["app"], platforms, use_shards=use_shards).ok

    r = requests.post(f"{srv.url}/api/v1/policies", headers=auth, timeout=60,
                      json={"name": "only-app", "channel_name": "pol", "package_name": "app"})
    assert r.status_code == 201, r.text
    failed = rattler_client.solve([channel], ["app"], platforms, use_shards=use_shards)
    assert not failed.ok
    assert "helper" in str(failed.data.get("error", "")) + failed.stderr
    hidden = requests.get(f"{channel}/noarch/helper-0.5-0.conda", timeout=30)
    assert hidden.status_code == 404

    r = requests.patch(f"{srv.url}/api/v1/policies/only-app", headers=auth, timeout=60,
                       json={"include_dependencies": True})
    assert r.status_code == 200, r.text
    solved = rattler_client.solve([channel], ["app"], platforms, use_shards=use_shards)
    assert solved.ok, solved.data
    names = {rec["name"]: rec["version"] for rec in solved.records}
    assert names == {"app": "3.0", "helper": "0.5", "libcore": "2.0"}

    prefix = tmp_path / "env"
    installed = rattler_client.install([channel], ["app"], prefix, platforms,
                                       use_shards=use_shards)
    assert installed.ok, installed.data
    assert (prefix / "bin" / "app").read_bytes().startswith(b"#!/bin/sh")
    assert (prefix / "lib" / "libcore.txt").read_bytes() == b"core 2.0"
    # app's bare `libcore` matches both versions; `unrelated` is depended on by nothing
    noarch = requests.get(f"{channel}/noarch/repodata.json", timeout=30).json()
    assert sorted(noarch["packages.conda"]) == ["helper-0.5-0.conda"]

"""End to end: py-rattler installs from subchannel URLs (public, and private with a token of
the parent); a package copied with ``repoproxy copy`` installs from its new channel; after
``repoproxy move`` it is gone from the origin's repodata and shards; ``repoproxy remove`` takes
it out. A real ``repoproxy serve``, the real CLI in subprocesses, rattler in a subprocess.
"""

from __future__ import annotations

import json
import os
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

PLATFORMS = ["linux-64", "noarch"]
SPECS = [
    PackageSpec("helper", "1.0", files={"share/helper/README": b"helper 1.0"}),
    PackageSpec("app", "1.0", subdir="linux-64", depends=["helper"],
                files={"bin/app": b"#!/bin/sh\necho app 1.0\n"}),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from repoproxy.testing.fixtures import RunningServer, free_port

    tmp = tmp_path_factory.mktemp("sub-e2e")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    srv = RunningServer(tmp / "root", free_port(), tmp / "server.log", env).start()
    admin = srv.token("--admin", "--name", "admin")
    auth = {"Authorization": f"Bearer {admin}"}
    for name, privacy in (("pub", "public"), ("secret", "private"), ("prod", "public")):
        r = requests.post(f"{srv.url}/api/v1/channels", json={"name": name, "privacy": privacy},
                          headers=auth, timeout=30)
        assert r.status_code == 201, r.text
    cli_env = {**env, "REPOPROXY_URL": srv.url, "REPOPROXY_TOKEN": admin}
    for sub in ("pub/dev", "secret/dev", "prod/rc"):
        cli(cli_env, "channel", "create", sub)
    pkgdir = tmp / "pkgs"
    pkgdir.mkdir()
    for i, spec in enumerate(SPECS):
        path = build_package(spec, pkgdir, "conda")
        for channel in ("pub/dev", "secret/dev"):
            upload = upload_prefix_multipart if i % 2 == 0 else upload_prefix_raw
            r = upload(srv.url, channel, path, admin)
            assert r.status_code == 201, r.text
    reader = srv.token("--channel", "secret", "--permission", "read", "--name", "reader")
    yield srv, cli_env, reader, tmp
    srv.stop()


def cli(env: dict[str, str], *args: str) -> Any:
    out = subprocess.run([sys.executable, "-m", "repoproxy", *args], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if out.stdout.strip().startswith("{") else out.stdout


def _installed(prefix: Path) -> dict[str, str]:
    meta = [json.loads(p.read_text()) for p in (prefix / "conda-meta").glob("*.json")]
    return {m["name"]: m["version"] for m in meta}


def _names(url: str, names: list[str], *, use_shards: bool) -> set[str]:
    result = rattler_client.fetch_repodata([url], PLATFORMS, names, use_shards=use_shards)
    assert result.returncode == 0, result.data
    return {r["name"] for r in result.records}


def test_install_from_public_subchannel(served: Any, tmp_path: Path) -> None:
    srv, *_ = served
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{srv.url}/pub/dev"], ["app"], prefix, PLATFORMS)
    assert result.returncode == 0, result.data
    assert _installed(prefix) == {"app": "1.0", "helper": "1.0"}
    assert (prefix / "bin/app").read_bytes() == b"#!/bin/sh\necho app 1.0\n"
    # the parent channel itself holds nothing of it
    assert _names(f"{srv.url}/pub", ["app"], use_shards=True) == set()


def test_install_from_private_subchannel_with_a_token_of_the_parent(served: Any,
                                                                   tmp_path: Path) -> None:
    srv, _, reader, _ = served
    denied = rattler_client.install([f"{srv.url}/secret/dev"], ["app"], tmp_path / "no",
                                    PLATFORMS)
    assert denied.returncode != 0
    auth_file = tmp_path / "auth.json"
    auth_file.write_text(json.dumps({"127.0.0.1": {"BearerToken": reader}}))
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{srv.url}/secret/dev"], ["app"], prefix, PLATFORMS,
                                    auth_file=auth_file)
    assert result.returncode == 0, result.data
    assert _installed(prefix)["app"] == "1.0"
    prefix2 = tmp_path / "env2"
    result = rattler_client.install([f"{srv.url}/t/{reader}/secret/dev"], ["app"], prefix2,
                                    PLATFORMS, use_shards=False)
    assert result.returncode == 0, result.data


def test_copy_move_remove(served: Any, tmp_path: Path) -> None:
    srv, env, *_ = served
    # copy both packages to another channel and install from there
    for name in ("app", "helper"):
        copied = cli(env, "copy", f"pub/dev::{name}==1.0", "--destination", "prod")
        assert len(copied["files"]) == 1
        assert copied["duplicates"] == []
    again = cli(env, "copy", "pub/dev::app", "--destination", "prod")
    assert again["files"] == []
    assert len(again["duplicates"]) == 1
    prefix = tmp_path / "env"
    result = rattler_client.install([f"{srv.url}/prod"], ["app"], prefix, PLATFORMS)
    assert result.returncode == 0, result.data
    assert _installed(prefix) == {"app": "1.0", "helper": "1.0"}
    # move app to a subchannel: gone from the origin's repodata and shards
    moved = cli(env, "move", "prod::app", "--destination", "prod/rc", "--subdir", "linux-64")
    assert moved["files"] == ["prod/rc/linux-64/app-1.0-0.conda"]
    for use_shards in (True, False):
        assert _names(f"{srv.url}/prod", ["app", "helper"], use_shards=use_shards) == {"helper"}
        assert _names(f"{srv.url}/prod/rc", ["app"], use_shards=use_shards) == {"app"}
    prefix2 = tmp_path / "env2"
    result = rattler_client.install([f"{srv.url}/prod/rc", f"{srv.url}/prod"], ["app"],
                                    prefix2, PLATFORMS)
    assert result.returncode == 0, result.data
    # remove it
    removed = cli(env, "remove", "prod/rc::app", "--file", "app-1.0-0.conda", "--yes")
    assert removed["files"] == ["prod/rc/linux-64/app-1.0-0.conda"]
    for use_shards in (True, False):
        assert _names(f"{srv.url}/prod/rc", ["app"], use_shards=use_shards) == set()
    r = requests.get(f"{srv.url}/prod/rc/linux-64/app-1.0-0.conda", timeout=30)
    assert r.status_code == 404
    # the subchannel CLI: list and show count it
    assert "prod/rc" in cli(env, "channel", "list", "prod")
    assert cli(env, "channel", "show", "prod")["subchannel_count"] == 1
    assert cli(env, "channel", "show", "prod/rc")["parent"] == "prod"

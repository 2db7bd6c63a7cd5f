"""`policy`, `cve` and `cves` through the API of a real server (with --url), as well as
offline on its root; token edit --name and --list-user-ids through the API."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests

from repoproxy.testing.packages import PackageSpec, build_package

pytestmark = pytest.mark.e2e


def cli(*args: str, env: dict[str, str]) -> str:
    """The command, in this process (the server is real, in its own)."""
    from click.testing import CliRunner

    from repoproxy.cli import build_cli

    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("REPOPROXY_")}
    out = CliRunner().invoke(build_cli(), list(args), env={**unset, **env},
                             catch_exceptions=False)
    assert out.exit_code == 0, (args, out.output)
    return out.stdout


def test_policy_and_cves_through_the_api(server: Any, tmp_path: Path) -> None:
    token = server.token("--admin", "--name", "a")
    env = {"REPOPROXY_URL": server.url, "REPOPROXY_TOKEN": token, "HOME": str(tmp_path)}
    cli("channel", "create", "sec", env=env)
    for subdir in ("noarch", "linux-64"):
        (tmp_path / subdir).mkdir()
        cli("upload", str(build_package(PackageSpec("libcurl", "8.4.0", subdir=subdir),
                                        tmp_path / subdir)), "--channel", "sec", env=env)

    made = json.loads(cli("policy", "--create", "--name", "no-linux", "--platform-not",
                          "linux-64", env=env))
    assert [p["name"] for p in json.loads(cli("policy", "--list-all", env=env))] == [
        "no-linux"]
    cli("policy", "--assign", str(made["id"]), "--channel", "sec", env=env)
    explained = json.loads(cli("policy", "--explain", "sec",
                               "linux-64/libcurl-8.4.0-0.conda", env=env))
    assert explained["files"][0]["hidden"] is True
    # the same policy as the root sees it, offline
    offline = json.loads(cli("policy", "--show", str(made["id"]), "--root", str(server.root),
                             env={"HOME": str(tmp_path)}))
    assert offline["channels"] == ["sec"]
    repodata = requests.get(f"{server.url}/sec/linux-64/repodata.json", timeout=30).json()
    assert repodata["packages.conda"] == {}

    curated = tmp_path / "cves.json"
    curated.write_text(json.dumps({"format": "repoproxy-cve-v1", "cves": [
        {"id": "CVE-2024-0001", "score": 5.0, "description": "libcurl overflow",
         "published": "2024-01-02", "affected": [{"name": "libcurl", "versions": "<8.5"}]}]}))
    assert json.loads(cli("cve", "import", str(curated), env=env))["new"] == 1
    cli("cve", "status", "CVE-2024-0001", "mitigated", env=env)
    assert json.loads(cli("cves", "--show", "CVE-2024-0001", env=env))["status"] == "mitigated"
    listed = json.loads(cli("cves", "--list", env=env))["cves"]
    assert [c["id"] for c in listed] == ["CVE-2024-0001"]
    files = json.loads(cli("cves", "--show-files", "CVE-2024-0001", env=env))["files"]
    assert files == ["sec/noarch/libcurl-8.4.0-0.conda"]  # the hidden linux-64 file is not
    # token edit --name and the user ids of a channel's service tokens, through the API
    made_token = requests.post(f"{server.url}/api/v1/tokens", json={
        "name": "ci", "channels": ["sec"]}, headers={"Authorization": f"Bearer {token}"},
        timeout=30).json()
    cli("token", "edit", made_token["id"], "--name", "deploy", env=env)
    ids = cli("token", "--list-user-ids", "--channel", "sec", env=env)
    assert json.loads(ids) == {"user_id": "(none)", "tokens": 1}
    listed_tokens = cli("token", "list", "--url", server.url, "--token", token,
                        "--channel", "sec", env={"HOME": str(tmp_path)})
    assert [json.loads(line)["name"] for line in listed_tokens.splitlines()] == ["deploy"]

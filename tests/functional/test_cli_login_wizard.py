"""The client side of issue 15 against a real server, in a temporary HOME: login, config
sources, upload to the default channel, artifact and notebook download, logout; the wizard
writing and restoring conda/micromamba/rattler files, and refusing an admin token."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from repoproxy.testing.packages import PackageSpec, build_package

pytestmark = pytest.mark.e2e

NOTEBOOK = {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run(home: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
        stdin: str | None = None) -> Ran:
    """The command in this process, with HOME and the client's variables of the test only
    (the server is real, in its own process)."""
    from click.testing import CliRunner

    from repoproxy.cli import build_cli

    unset: dict[str, str | None] = {
        k: None for k in os.environ
        if k.startswith(("REPOPROXY_", "CONDARC", "RATTLER_", "XDG_CONFIG"))}
    result = CliRunner().invoke(build_cli(), list(args), input=stdin,
                                env={**unset, "HOME": str(home), **(env or {})})
    out = Ran(result.exit_code, result.stdout, result.stderr)
    if check and out.returncode != 0:
        raise AssertionError(f"{args}: {out.returncode}\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def test_login_config_upload_download_logout(server: Any, home: Path, tmp_path: Path) -> None:
    admin = {"Authorization": "Bearer " + server.token("--admin", "--name", "a")}
    requests.post(f"{server.url}/api/v1/channels", json={"name": "team",
                                                           "privacy": "private"},
                  headers=admin, timeout=30).raise_for_status()
    run(home, "user", "add", "alice", "--password-stdin", "--root", str(server.root),
        stdin="s3cret-pass\n")
    requests.post(f"{server.url}/api/v1/channels/team/members",
                  json={"user": "alice", "role": "owner"}, headers=admin,
                  timeout=30).raise_for_status()

    bad = run(home, "login", "--url", server.url, "--username", "alice", "--password-stdin",
              stdin="wrong\n", check=False)
    assert bad.returncode == 1
    assert "login failed" in bad.stderr
    run(home, "login", "--url", server.url, "--username", "alice", "--password-stdin",
        "--channel", "team", stdin="s3cret-pass\n")
    config = home / ".config" / "repoproxy" / "config.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    saved = config.read_text()
    assert "team" in saved
    assert server.url in saved
    assert "rp-" in saved

    shown = run(home, "config", "--show-sources").stdout
    assert f"# file {config}" in shown
    assert "rp-" not in shown  # the token's secret is never printed
    flagged = run(home, "config", "--show-sources", "--url", "http://other.invalid:1",
                  env={"REPOPROXY_CHANNEL": "elsewhere"}).stdout
    assert "# flag --url" in flagged
    assert "# environment REPOPROXY_CHANNEL" in flagged
    # the file's token is not sent to another server than the file's
    assert "unset (the file's token is for" in flagged

    pkg = build_package(PackageSpec("tool", "1.0"), tmp_path)
    data = tmp_path / "data.csv"
    data.write_bytes(b"a,b\n1,2\n" * 1000)
    nb = tmp_path / "analysis.ipynb"
    nb.write_text(json.dumps(NOTEBOOK))
    run(home, "upload", str(pkg))  # the default channel, the stored token
    run(home, "upload", str(data), "--package-type", "gra", "--name", "data", "--version", "1")
    run(home, "upload", str(nb), "--version", "1")  # a notebook: gra, named after the file

    listed = json.loads(run(home, "channel", "list-packages", "team").stdout)
    assert {(p["name"], p["family"]) for p in listed} == {
        ("tool", "conda"), ("data", "gra"), ("analysis", "gra")}
    found = run(home, "search", "--family", "gra", "analysis", "--json").stdout
    assert json.loads(found)["results"][0]["channel"] == "team"
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    run(home, "download", "--notebook", "analysis", "--filename", str(out_dir))
    assert (out_dir / "analysis.ipynb").read_bytes() == nb.read_bytes()
    run(home, "download", "--channel", "team", "--name", "data",
        "--filename", str(out_dir / "copy.csv"))
    assert (out_dir / "copy.csv").read_bytes() == data.read_bytes()
    repodata = requests.get(f"{server.url}/team/noarch/repodata.json", headers=admin,
                            timeout=30).text
    assert "tool-1.0-0.conda" in repodata
    assert "analysis" not in repodata

    token = run(home, "config", "--show-sources").stdout
    assert "<set," in token
    stored = [line for line in config.read_text().splitlines() if line.startswith("token =")]
    secret = stored[0].split('"')[1]
    run(home, "logout")
    assert "rp-" not in config.read_text()
    assert "team" in config.read_text()
    # logout revoked the token login had created
    assert requests.get(f"{server.url}/api/v1/whoami",
                        headers={"Authorization": f"Bearer {secret}"}, timeout=30
                        ).status_code == 401
    refused = run(home, "upload", str(pkg), "--force", check=False)
    assert refused.returncode == 1


def test_wizard_writes_and_restores_and_refuses_an_admin_token(server: Any, home: Path
                                                               ) -> None:
    admin_token = server.token("--admin", "--name", "a")
    admin = {"Authorization": f"Bearer {admin_token}"}
    for name, privacy in (("open", "public"), ("inner", "private")):
        requests.post(f"{server.url}/api/v1/channels", json={"name": name,
                                                               "privacy": privacy},
                      headers=admin, timeout=30).raise_for_status()
    reader = server.token("--name", "r", "--channel", "inner", "--channel", "open")
    condarc = home / ".condarc"
    condarc.write_text("channels:\n  - conda-forge\nshow_channel_urls: true\n")
    rattler = home / ".rattler" / "credentials.json"
    rattler.parent.mkdir()
    rattler.write_text(json.dumps({"other.example": {"BearerToken": "keep-me"}}))

    refused = run(home, "wizard", "--url", server.url, "--token", admin_token,
                  "--channel", "open", "--yes", check=False)
    assert refused.returncode == 1
    assert "admin token" in refused.stderr
    assert condarc.read_text().startswith("channels:\n  - conda-forge")

    missing = run(home, "wizard", "--url", server.url, "--token", reader, "--channel", "nope",
                  "--yes", check=False)
    assert missing.returncode == 1
    assert "no readable channel 'nope'" in missing.stderr

    out = run(home, "wizard", "--url", server.url, "--token", reader, "--channel", "open",
              "--channel", "inner", "--yes", "--append")
    assert reader not in out.stdout  # shown as <TOKEN>
    rc = yaml.safe_load(condarc.read_text())
    assert rc["channels"] == [f"{server.url}/open", f"{server.url}/t/{reader}/inner",
                              "conda-forge"]
    assert rc["show_channel_urls"] is True
    assert stat.S_IMODE(condarc.stat().st_mode) == 0o600
    host_port = server.url.split("//")[1]
    mamba = json.loads((home / ".mamba" / "auth" / "authentication.json").read_text())
    assert mamba == {host_port: {"type": "BearerToken", "token": reader}}
    creds = json.loads(rattler.read_text())
    assert creds == {"other.example": {"BearerToken": "keep-me"},
                     "127.0.0.1": {"BearerToken": reader}}
    # what it wrote works: the private channel's repodata with the URL-embedded token
    assert requests.get(rc["channels"][1] + "/noarch/repodata.json", timeout=30).ok

    # interactively: the choice is asked, and nothing is written without a yes
    asked = run(home, "wizard", "--url", server.url, "--token", reader, stdin="open\nn\n",
                check=False)
    assert "channels to add" in asked.stdout
    assert asked.returncode == 1  # aborted
    assert yaml.safe_load(condarc.read_text())["channels"][0] == f"{server.url}/open"
    # a second run keeps the first backups: restore goes back to before the wizard
    run(home, "wizard", "--url", server.url, "--token", reader, "--channel", "open", "--yes")
    restored = run(home, "wizard", "--restore").stdout
    assert "restored" in restored
    assert "removed" in restored
    assert condarc.read_text() == "channels:\n  - conda-forge\nshow_channel_urls: true\n"
    assert json.loads(rattler.read_text()) == {"other.example": {"BearerToken": "keep-me"}}
    assert not (home / ".mamba" / "auth" / "authentication.json").exists()
    assert not list(home.rglob("*.repoproxy-wizard.bak"))
    assert "nothing to restore" in run(home, "wizard", "--restore").stdout

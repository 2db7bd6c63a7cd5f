"""Seed 002's smaller gaps: help on every command, token filters and renames, the channel
overview, picking one file for an SBOM, and the CVE API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package


def walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    out = [(path, command)]
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            out += walk(sub, [*path, name])
    return out


def test_every_command_has_help_text_and_takes_h() -> None:
    from repoproxy.cli import build_cli

    root = build_cli()
    commands = walk(root, [])
    assert len(commands) > 40  # the core's and the plugins' commands were found
    missing = [" ".join(p) for p, c in commands if not (c.help or c.short_help)]
    assert missing == []
    runner = CliRunner()
    for path, _ in commands:
        for flag in ("-h", "--help"):
            result = runner.invoke(root, [*path, flag])
            assert result.exit_code == 0, (path, flag, result.output)
            assert result.output.startswith("Usage: "), (path, flag)


def test_token_filters_and_rename(testapp: Any, make_channel: Any,
                                  admin_headers: dict[str, str]) -> None:
    make_channel("ci")
    make_channel("other")
    made = [testapp.post_json("/api/v1/tokens", {"name": n, "channels": chans},
                              headers=admin_headers).json
            for n, chans in (("a", ["ci"]), ("b", ["ci", "other"]), ("c", ["other"]))]
    listed = testapp.get("/api/v1/tokens?channel=ci", headers=admin_headers).json["tokens"]
    assert sorted(t["name"] for t in listed) == ["a", "b"]
    assert testapp.get("/api/v1/tokens?user_id=nobody",
                       headers=admin_headers).json["tokens"] == []
    renamed = testapp.patch_json(f"/api/v1/tokens/{made[0]['id']}", {"name": "deploy"},
                                 headers=admin_headers).json
    assert (renamed["name"], renamed["permission"]) == ("deploy", "read")
    testapp.patch_json(f"/api/v1/tokens/{made[0]['id']}", {}, headers=admin_headers,
                       status=400)
    testapp.patch_json(f"/api/v1/tokens/{made[0]['id']}", {"name": " "},
                       headers=admin_headers, status=400)
    audit = [json.loads(line) for line in
             testapp.get("/api/v1/audit", headers=admin_headers).text.splitlines()]
    assert (audit[-1]["action"], audit[-1]["details"]["name"]) == ("token.edit", "deploy")


def test_token_list_and_user_ids_offline_and_cli(services: Any, root: Path) -> None:
    from repoproxy.cli import build_cli
    from repoproxy.domain.channels import create_channel
    from repoproxy.domain.tokens import create_token
    from repoproxy.domain.users import add_user

    create_channel(services, "ci")
    add_user(services, "robot", "a-long-password")
    create_token(services, name="r1", channels=["ci"], owner="robot")
    create_token(services, name="other", admin=True)
    out = CliRunner().invoke(build_cli(), ["token", "list", "--root", str(root),
                                           "--channel", "ci", "--user-id", "robot"])
    assert out.exit_code == 0, out.output
    assert [json.loads(line)["name"] for line in out.output.splitlines()] == ["r1"]
    usage = CliRunner().invoke(build_cli(), ["token", "--list-user-ids"])
    assert usage.exit_code == 2
    assert "--list-user-ids needs --channel" in usage.output


def test_channel_overview(testapp: Any, services: Any, make_channel: Any,
                          admin_headers: dict[str, str], pkgdir: Path) -> None:
    from repoproxy.domain.members import add_member
    from repoproxy.domain.users import add_user

    make_channel("team", privacy="authenticated")
    add_user(services, "alice", "a-long-password")
    add_member(services, "team", "alice", "owner")
    upload_raw(testapp, "team", build_package(PackageSpec("lib"), pkgdir), admin_headers)
    testapp.post("/api/channels/team/artifacts/gra/notes/1/notes.txt", b"hi",
                 headers={**admin_headers, "Content-Type": "application/octet-stream"})
    body = testapp.get("/api/v1/channels/team", headers=admin_headers).json
    assert body["owners"] == ["alice"]
    assert body["created"] <= body["last_updated"]
    assert (body["package_count"], body["artifact_count"]) == (1, 1)
    assert (body["subchannel_count"], body["mirror_count"]) == (0, 0)
    reader = {"Authorization": "Bearer " + make_token(services, "r", channels=["team"])}
    assert testapp.get("/api/v1/channels/team", headers=reader).json["owners"] == ["alice"]
    make_channel("open")
    assert testapp.get("/api/v1/channels/open").json["owners"] == []  # anonymous


def test_sbom_picks_one_file() -> None:
    from repoproxy_sbom.cli import pick

    def f(fn: str, build: str = "0", subdir: str = "noarch") -> dict[str, Any]:
        return {"filename": fn, "subdir": subdir, "name": "a", "version": "1", "build": build,
                "ckey": f"k-{subdir}-{fn}"}

    twins = [f("a-1-0.tar.bz2"), f("a-1-0.conda")]
    assert pick(twins, None, None)["filename"] == "a-1-0.conda"
    assert pick(twins, None, "tar.bz2")["filename"] == "a-1-0.tar.bz2"
    assert pick(twins, "k-noarch-a-1-0.tar.bz2", None)["filename"] == "a-1-0.tar.bz2"
    with pytest.raises(click.ClickException, match="several files match"):
        pick([f("a-1-0.conda"), f("a-1-1.conda", build="1")], None, None)
    with pytest.raises(click.ClickException, match="no such package file"):
        pick(twins, "nope", None)


def test_cve_api(testapp: Any, services: Any, make_channel: Any,
                 admin_headers: dict[str, str], pkgdir: Path) -> None:
    make_channel("pub")
    make_channel("hid", privacy="private")
    for ch in ("pub", "hid"):
        upload_raw(testapp, ch, build_package(PackageSpec("libcurl", "8.4.0"), pkgdir),
                   admin_headers)
    curated = json.dumps({"format": "repoproxy-cve-v1", "cves": [
        {"id": "CVE-2024-0001", "score": 5.0, "description": "libcurl overflow",
         "published": "2024-01-02", "affected": [{"name": "libcurl", "versions": "<8.5"}]},
    ]}).encode()
    testapp.post("/api/v1/cves/import", curated, status=401)
    done = testapp.post("/api/v1/cves/import", curated, headers={
        **admin_headers, "Content-Type": "application/octet-stream"}).json
    assert done == {"records": 1, "new": 1, "updated": 0}
    testapp.post("/api/v1/cves/import", b"not json", headers={
        **admin_headers, "Content-Type": "application/octet-stream"}, status=400)
    assert testapp.get("/api/v1/cves/CVE-2024-0001").json["status"] == "uncurated"
    # files of a private channel stay hidden from those who may not read it
    assert testapp.get("/api/v1/cves/CVE-2024-0001/files").json["files"] == [
        "pub/noarch/libcurl-8.4.0-0.conda"]
    assert len(testapp.get("/api/v1/cves/CVE-2024-0001/files",
                           headers=admin_headers).json["files"]) == 2
    reader = {"Authorization": "Bearer " + make_token(services, "r", channels=["pub"])}
    testapp.patch_json("/api/v1/cves/CVE-2024-0001", {"status": "cleared"}, headers=reader,
                       status=403)
    assert testapp.patch_json("/api/v1/cves/CVE-2024-0001", {"status": "cleared"},
                              headers=admin_headers).json["status"] == "cleared"
    testapp.patch_json("/api/v1/cves/CVE-2024-0001", {"status": "bogus"},
                       headers=admin_headers, status=400)
    testapp.get("/api/v1/cves/CVE-1999-0000", status=404)

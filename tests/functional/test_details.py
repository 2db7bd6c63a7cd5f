"""Package details API: summary, files, dependencies, dependents, readme, delete, and CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

ART = "/api/channels/{}/artifacts/conda/{}"


@pytest.fixture
def published(testapp: Any, make_channel: Any, admin_headers: dict[str, str],
              pkgdir: Path) -> Any:
    make_channel("pub")
    make_channel("secret", privacy="private")
    specs = [
        (PackageSpec("lib", "1.9", about={"description": "# lib\nA library."}), "conda"),
        (PackageSpec("lib", "1.10", subdir="linux-64", license="BSD-3-Clause"), "tar.bz2"),
        (PackageSpec("lib", "1.10", subdir="osx-arm64", license="BSD-3-Clause"), "conda"),
        (PackageSpec("app", "1.0", depends=["lib >=1.9", "python"]), "conda"),
    ]
    for spec, fmt in specs:
        path = build_package(spec, pkgdir, fmt)
        for ch in ("pub", "secret"):
            upload_raw(testapp, ch, path, admin_headers)
    return specs


def test_summary_uses_conda_version_order_and_lists_platforms(testapp: Any, published: Any
                                                              ) -> None:
    body = testapp.get(ART.format("pub", "lib")).json
    assert body["latest_version"] == "1.10"  # not "1.9": conda order, not string order
    assert body["versions"] == ["1.10", "1.9"]
    assert body["platforms"] == ["linux-64", "noarch", "osx-arm64"]
    assert body["license"] == "BSD-3-Clause"
    assert body["home"] == "https://example.org/lib"
    assert body["summary"].startswith("lib 1.10")
    assert body["file_count"] == 3
    assert body["downloads"] == 0


def test_files_are_filterable_and_paginated(testapp: Any, published: Any) -> None:
    body = testapp.get(ART.format("pub", "lib") + "/files").json
    assert body["total"] == 3
    f = body["files"][0]
    for key in ("subdir", "version", "build", "size", "sha256", "md5", "uploaded_at",
                "indexed_timestamp", "downloads", "ckey", "filename"):
        assert key in f
    only = testapp.get(ART.format("pub", "lib") + "/files?subdir=linux-64").json
    assert [x["filename"] for x in only["files"]] == ["lib-1.10-0.tar.bz2"]
    page1 = testapp.get(ART.format("pub", "lib") + "/files?limit=2").json
    page2 = testapp.get(ART.format("pub", "lib") + "/files?limit=2&offset=2").json
    names = [x["filename"] + x["subdir"] for x in page1["files"] + page2["files"]]
    assert len(set(names)) == 3
    assert len(page2["files"]) == 1
    testapp.get(ART.format("pub", "lib") + "/files?limit=0", status=400)


def test_ckey_is_stable(testapp: Any, published: Any) -> None:
    a = testapp.get(ART.format("pub", "lib") + "/files").json["files"]
    b = testapp.get(ART.format("pub", "lib") + "/files").json["files"]
    assert [x["ckey"] for x in a] == [x["ckey"] for x in b]
    assert len({x["ckey"] for x in a}) == 3


def test_dependencies_and_dependents(testapp: Any, published: Any) -> None:
    deps = testapp.get(ART.format("pub", "app") + "/dependencies").json
    assert [(d["name"], d["spec"]) for d in deps["dependencies"]] == [
        ("lib", ">=1.9"), ("python", "")]
    lib = testapp.get(ART.format("pub", "lib") + "/dependents").json
    assert lib["dependents"] == [{"name": "app", "versions": ["1.0"]}]


def test_readme_comes_from_description(testapp: Any, published: Any) -> None:
    # the newest lib has no description: its summary is the readme
    assert testapp.get(ART.format("pub", "lib") + "/readme").json["source"] == "summary"
    body = testapp.get(ART.format("pub", "app") + "/readme").json
    assert body["readme"].startswith("app 1.0")


def test_missing_package_and_wrong_family_are_404(testapp: Any, published: Any) -> None:
    testapp.get(ART.format("pub", "nothing"), status=404)
    testapp.get("/api/channels/pub/artifacts/pypi/lib", status=404)


@pytest.mark.parametrize("suffix", ["", "/files", "/dependencies", "/dependents", "/readme"])
def test_private_channel_details_look_like_missing(testapp: Any, published: Any,
                                                    services: Any, suffix: str) -> None:
    url = ART.format("secret", "lib") + suffix
    anon = testapp.get(url, status=401)
    assert anon.json == testapp.get(ART.format("nochannel", "lib") + suffix, status=401).json
    other = make_token(services, "other", channels=["pub"])
    hidden = testapp.get(url, headers={"Authorization": f"Bearer {other}"}, status=404)
    missing = testapp.get(ART.format("nochannel", "lib") + suffix,
                          headers={"Authorization": f"Bearer {other}"}, status=404)
    assert hidden.json["error"] == missing.json["error"] == "not-found"
    reader = make_token(services, "reader", channels=["secret"])
    testapp.get(url, headers={"Authorization": f"Bearer {reader}"}, status=200)


def test_channel_package_list_hides_private_channels(testapp: Any, published: Any) -> None:
    names = [p["name"] for p in testapp.get("/api/channels/pub/artifacts").json["packages"]]
    assert names == ["app", "lib"]
    testapp.get("/api/channels/secret/artifacts", status=401)


def test_delete_whole_package_needs_delete_right(testapp: Any, published: Any,
                                                  services: Any,
                                                  admin_headers: dict[str, str]) -> None:
    reader = make_token(services, "reader", channels=["pub"])
    testapp.delete(ART.format("pub", "lib"), headers={"Authorization": f"Bearer {reader}"},
                   status=403)
    body = testapp.delete(ART.format("pub", "lib"), headers=admin_headers).json
    assert len(body["deleted"]) == 3
    testapp.get(ART.format("pub", "lib"), status=404)
    assert "lib" not in str(testapp.get("/pub/linux-64/repodata.json").json["packages"])


def test_cli_list_packages_and_files(testapp: Any, published: Any, monkeypatch: Any) -> None:
    from repoproxy.cli import build_cli
    from repoproxy.cli.http import Client

    def fake_request(self: Client, method: str, path: str, **kw: Any) -> Any:
        return testapp.get(path, params=kw.get("params") or {}).json

    monkeypatch.setattr(Client, "request", fake_request)
    runner = CliRunner()
    cli = build_cli()
    out = runner.invoke(cli, ["channel", "list-packages", "pub"])
    assert out.exit_code == 0, out.output
    assert '"name": "lib"' in out.output
    import json

    out = runner.invoke(cli, ["channel", "list-files", "pub"])
    assert out.exit_code == 0, out.output
    files = json.loads(out.output)
    assert len(files) == 4
    # plus CVE fields when a CVE plugin provides them
    assert {k for k in files[0] if not k.startswith("cve")} == {
        "filename", "name", "version", "platform", "ckey"}
    out = runner.invoke(cli, ["channel", "list-files", "pub", "--full-details"])
    full = json.loads(out.output)
    assert {"sha256", "size", "downloads", "sbom_url"} <= set(full[0])

"""repoproxy_sbom: one valid CycloneDX 1.6 SBOM per file, a subdir SBOM, and the CLI."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from packageurl import PackageURL
from repoproxy_sbom.build import validate
from repoproxy_sbom.queue import drain

from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

FILES = {"lib/python3.12/site-packages/demo/__init__.py": b"x = 1\n",
         "bin/demo": b"#!/bin/sh\necho demo\n"}


@pytest.fixture
def uploaded(testapp: Any, make_channel: Any, admin_headers: dict[str, str],
             pkgdir: Path) -> list[Path]:
    make_channel("pub")
    make_channel("secret", privacy="private")
    paths = [
        build_package(PackageSpec("demo", "2.1", subdir="linux-64", files=FILES,
                                  depends=["python >=3.12", "libzlib"],
                                  purls=["pkg:pypi/demo@2.1"],
                                  about={"dev_url": "https://git.example.org/demo",
                                         "doc_url": "https://docs.example.org/demo"}),
                      pkgdir, "conda"),
        build_package(PackageSpec("demo", "2.0", license="Apache-2.0 OR MIT"), pkgdir,
                      "tar.bz2"),
    ]
    for p in paths:
        upload_raw(testapp, "pub", p, admin_headers)
        upload_raw(testapp, "secret", p, admin_headers)
    return paths


def test_each_file_gets_a_valid_sbom_naming_it(testapp: Any, uploaded: list[Path],
                                               services: Any) -> None:
    for path, subdir in zip(uploaded, ("linux-64", "noarch"), strict=True):
        stored = services.store.root / "sbom" / "pub" / subdir / f"{path.name}.cdx.json"
        assert not stored.exists(), "queued at ingest, not built on the publish path"
        r = testapp.get(f"/api/channels/pub/sbom/{subdir}/{path.name}")
        assert stored.exists(), "built on request and stored"
        assert r.content_type == "application/vnd.cyclonedx+json"
        validate(r.text)
        bom = r.json
        assert bom["specVersion"] == "1.6"
        comp = bom["metadata"]["component"]
        purl = PackageURL.from_string(comp["purl"])
        kind = "conda" if path.name.endswith(".conda") else "tar.bz2"
        assert (purl.type, purl.name) == ("conda", "demo")
        assert purl.qualifiers["subdir"] == subdir
        assert purl.qualifiers["type"] == kind
        stem = path.name.removesuffix(".conda").removesuffix(".tar.bz2")
        assert f"{purl.name}-{purl.version}-{purl.qualifiers['build']}" == stem
        hashes = {h["alg"]: h["content"] for h in comp["hashes"]}
        assert hashes["SHA-256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert hashes["MD5"] == hashlib.md5(path.read_bytes()).hexdigest()  # noqa: S324
        assert bom["metadata"]["tools"]["components"][0]["name"] == "repoproxy"


def test_sbom_file_hashes_equal_paths_json(testapp: Any, uploaded: list[Path]) -> None:
    from repoproxy_sbom.build import read_paths

    bom = testapp.get(f"/api/channels/pub/sbom/linux-64/{uploaded[0].name}").json
    files = {c["name"]: c["hashes"][0]["content"] for c in bom["components"]
             if c["type"] == "file"}
    expected = {p["_path"]: p["sha256"] for p in read_paths(uploaded[0], uploaded[0].name)}
    assert files == expected
    assert expected == {k: hashlib.sha256(v).hexdigest() for k, v in FILES.items()}


def test_sbom_carries_license_refs_deps_and_extra_purls(testapp: Any,
                                                        uploaded: list[Path]) -> None:
    bom = testapp.get(f"/api/channels/pub/sbom/linux-64/{uploaded[0].name}").json
    comp = bom["metadata"]["component"]
    assert comp["licenses"] == [{"license": {"id": "MIT"}}]  # an SPDX id, not an expression
    refs = {r["comment"]: r["url"] for r in comp["externalReferences"]}
    assert refs["home"] == "https://example.org/demo"
    assert refs["dev_url"] == "https://git.example.org/demo"
    assert refs["download"].endswith(f"pub/linux-64/{uploaded[0].name}")
    props = {p["name"]: p["value"] for p in comp["properties"]}
    assert props["conda:subdir"] == "linux-64"
    assert "conda:indexed_timestamp" in props
    assert comp["evidence"]["identity"][0]["concludedValue"] == "pkg:pypi/demo@2.1"
    deps = {c["name"] for c in bom["components"] if c["type"] == "library"}
    assert deps == {"python", "libzlib"}
    graph = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert len(graph[comp["bom-ref"]]) == 2
    other = testapp.get(f"/api/channels/pub/sbom/noarch/{uploaded[1].name}").json
    assert other["metadata"]["component"]["licenses"] == [{"expression": "Apache-2.0 OR MIT"}]


def test_sbom_has_validators(testapp: Any, uploaded: list[Path]) -> None:
    url = f"/api/channels/pub/sbom/linux-64/{uploaded[0].name}"
    etag = testapp.get(url).headers["ETag"]
    testapp.get(url, headers={"If-None-Match": etag}, status=304)


def test_subdir_sbom_lists_every_file(testapp: Any, uploaded: list[Path],
                                      admin_headers: dict[str, str], pkgdir: Path) -> None:
    extra = build_package(PackageSpec("other", "1.0", subdir="linux-64"), pkgdir)
    upload_raw(testapp, "pub", extra, admin_headers)
    r = testapp.get("/api/channels/pub/sbom/linux-64")
    validate(r.text)
    purls = [PackageURL.from_string(c["purl"]) for c in r.json["components"]]
    assert sorted(p.name for p in purls) == ["demo", "other"]


def test_sbom_of_a_private_channel_needs_read(testapp: Any, uploaded: list[Path],
                                              services: Any) -> None:
    url = f"/api/channels/secret/sbom/linux-64/{uploaded[0].name}"
    testapp.get(url, status=401)
    other = make_token(services, "other", channels=["pub"])
    testapp.get(url, headers={"Authorization": f"Bearer {other}"}, status=404)
    reader = make_token(services, "reader", channels=["secret"])
    validate(testapp.get(url, headers={"Authorization": f"Bearer {reader}"}).text)


def test_sbom_is_rebuilt_on_request_and_removed_with_the_file(
        testapp: Any, uploaded: list[Path], services: Any,
        admin_headers: dict[str, str]) -> None:
    stored = services.store.root / "sbom" / "pub" / "linux-64" / f"{uploaded[0].name}.cdx.json"
    assert drain(services, max_attempts=5) == 4  # two files in two channels
    assert stored.exists()
    stored.unlink()
    validate(testapp.get(f"/api/channels/pub/sbom/linux-64/{uploaded[0].name}").text)
    testapp.delete(f"/api/v1/delete/pub/linux-64/{uploaded[0].name}", headers=admin_headers)
    assert not stored.exists()
    testapp.get(f"/api/channels/pub/sbom/linux-64/{uploaded[0].name}", status=404)


def test_details_link_the_sbom(testapp: Any, uploaded: list[Path]) -> None:
    files = testapp.get("/api/channels/pub/artifacts/conda/demo/files").json["files"]
    for f in files:
        validate(testapp.get(f["sbom_url"]).text)


def test_cli_sbom_downloads_one_file(testapp: Any, uploaded: list[Path], monkeypatch: Any,
                                     tmp_path: Path) -> None:
    from repoproxy.cli import build_cli
    from repoproxy.cli.http import Client

    monkeypatch.setattr(Client, "request", lambda self, m, p, **kw: testapp.get(
        p, params=kw.get("params") or {}).json)
    out_file = tmp_path / "demo.json"
    result = CliRunner().invoke(build_cli(), [
        "sbom", "--channel", "pub", "--package", "demo", "--version", "2.1",
        "--subdir", "linux-64", "-o", str(out_file)])
    assert result.exit_code == 0, result.output
    validate(out_file.read_text())
    assert json.loads(out_file.read_text())["metadata"]["component"]["version"] == "2.1"
    result = CliRunner().invoke(build_cli(), [
        "sbom", "--channel", "pub", "--package", "demo", "--version", "9",
        "--subdir", "linux-64"])
    assert result.exit_code == 1
    assert "no such package file" in result.output

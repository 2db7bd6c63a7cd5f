"""The CVE plugin: OSV (PyPI ecosystem, matched through purls) and curated data, imported from
files, drive the policy plugin's CVE filters in what the channel really serves."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from policy_helpers import served_all, upload_specs

from repoproxy.testing.packages import PackageSpec

CVSS_61 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N"
CVSS_98 = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"

REQ_OLD = PackageSpec("requests", "2.30.0", purls=["pkg:pypi/requests@2.30.0"])
REQ_NEW = PackageSpec("requests", "2.31.0", purls=["pkg:pypi/requests@2.31.0"])
YAML = PackageSpec("pyyaml", "5.3", purls=["pkg:pypi/PyYAML@5.3"])
CURL_OLD, CURL_NEW = PackageSpec("libcurl", "8.4.0"), PackageSpec("libcurl", "8.5.0")
SSL = PackageSpec("openssl", "3.0.7", subdir="linux-64")
ZLIB = PackageSpec("zlib", "1.3")
ALL = [REQ_OLD, REQ_NEW, YAML, CURL_OLD, CURL_NEW, SSL, ZLIB]


def f(spec: PackageSpec) -> str:
    return f"{spec.subdir}/{spec.stem}.conda"


def osv(osv_id: str, alias: str, package: str, fixed: str, vector: str) -> dict[str, Any]:
    return {
        "schema_version": "1.6.0", "id": osv_id, "aliases": [alias],
        "summary": f"{package} is vulnerable", "published": "2023-05-26T18:15:00Z",
        "modified": "2023-06-01T00:00:00Z", "severity": [{"type": "CVSS_V3", "score": vector}],
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": package,
                        "purl": f"pkg:pypi/{package.lower()}"},
            "ranges": [{"type": "ECOSYSTEM",
                        "events": [{"introduced": "0"}, {"fixed": fixed}]}],
        }],
    }


def write_osv(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for doc in (osv("GHSA-j8r2-6x86-q33q", "CVE-2023-32681", "requests", "2.31.0", CVSS_61),
                osv("GHSA-8q59-q68h-6hv4", "CVE-2020-14343", "PyYAML", "5.4", CVSS_98),
                # an npm record in the same dump is ignored
                {"id": "GHSA-npm", "affected": [{"package": {"ecosystem": "npm",
                                                             "name": "requests"}}]}):
        (directory / f"{doc['id']}.json").write_text(json.dumps(doc))
    return directory


def write_curated(path: Path, curl_score: float = 5.0) -> Path:
    path.write_text(json.dumps({"format": "repoproxy-cve-v1", "cves": [
        {"id": "CVE-2024-0001", "score": curl_score, "status": "mitigated",
         "description": "libcurl overflow", "published": "2024-01-02",
         "affected": [{"name": "libcurl", "versions": ">=8.0,<8.5"}]},
        {"id": "CVE-2024-0002", "score": 7.5, "status": "active",
         "description": "openssl timing", "published": "2024-02-03",
         "affected": [{"name": "openssl", "versions": "<3.0.8"}]},
    ]}))
    return path


def cli(root: Path, *args: str) -> Any:
    from repoproxy.cli import build_cli

    out = CliRunner().invoke(build_cli(), [*args, "--root", str(root)])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


@pytest.fixture
def sec(testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path,
        root: Path, tmp_path: Path) -> set[str]:
    make_channel("sec")
    uploaded = upload_specs(testapp, "sec", pkgdir, admin_headers, [(s, "conda") for s in ALL])
    cli(root, "cve", "import", str(write_osv(tmp_path / "osv")))
    cli(root, "cve", "import", str(write_curated(tmp_path / "curated.json")))
    return set(uploaded)


CASES = [
    ("score_le", {"cve_score": 7}, [YAML, SSL]),
    ("score_lt", {"cve_score": 6, "cve_score_comparator": "<"}, [YAML, SSL, REQ_OLD]),
    ("score_ge", {"cve_score": 7, "cve_score_comparator": ">="}, [REQ_OLD, CURL_OLD]),
    ("status_include", {"cve_status": "mitigated,cleared"}, [REQ_OLD, YAML, SSL]),
    ("status_exclude", {"exclude_cve_status": "active"}, [SSL]),
    ("link_and", {"cve_score": 7, "cve_status": "active"}, [REQ_OLD, YAML, SSL, CURL_OLD]),
    ("link_or", {"cve_score": 7, "cve_status": "active", "cve_link_status_and_score": "or"},
     [YAML]),
    ("allowlist", {"cve_score": 7, "cve_allowlist": "cve-2020-14343"}, [SSL]),
    ("exclude_uncurated", {"exclude_uncurated_cve_packages": True}, [REQ_OLD, YAML]),
]


@pytest.mark.parametrize(("filters", "hidden"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_cve_filters_hide_exactly_the_affected_files(
    sec: set[str], testapp: Any, admin_headers: dict[str, str], filters: dict[str, Any],
    hidden: list[PackageSpec],
) -> None:
    assert served_all(testapp, "sec") == sec
    testapp.post_json("/api/v1/policies", {"name": "p", "channel_name": "sec", **filters},
                      headers=admin_headers, status=201)
    assert served_all(testapp, "sec") == sec - {f(s) for s in hidden}


def test_cves_list_show_and_show_files(sec: set[str], root: Path) -> None:
    listed = {c["id"]: c for c in cli(root, "cves", "--list")}
    assert sorted(listed) == ["CVE-2020-14343", "CVE-2023-32681", "CVE-2024-0001",
                              "CVE-2024-0002"]
    assert listed["CVE-2023-32681"]["score"] == 6.1
    assert listed["CVE-2023-32681"]["status"] == "uncurated"
    assert listed["CVE-2020-14343"]["score"] == 9.8
    assert listed["CVE-2024-0001"]["files"] == 1
    shown = cli(root, "cves", "--show", "CVE-2023-32681")
    assert shown["cvss3"] == CVSS_61
    assert shown["aliases"] == ["GHSA-j8r2-6x86-q33q"]
    assert shown["published"] == "2023-05-26T18:15:00Z"
    assert cli(root, "cves", "--show-files", "CVE-2023-32681") == [f"sec/{f(REQ_OLD)}"]
    assert cli(root, "cves", "--show-files", "CVE-2024-0001") == [f"sec/{f(CURL_OLD)}"]
    assert cli(root, "cves", "--show-files", "CVE-2024-0002") == [f"sec/{f(SSL)}"]


def test_osv_zip_imports_like_a_directory(
    testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path, root: Path,
    tmp_path: Path,
) -> None:
    make_channel("sec")
    upload_specs(testapp, "sec", pkgdir, admin_headers, [(YAML, "conda")])
    directory = write_osv(tmp_path / "osv")
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in directory.iterdir():
            zf.write(path, path.name)
    assert cli(root, "cve", "import", str(archive))["records"] == 2
    assert cli(root, "cves", "--show-files", "CVE-2020-14343") == [f"sec/{f(YAML)}"]


def test_reimport_and_curation_reapply_policies_that_use_cves(
    sec: set[str], testapp: Any, admin_headers: dict[str, str], root: Path, tmp_path: Path,
) -> None:
    testapp.post_json("/api/v1/policies", {"name": "p", "channel_name": "sec", "cve_score": 7},
                      headers=admin_headers, status=201)
    assert f(CURL_OLD) in served_all(testapp, "sec")
    write_curated(tmp_path / "curated.json", curl_score=8.8)
    assert cli(root, "cve", "import", str(tmp_path / "curated.json"))["updated"] == 2
    assert f(CURL_OLD) not in served_all(testapp, "sec")
    assert cli(root, "cves", "--show", "CVE-2024-0001")["score"] == 8.8

    testapp.patch_json("/api/v1/policies/p", {"cve_score": "", "cve_status": "cleared"},
                       headers=admin_headers)
    assert f(REQ_OLD) not in served_all(testapp, "sec")
    assert cli(root, "cve", "status", "CVE-2023-32681", "cleared")["status"] == "cleared"
    assert f(REQ_OLD) in served_all(testapp, "sec")
    # an OSV re-import refreshes the score and keeps the curation status
    cli(root, "cve", "import", str(tmp_path / "osv"))
    assert cli(root, "cves", "--show", "CVE-2023-32681")["status"] == "cleared"


def test_package_cves_route_and_file_details(sec: set[str], testapp: Any) -> None:
    out = testapp.get("/api/channels/sec/artifacts/conda/requests/cves").json
    assert [c["id"] for c in out["cves"]] == ["CVE-2023-32681"]
    assert out["cves"][0]["score"] == 6.1
    assert out["cves"][0]["status"] == "uncurated"
    assert out["files"] == {f(REQ_OLD): ["CVE-2023-32681"]}
    files = {x["filename"]: x for x in testapp.get("/api/v1/channels/sec/files").json["files"]}
    assert files[f(SSL).split("/")[1]]["cve_score"] == 7.5
    assert files[f(SSL).split("/")[1]]["cves"] == [
        {"id": "CVE-2024-0002", "score": 7.5, "status": "active"}]
    assert files[f(ZLIB).split("/")[1]]["cves"] == []


def test_cvss3_base_scores() -> None:
    from repoproxy_cve.importer import cvss3_score

    assert cvss3_score(CVSS_98) == 9.8
    assert cvss3_score(CVSS_61) == 6.1
    assert cvss3_score("CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N") == 0.0
    assert cvss3_score("not a vector") is None


def test_hook_cve_facts(services: Any, make_channel: Any, testapp: Any,
                        admin_headers: dict[str, str], pkgdir: Path) -> None:
    make_channel("sec")
    upload_specs(testapp, "sec", pkgdir, admin_headers, [(CURL_OLD, "conda")])

    class Feed:
        from repoproxy import hookimpl

        @hookimpl
        def repoproxy_cve_facts(self, services: Any, channel: Any, records: Any) -> Any:
            return {(r.subdir, r.filename): [{"id": "CVE-2099-0001", "score": 9.9,
                                              "status": None}]
                    for r in records if r.name == "libcurl"}

    services.pm.register(Feed(), name="repoproxy_feed")
    testapp.post_json("/api/v1/policies", {"name": "p", "channel_name": "sec", "cve_score": 9},
                      headers=admin_headers, status=201)
    assert served_all(testapp, "sec") == set()
    explained = testapp.get(f"/api/v1/policies/explain/sec/{f(CURL_OLD)}",
                            headers=admin_headers).json
    assert "CVE-2099-0001" in explained["files"][0]["reasons"][0]


def test_hook_cve_data_changed(services: Any, tmp_path: Path) -> None:
    from repoproxy_cve.plugin import import_path

    from repoproxy import hookimpl

    seen: list[Any] = []

    class Listener:
        @hookimpl
        def repoproxy_cve_data_changed(self, services: Any) -> None:
            seen.append(services)

    class Broken:
        @hookimpl
        def repoproxy_cve_data_changed(self, services: Any) -> None:
            raise RuntimeError("isolated")

    services.pm.register(Broken(), name="repoproxy_broken")
    services.pm.register(Listener(), name="repoproxy_listener")
    assert import_path(services, write_curated(tmp_path / "c.json"))["new"] == 2
    assert seen == [services]

"""CVSS scores and PyPI version ranges come from the field's libraries, not hand-written code.

* A CVSS v4-only (or v2-only) OSV advisory gets its base score from the ``cvss`` library, so a
  score filter hides what it affects (it used to import with no score and pass every filter).
* OSV ``ECOSYSTEM`` ranges of PyPI packages are compared in PEP 440 order
  (``packaging.version``), where a ``.dev`` release comes before the ``rc`` that fixed it;
  conda ordering puts it after, and the vulnerable dev build was served as clean.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cvss import CVSS2, CVSS3, CVSS4
from policy_helpers import served_all, upload_specs

from repoproxy.testing.packages import PackageSpec

V4_CRITICAL = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"
V4_LOW = "CVSS:4.0/AV:L/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N"
V3_HIGH = "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:N"
V2_HIGH = "AV:N/AC:L/Au:N/C:P/I:P/A:P"

V4PKG = PackageSpec("v4pkg", "1.0", purls=["pkg:pypi/v4pkg@1.0"])
V4LOW = PackageSpec("v4low", "1.0", purls=["pkg:pypi/v4low@1.0"])
V2PKG = PackageSpec("v2pkg", "1.0", purls=["pkg:pypi/v2pkg@1.0"])
BOTH = PackageSpec("bothpkg", "1.0", purls=["pkg:pypi/bothpkg@1.0"])
# PEP 440: 2.0.0.dev0 < 2.0.0rc1 (affected); conda: 2.0.0.dev0 > 2.0.0rc1
DEV = PackageSpec("devpkg", "2.0.0.dev0", purls=["pkg:pypi/devpkg@2.0.0.dev0"])
RC = PackageSpec("devpkg", "2.0.0rc1", purls=["pkg:pypi/devpkg@2.0.0rc1"])
# PEP 440: 1.0a1 > 1.0.dev0 (affected: introduced at 1.0a1? no: the range starts at 1.0.dev5)
PRE = PackageSpec("prepkg", "1.0a1", purls=["pkg:pypi/prepkg@1.0a1"])
ALL = [V4PKG, V4LOW, V2PKG, BOTH, DEV, RC, PRE]


def f(spec: PackageSpec) -> str:
    return f"{spec.subdir}/{spec.stem}.conda"


def advisory(osv_id: str, package: str, severity: list[dict[str, str]],
             events: list[dict[str, str]]) -> dict[str, Any]:
    return {"schema_version": "1.6.0", "id": osv_id, "aliases": [],
            "summary": f"{package} is vulnerable", "published": "2025-01-01T00:00:00Z",
            "modified": "2025-01-02T00:00:00Z", "severity": severity,
            "affected": [{"package": {"ecosystem": "PyPI", "name": package},
                          "ranges": [{"type": "ECOSYSTEM", "events": events}]}]}


ADVISORIES = [
    advisory("CVE-2025-0004", "v4pkg", [{"type": "CVSS_V4", "score": V4_CRITICAL}],
             [{"introduced": "0"}, {"fixed": "1.1"}]),
    advisory("CVE-2025-0005", "v4low", [{"type": "CVSS_V4", "score": V4_LOW}],
             [{"introduced": "0"}, {"fixed": "1.1"}]),
    advisory("CVE-2025-0002", "v2pkg", [{"type": "CVSS_V2", "score": V2_HIGH}],
             [{"introduced": "0"}, {"fixed": "1.1"}]),
    # v3 and v4 both given: the v3 score is the one used (what filters were set against)
    advisory("CVE-2025-0003", "bothpkg", [{"type": "CVSS_V4", "score": V4_LOW},
                                          {"type": "CVSS_V3", "score": V3_HIGH}],
             [{"introduced": "0"}, {"fixed": "1.1"}]),
    advisory("CVE-2025-0010", "devpkg", [{"type": "CVSS_V3", "score": V3_HIGH}],
             [{"introduced": "0"}, {"fixed": "2.0.0rc1"}]),
    advisory("CVE-2025-0011", "prepkg", [{"type": "CVSS_V3", "score": V3_HIGH}],
             [{"introduced": "1.0.dev5"}, {"fixed": "1.0"}]),
]


def cli(root: Path, *args: str) -> Any:
    from repoproxy.cli import build_cli

    out = CliRunner().invoke(build_cli(), [*args, "--root", str(root)])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)


@pytest.fixture
def imported(testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path,
             root: Path, tmp_path: Path) -> set[str]:
    make_channel("sec")
    uploaded = upload_specs(testapp, "sec", pkgdir, admin_headers, [(s, "conda") for s in ALL])
    osv = tmp_path / "osv"
    osv.mkdir()
    for doc in ADVISORIES:
        (osv / f"{doc['id']}.json").write_text(json.dumps(doc))
    cli(root, "cve", "import", str(osv))
    return set(uploaded)


def test_scores_of_v4_and_v2_vectors_come_from_the_cvss_library(
    imported: set[str], root: Path,
) -> None:
    listed = {c["id"]: c for c in cli(root, "cves", "--list")}
    assert listed["CVE-2025-0004"]["score"] == float(CVSS4(V4_CRITICAL).base_score) == 9.3
    assert listed["CVE-2025-0005"]["score"] == float(CVSS4(V4_LOW).base_score)
    assert listed["CVE-2025-0002"]["score"] == float(CVSS2(V2_HIGH).base_score) == 7.5
    assert listed["CVE-2025-0003"]["score"] == float(CVSS3(V3_HIGH).base_score) == 8.1
    shown = cli(root, "cves", "--show", "CVE-2025-0004")
    assert shown["cvss4"] == V4_CRITICAL
    assert cli(root, "cves", "--show", "CVE-2025-0002")["cvss2"] == V2_HIGH


def test_score_filter_hides_v4_only_advisories(
    imported: set[str], testapp: Any, admin_headers: dict[str, str],
) -> None:
    # keep files whose CVEs all score <= 7: the v4-critical and v2-high ones must go
    testapp.post_json("/api/v1/policies", {"name": "p", "channel_name": "sec", "cve_score": 7},
                      headers=admin_headers, status=201)
    hidden = imported - served_all(testapp, "sec")
    assert hidden == {f(V4PKG), f(V2PKG), f(BOTH), f(DEV), f(PRE)}
    assert f(V4LOW) not in hidden  # its v4 score is low


def test_pypi_ranges_use_pep440_order(imported: set[str], root: Path) -> None:
    assert cli(root, "cves", "--show-files", "CVE-2025-0010") == [f"sec/{f(DEV)}"]
    assert cli(root, "cves", "--show-files", "CVE-2025-0011") == [f"sec/{f(PRE)}"]


def test_in_events_by_ecosystem() -> None:
    from repoproxy_cve.matching import in_events

    events = [{"introduced": "0"}, {"fixed": "2.0.0rc1"}]
    assert in_events("2.0.0.dev0", events, [], "pypi")
    assert not in_events("2.0.0rc1", events, [], "pypi")
    assert not in_events("2.0.0", events, [], "pypi")
    # conda entries keep conda ordering, where a dev release sorts after rc
    assert not in_events("2.0.0.dev0", events, [], "conda")
    # PEP 440 equality: an explicit version matches its normalised spellings
    assert in_events("1.0.0", [], ["1.0"], "pypi")
    assert not in_events("not a version", events, [], "pypi")


def test_malformed_vectors_give_no_score_and_no_crash() -> None:
    from repoproxy_cve.importer import cvss_score

    assert cvss_score("CVSS:4.0/AV:N") is None
    assert cvss_score("CVSS:3.1/AV:Q/AC:L") is None
    assert cvss_score("not a vector") is None
    assert cvss_score(V4_CRITICAL) == 9.3
    assert cvss_score(V2_HIGH) == 7.5


def test_curated_entry_without_score_takes_its_vectors(root: Path, services: Any,
                                                       tmp_path: Path) -> None:
    curated = tmp_path / "curated.json"
    curated.write_text(json.dumps({"format": "repoproxy-cve-v1", "cves": [
        {"id": "CVE-2025-0100", "cvss4": V4_CRITICAL,
         "affected": [{"name": "zlib", "versions": "<2"}]},
        {"id": "CVE-2025-0101", "score": 1.0, "cvss3": V3_HIGH,
         "affected": [{"name": "zlib", "versions": "<2"}]}]}))
    cli(root, "cve", "import", str(curated))
    assert cli(root, "cves", "--show", "CVE-2025-0100")["score"] == 9.3
    assert cli(root, "cves", "--show", "CVE-2025-0101")["score"] == 1.0  # a given score wins

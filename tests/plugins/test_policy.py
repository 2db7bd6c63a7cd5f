"""The policy plugin through the real app: every filter of seed 002 is checked in what the
channel serves (repodata.json, .zst and the CEP-16 shards), plus edit semantics, hidden
downloads, upload refusals, explain and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from policy_helpers import served, served_all, upload_specs

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

DAY_MS = 86_400_000
T_2023_06_01 = 1_685_577_600_000  # 2023-06-01T00:00:00Z


def P(name: str, version: str = "1.0", **kw: Any) -> PackageSpec:
    return PackageSpec(name, version, **kw)


@dataclass
class Case:
    id: str
    filters: dict[str, Any]
    packages: list[tuple[PackageSpec, str]]
    stay: list[str]  # subdir/filename
    go: list[str]
    extra: dict[str, Any] = field(default_factory=dict)


def c(spec: PackageSpec, fmt: str = "conda") -> tuple[PackageSpec, str]:
    return spec, fmt


def fn(spec: PackageSpec, fmt: str = "conda") -> str:
    return f"{spec.subdir}/{spec.stem}.{fmt}"


LINUX, OSX, WIN, NOARCH = (P("plat", subdir=s) for s in ("linux-64", "osx-64", "win-64",
                                                         "noarch"))
MIT, BSD, GPL3, GPL, APACHE, NOLIC, LGPL = (
    P("mitpkg", license="MIT"), P("bsdpkg", license="BSD-3-Clause"),
    P("gpl3pkg", license="GPL-3.0-or-later"), P("gplpkg", license="GPL"),
    P("apachepkg", license="Apache-2.0"), P("nolic", license=None),
    P("lgplpkg", license="LGPL-2.1"),
)
A, B, X, Y = P("alpha"), P("beta"), P("xray"), P("yankee")
APP = P("app", depends=["lib >=2", "tool"])
LIB1, LIB2, TOOL, OTHER = P("lib", "1.0"), P("lib", "2.0"), P("tool", subdir="linux-64"), P("other")
DEPLEAF = P("leaf")
TWIN = P("twin")
SOLO = P("solo")
OLD = P("old", timestamp=T_2023_06_01 - 10 * DAY_MS)
MID = P("mid", timestamp=T_2023_06_01 + 5 * DAY_MS)
NEW = P("new", timestamp=T_2023_06_01 + 100 * DAY_MS)

CASES = [
    Case("platform", {"platform": "linux-64,osx-64"},
         [c(LINUX), c(OSX), c(WIN), c(NOARCH)], [fn(LINUX), fn(OSX), fn(NOARCH)], [fn(WIN)]),
    Case("platform_not", {"platform_not": "win-64,osx-64"},
         [c(LINUX), c(OSX), c(WIN), c(NOARCH)], [fn(LINUX), fn(NOARCH)], [fn(WIN), fn(OSX)]),
    Case("license", {"license": "MIT,BSD"},
         [c(MIT), c(BSD), c(GPL3), c(APACHE), c(NOLIC)], [fn(MIT), fn(BSD)],
         [fn(GPL3), fn(APACHE), fn(NOLIC)]),
    Case("license_not", {"license_not": "GPL3,None,lgpl"},
         [c(MIT), c(GPL3), c(GPL), c(NOLIC), c(LGPL)], [fn(MIT), fn(GPL)],
         [fn(GPL3), fn(NOLIC), fn(LGPL)]),
    Case("package_name", {"package_name": "alpha,beta"},
         [c(A), c(B), c(X)], [fn(A), fn(B)], [fn(X)]),
    Case("exclude_package_name", {"exclude_package_name": "xray,yankee"},
         [c(A), c(X), c(Y)], [fn(A)], [fn(X), fn(Y)]),
    Case("exclude_package_name_exception",
         {"exclude_package_name": "xray,yankee", "exclude_package_name_exception": "yankee"},
         [c(A), c(X), c(Y)], [fn(A), fn(Y)], [fn(X)]),
    Case("package_name_without_dependencies", {"package_name": "app"},
         [c(APP), c(LIB1), c(LIB2), c(TOOL), c(OTHER)], [fn(APP)],
         [fn(LIB1), fn(LIB2), fn(TOOL), fn(OTHER)]),
    Case("include_dependencies", {"package_name": "app", "include_dependencies": True},
         [c(APP), c(LIB1), c(LIB2), c(TOOL), c(OTHER)], [fn(APP), fn(LIB2), fn(TOOL)],
         [fn(LIB1), fn(OTHER)]),
    Case("exclude_dependencies",
         {"exclude_package_name": "app", "exclude_dependencies": True},
         [c(APP), c(LIB1), c(LIB2), c(TOOL), c(OTHER)], [fn(OTHER), fn(LIB1)],
         [fn(APP), fn(LIB2), fn(TOOL)]),
    Case("legacy_dropped_by_default", {"platform_not": "win-64"},
         [c(TWIN), c(TWIN, "tar.bz2"), c(SOLO, "tar.bz2")],
         [fn(TWIN), fn(SOLO, "tar.bz2")], [fn(TWIN, "tar.bz2")]),
    Case("keep_legacy_packages", {"keep_legacy_packages": True},
         [c(TWIN), c(TWIN, "tar.bz2"), c(SOLO, "tar.bz2")],
         [fn(TWIN), fn(TWIN, "tar.bz2"), fn(SOLO, "tar.bz2")], []),
    Case("package_created_from", {"package_created_from": "2023-06-01"},
         [c(OLD), c(MID), c(NEW)], [fn(MID), fn(NEW)], [fn(OLD)]),
    Case("package_created_to", {"package_created_to": "2023-06-06"},
         [c(OLD), c(MID), c(NEW)], [fn(OLD), fn(MID)], [fn(NEW)]),
    Case("package_created_from_and_to",
         {"package_created_from": "2023-06-01", "package_created_to": "2023-06-06"},
         [c(OLD), c(MID), c(NEW)], [fn(MID)], [fn(OLD), fn(NEW)]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_filter_keeps_and_hides_what_it_should_in_served_repodata_and_shards(
    case: Case, testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path,
) -> None:
    make_channel("pol")
    uploaded = upload_specs(testapp, "pol", pkgdir, admin_headers, case.packages)
    assert served_all(testapp, "pol") == set(uploaded)
    assert sorted(case.stay + case.go) == sorted(uploaded)

    created = testapp.post_json("/api/v1/policies",
                                {"name": case.id, "channel_name": "pol", **case.filters},
                                headers=admin_headers, status=201).json
    assert created["channels"] == ["pol"]
    assert served_all(testapp, "pol") == set(case.stay)
    for path in case.go:  # hidden downloads answer like missing files
        missing = testapp.get(f"/pol/{path.rsplit('/', 1)[0]}/nope-1-0.conda", status=404)
        assert testapp.get(f"/pol/{path}", status=404).json == dict(
            missing.json, message=missing.json["message"].replace(
                "nope-1-0.conda", path.rsplit("/", 1)[1]))
    for path in case.stay:
        testapp.get(f"/pol/{path}", status=200)

    # unassigning brings every stored file back
    testapp.post_json(f"/api/v1/policies/{created['id']}/unassign", {"channel": "pol"},
                      headers=admin_headers)
    assert served_all(testapp, "pol") == set(uploaded)


def test_hidden_files_leave_run_exports_and_channeldata(
    testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path
) -> None:
    make_channel("pol")
    upload_specs(testapp, "pol", pkgdir, admin_headers,
                 [c(P("keep", run_exports={"weak": ["keep"]})),
                  c(P("drop", run_exports={"weak": ["drop"]}))])
    testapp.post_json("/api/v1/policies", {"name": "p", "channel_name": "pol",
                                           "exclude_package_name": "drop"},
                      headers=admin_headers, status=201)
    run_exports = testapp.get("/pol/noarch/run_exports.json").json
    assert list(run_exports["packages.conda"]) == ["keep-1.0-0.conda"]
    assert list(testapp.get("/pol/channeldata.json").json["packages"]) == ["keep"]


def test_upload_the_policy_would_hide_is_refused_with_every_reason(
    testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path
) -> None:
    make_channel("pol")
    testapp.post_json("/api/v1/policies", {"name": "strict", "channel_name": "pol",
                                           "license": "MIT", "platform_not": "win-64",
                                           "exclude_package_name": "bad"},
                      headers=admin_headers, status=201)
    path = build_package(P("bad", subdir="win-64", license="GPL-3.0"), pkgdir)
    refused = upload_raw(testapp, "pol", path, admin_headers, status=422).json
    assert len(refused["reasons"]) == 3
    assert all(r.startswith("repoproxy_policy: policy 'strict': ") for r in refused["reasons"])
    text = " ".join(refused["reasons"])
    assert "license:" in text
    assert "platform_not:" in text
    assert "exclude_package_name:" in text
    upload_raw(testapp, "pol", build_package(P("good"), pkgdir), admin_headers, status=201)
    assert served_all(testapp, "pol") == {"noarch/good-1.0-0.conda"}


def test_edit_replaces_a_filter_and_an_empty_string_clears_it(
    testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path
) -> None:
    make_channel("pol")
    pkgs = [c(P("plat", subdir=s)) for s in ("win-32", "win-64", "linux-64")]
    upload_specs(testapp, "pol", pkgdir, admin_headers, pkgs)
    pid = testapp.post_json("/api/v1/policies", {"name": "p", "channel_name": "pol",
                                                 "platform_not": "win-32",
                                                 "license_not": "GPL"},
                            headers=admin_headers, status=201).json["id"]
    assert served(testapp, "pol", "win-32") == set()
    edited = testapp.patch_json(f"/api/v1/policies/{pid}", {"platform_not": "win-64"},
                                headers=admin_headers).json
    # replaced, not added to; the other filter is untouched
    assert edited["filters"]["platform_not"] == ["win-64"]
    assert edited["filters"]["license_not"] == ["GPL"]
    assert served(testapp, "pol", "win-32") == {"plat-1.0-0.conda"}
    assert served(testapp, "pol", "win-64") == set()
    cleared = testapp.patch_json(f"/api/v1/policies/{pid}", {"platform_not": ""},
                                 headers=admin_headers).json
    assert "platform_not" not in cleared["filters"]
    assert served(testapp, "pol", "win-64") == {"plat-1.0-0.conda"}
    assert testapp.get(f"/api/v1/policies/{pid}").json["filters"]["license_not"] == ["GPL"]


def test_cli_policy_create_edit_clear_explain_assign_delete(
    testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path, root: Path
) -> None:
    import json

    from repoproxy.cli import build_cli

    make_channel("pol")
    upload_specs(testapp, "pol", pkgdir, admin_headers,
                 [c(P("plat", subdir="win-32")), c(P("plat", subdir="win-64"))])
    cli, r = build_cli(), ["--root", str(root)]

    def run(*args: str, code: int = 0) -> Any:
        out = CliRunner().invoke(cli, ["policy", *args, *r])
        assert out.exit_code == code, out.output
        return json.loads(out.output) if code == 0 else out.output

    made = run("--create", "--name", "cp", "--description", "d", "--platform-not", "win-32")
    assert made["filters"]["platform_not"] == ["win-32"]
    assert made["channels"] == []
    assert run("--assign", str(made["id"]), "--channel", "pol")["rebuilt"] == ["win-32"]
    assert served(testapp, "pol", "win-32") == set()
    explained = run("--explain", "pol", "plat-1.0-0.conda")
    hidden = {f["subdir"]: f for f in explained["files"]}
    assert hidden["win-32"]["hidden"]
    assert "platform_not" in hidden["win-32"]["reasons"][0]
    assert not hidden["win-64"]["hidden"]
    edited = run("--edit", str(made["id"]), "--platform-not", "win-64")
    assert edited["filters"]["platform_not"] == ["win-64"]
    assert edited["description"] == "d"
    assert served(testapp, "pol", "win-32") == {"plat-1.0-0.conda"}
    assert served(testapp, "pol", "win-64") == set()
    assert "platform_not" not in run("--edit", "cp", "--platform-not", "")["filters"]
    assert served(testapp, "pol", "win-64") == {"plat-1.0-0.conda"}
    assert [p["name"] for p in run("--list-all")] == ["cp"]
    assert run("--show", "cp")["id"] == made["id"]
    assert "not supported yet" in run("--edit", "cp", "--only-signed-packages", code=1)
    run("--unassign", "cp", "--channel", "pol")
    assert run("--delete", "cp")["deleted"] == made["id"]
    assert run("--list-all") == []


def test_explain_api_and_admin_only_changes(
    testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path,
    services: Any,
) -> None:
    from repoproxy.testing.fixtures import make_token

    make_channel("pol")
    upload_specs(testapp, "pol", pkgdir, admin_headers, [c(X), c(A)])
    body = {"name": "p", "channel_name": "pol", "exclude_package_name": "xray"}
    reader = {"Authorization": f"Bearer {make_token(services, 'r', channels=['pol'])}"}
    testapp.post_json("/api/v1/policies", body, headers=reader, status=403)
    testapp.post_json("/api/v1/policies", body, status=401)
    testapp.post_json("/api/v1/policies", body, headers=admin_headers, status=201)
    assert [p["name"] for p in testapp.get("/api/v1/policies").json["policies"]] == ["p"]
    explained = testapp.get(f"/api/v1/policies/explain/pol/noarch/{fn(X).split('/')[1]}",
                            headers=admin_headers).json
    assert explained["files"][0]["reasons"] == ["exclude_package_name: xray is excluded"]
    testapp.get("/api/v1/policies/explain/pol/alpha-1.0-0.conda", headers=reader, status=403)
    assert testapp.get("/api/v1/policies/explain/pol/alpha-1.0-0.conda",
                       headers=admin_headers).json["files"][0]["hidden"] is False


@pytest.mark.parametrize(("body", "message"), [
    ({"only_signed_packages": True}, "not supported yet"),
    ({"platform": "linux-99"}, "unknown platform"),
    ({"license": "WTFPL"}, "unknown license family"),
    ({"cve_score_comparator": "=<"}, "cve_score_comparator"),
    ({"package_created_from": "01/02/2023"}, "YYYY-MM-DD"),
    ({"include_dependencies": True, "exclude_dependencies": True}, "exclude each other"),
    ({"no_such_filter": 1}, "unknown field"),
])
def test_invalid_policies_are_refused_with_a_clear_message(
    testapp: Any, admin_headers: dict[str, str], body: dict[str, Any], message: str
) -> None:
    out = testapp.post_json("/api/v1/policies", {"name": "p", **body}, headers=admin_headers,
                            status=400).json
    assert message in out["message"]


def test_changing_a_policy_rebuilds_only_the_affected_subdirs(
    testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path,
    services: Any,
) -> None:
    make_channel("pol")
    upload_specs(testapp, "pol", pkgdir, admin_headers,
                 [c(P("plat", subdir=s)) for s in ("win-64", "linux-64", "osx-64")])
    before = services.indexer.builds
    out = testapp.post_json("/api/v1/policies", {"name": "p", "platform_not": "win-64"},
                            headers=admin_headers, status=201).json
    assert services.indexer.builds == before  # not assigned anywhere: nothing to do
    assigned = testapp.post_json(f"/api/v1/policies/{out['id']}/assign", {"channel": "pol"},
                                 headers=admin_headers).json
    assert assigned["rebuilt"] == ["win-64"]
    assert services.indexer.builds == before + 1


def test_hook_policy_judge(testapp: Any, services: Any, admin_headers: dict[str, str],
                           make_channel: Any, pkgdir: Path) -> None:
    from repoproxy.errors import RepoproxyError

    make_channel("judged")
    upload_specs(testapp, "judged", pkgdir, admin_headers,
                 [c(P("keep")), c(P("drop")), c(P("gpl", license="GPL-3.0-or-later"))])
    testapp.post_json("/api/v1/policies", {"name": "no-drop", "exclude_package_name": "drop"},
                      headers=admin_headers, status=201)
    channel = services.catalog().require_channel("judged")
    records = list(services.catalog().packages("judged"))
    judge = services.pm.hook.repoproxy_policy_judge
    hidden = judge(services=services, channel=channel, records=records, policy="no-drop",
                   filters={"license_not": "GPL3"})
    assert sorted(fn for _, fn in hidden) == ["drop-1.0-0.conda", "gpl-1.0-0.conda"]
    assert all(hidden.values())  # each with its reasons
    # only what was asked about is judged; the channel (no policy) still serves everything
    assert judge(services=services, channel=channel, records=records[:0], policy="no-drop",
                 filters={}) == {}
    assert served(testapp, "judged", "noarch") == {r.filename for r in records}
    with pytest.raises(RepoproxyError) as e:
        judge(services=services, channel=channel, records=[], policy="nope", filters={})
    assert e.value.status == 404
    with pytest.raises(RepoproxyError) as e:
        judge(services=services, channel=channel, records=[], policy=None,
              filters={"cve_score": 42})
    assert e.value.status == 400


def test_a_channel_without_policy_never_loads_the_engine(tmp_path: Path) -> None:
    """Uploads and index builds of a channel without a policy ask the policy tables only:
    the engine (and its imports) loads with the first channel that has one."""
    code = f"""
import sys
from pathlib import Path
from repoproxy.domain.channels import create_channel
from repoproxy.domain.core import load_core
from repoproxy.domain.packages import upload_file
from repoproxy.testing.packages import PackageSpec, build_package

core = load_core({{"repoproxy.root": {str(tmp_path / "root")!r}}})
create_channel(core, "plain")
upload_file(core, "plain", build_package(PackageSpec("keep"), Path({str(tmp_path)!r})))
print("plain", "repoproxy_policy.engine" in sys.modules)
from repoproxy.errors import PackageRejected
from repoproxy_policy import ops
ops.create(core, {{"name": "no-drop", "exclude_package_name": "drop", "channel_name": "plain"}})
try:
    upload_file(core, "plain", build_package(PackageSpec("drop"), Path({str(tmp_path)!r})))
except PackageRejected:
    print("refused", "repoproxy_policy.engine" in sys.modules)
"""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["plain", "False", "refused", "True"]

"""The mirror plugin through the real app over real SQLite: definitions (API and CLI), active
runs through the ingest pipeline, and the pull-through proxy, against a loopback upstream
serving a channel a real repoproxy core built (and that injects faults on demand)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zstandard
from click.testing import CliRunner

from repoproxy.testing.packages import PackageSpec
from repoproxy.testing.upstream import (
    Upstream,
    build_upstream_root,
    drops_reused_connections,
    redirect,
    slow,
    status,
    tampered,
    truncated,
)

SPECS = [
    (PackageSpec("libcore", "1.0", subdir="linux-64"), "conda"),
    (PackageSpec("libcore", "2.0", subdir="linux-64"), "tar.bz2"),
    (PackageSpec("helper", "0.5", depends=["libcore >=2"]), "conda"),
    (PackageSpec("app", "3.0", subdir="linux-64", depends=["helper", "libcore"]), "conda"),
    (PackageSpec("app", "2.0", subdir="linux-64", depends=["helper"]), "conda"),
]


@pytest.fixture(scope="module")
def upstream_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The upstream channel, built once by a real core; each test serves its own copy."""
    tmp = tmp_path_factory.mktemp("upstream")
    pkgs = tmp / "pkgs"
    pkgs.mkdir()
    core = build_upstream_root(tmp / "root", "up", SPECS, pkgs)
    core.close()
    return tmp / "root" / "channels"


@pytest.fixture
def upstream(tmp_path: Path, upstream_tree: Path) -> Iterator[tuple[Upstream, Any]]:
    shutil.copytree(upstream_tree, tmp_path / "upstream")
    srv = Upstream(tmp_path / "upstream")
    yield srv, None
    srv.close()


@pytest.fixture
def source(upstream: tuple[Upstream, Any]) -> str:
    return f"{upstream[0].url}/up"


def _mirror(testapp: Any, headers: dict[str, str], name: str, channel: str, source: str,
            mode: str = "active", status: int = 201, **body: Any) -> Any:
    return testapp.post_json("/api/v1/mirrors", {"name": name, "channel": channel,
                                                  "source": source, "mode": mode, **body},
                             headers=headers, status=status).json


def _files(testapp: Any, channel: str, subdir: str) -> dict[str, Any]:
    data = testapp.get(f"/{channel}/{subdir}/repodata.json").json
    return {**data["packages"], **data["packages.conda"]}


def _upstream_repodata(upstream: Upstream, subdir: str) -> dict[str, Any]:
    return json.loads((upstream.directory / "up" / subdir / "repodata.json").read_bytes())


def _edit_upstream(upstream: Upstream, subdir: str, edit: Any) -> None:
    path = upstream.directory / "up" / subdir / "repodata.json"
    data = json.loads(path.read_bytes())
    edit(data)
    path.write_text(json.dumps(data))
    # its .zst twin, which mirrors read first, says the same
    path.with_name("repodata.json.zst").write_bytes(
        zstandard.ZstdCompressor().compress(path.read_bytes()))


# --- definitions ---------------------------------------------------------------------------
def test_mirror_definitions_through_the_api(testapp: Any, admin_headers: dict[str, str],
                                            make_channel: Any, source: str) -> None:
    make_channel("lua")
    created = _mirror(testapp, admin_headers, "snakes", "lua", source, mode="passive",
                      subdirs="noarch, osx-64, osx-arm64",
                      only_specs=["lua", "ncurses", "readline"], cron="0 0 * * *")
    assert created["name"] == "snakes"
    assert created["type"] == "conda"
    assert created["filters"]["subdirs"] == ["noarch", "osx-64", "osx-arm64"]
    assert created["filters"]["only_specs"] == ["lua", "ncurses", "readline"]
    shown = testapp.get("/api/v1/mirrors/snakes", {"channel": "lua"},
                        headers=admin_headers).json
    assert shown["id"] == created["id"]
    assert shown["cron"] == "0 0 * * *"
    assert [m["name"] for m in testapp.get("/api/v1/mirrors", headers=admin_headers)
            .json["mirrors"]] == ["snakes"]
    # `channel show` counts the channel's mirrors
    assert testapp.get("/api/v1/channels/lua", headers=admin_headers).json["mirrors"] == 1
    updated = testapp.patch_json("/api/v1/mirrors/snakes",
                                 {"channel": "lua", "only_specs": ["lua"], "mode": "active"},
                                 headers=admin_headers).json
    assert updated["filters"]["only_specs"] == ["lua"]
    assert updated["mode"] == "active"
    assert testapp.post("/api/v1/mirrors/snakes/stop", headers=admin_headers).json[
        "state"] == "stopped"
    assert testapp.post("/api/v1/mirrors/snakes/restart", headers=admin_headers).json[
        "state"] == "pending"
    _mirror(testapp, admin_headers, "snakes", "lua", source, status=409)
    testapp.get("/api/v1/mirrors/snakes", {"channel": "other"}, headers=admin_headers,
                status=404)
    assert testapp.delete("/api/v1/mirrors/snakes?channel=lua", headers=admin_headers).json == {
        "deleted": "snakes", "channel": "lua"}
    assert testapp.get("/api/v1/channels/lua", headers=admin_headers).json["mirrors"] == 0


def test_mirror_routes_need_an_admin(testapp: Any, make_channel: Any, source: str) -> None:
    make_channel("lua")
    testapp.get("/api/v1/mirrors", status=401)
    testapp.post_json("/api/v1/mirrors", {"name": "m", "channel": "lua", "source": source,
                                          "mode": "active"}, status=401)


@pytest.mark.parametrize("kind", ["python_simple", "CRAN"])
def test_other_mirror_types_are_refused_clearly(testapp: Any, admin_headers: dict[str, str],
                                                make_channel: Any, source: str,
                                                kind: str) -> None:
    make_channel("lua")
    r = _mirror(testapp, admin_headers, "m", "lua", source, status=422, type=kind)
    assert "conda channels only" in r["message"]
    assert testapp.get("/api/v1/mirrors", headers=admin_headers).json["mirrors"] == []


@pytest.mark.parametrize(("body", "words"), [
    ({"only_specs": ["lua >=>1"]}, "not a valid MatchSpec"),
    ({"source": "http://user:pw@example.invalid/c"}, "must not carry credentials"),
    ({"source": "http://example.invalid/t/abc/c"}, "must not carry credentials"),
    ({"source": "ftp://example.invalid/c"}, "http(s) URL"),
    ({"mode": "sideways"}, "active or passive"),
    ({"cron": "every day"}, "not a valid cron"),
    ({"subdirs": "noarch, LINUX"}, "not a subdir"),
    ({"date_from": "2022-05-15", "date_to": "2022-03-01"}, "earlier than"),
    ({"date_from": "2020-01-01", "date_to": "2022-03-01"}, "one year"),
    ({"colour": "red"}, "unknown mirror field"),
])
def test_bad_mirror_definitions_get_a_specific_400(testapp: Any, admin_headers: dict[str, str],
                                                   make_channel: Any, source: str,
                                                   body: dict[str, Any], words: str) -> None:
    make_channel("lua")
    full = {"name": "m", "channel": "lua", "source": source, "mode": "active", **body}
    r = testapp.post_json("/api/v1/mirrors", full, headers=admin_headers, status=400).json
    assert words in r["message"]
    assert testapp.get("/api/v1/mirrors", headers=admin_headers).json["mirrors"] == []


def test_mirror_command_offline_in_the_seeds_form(services: Any, root: Path, source: str,
                                                  make_channel: Any) -> None:
    from repoproxy.cli import build_cli

    make_channel("lua")
    cli = build_cli()
    runner = CliRunner()
    r = runner.invoke(cli, ["mirror", "--create", "boa", "--channel", "lua", "--source", source,
                            "--mode", "active", "--type", "conda", "--subdirs", "noarch",
                            "--only_spec", "helper", "--cron", "0 0 * * *", "--run_now",
                            "--root", str(root)])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["state"] == "completed"
    assert out["counts"]["added"] == 1
    r = runner.invoke(cli, ["mirror", "--show", "boa", "--channel", "lua", "--root", str(root)])
    assert r.exit_code == 0, r.output
    assert "Mirror Details:" in r.output
    assert "mode: active" in r.output
    assert "only_specs" in r.output
    assert "['helper']" in r.output
    r = runner.invoke(cli, ["mirror", "--list", "--root", str(root)])
    assert r.output.split("\t")[:4] == ["boa", "lua", "active", "completed"]
    r = runner.invoke(cli, ["mirror", "--create", "x", "--channel", "lua", "--source", source,
                            "--mode", "active", "--type", "python_simple", "--root", str(root)])
    assert r.exit_code == 1
    assert "conda channels only" in r.output
    r = runner.invoke(cli, ["mirror", "--stop", "boa", "--root", str(root)])
    assert json.loads(r.output)["state"] == "stopped"
    r = runner.invoke(cli, ["mirror", "--delete", "boa", "--channel", "lua", "--root", str(root)])
    assert r.exit_code == 0
    assert json.loads(r.output)["deleted"] == "boa"


# --- active mode ---------------------------------------------------------------------------
def _run(services: Any, name: str) -> dict[str, Any]:
    from repoproxy_mirror.active import run

    return run(services, name)


def test_active_run_copies_the_patched_upstream_through_ingest(
        testapp: Any, services: Any, admin_headers: dict[str, str], make_channel: Any,
        upstream: tuple[Upstream, Any], source: str) -> None:
    srv, _ = upstream

    def patch(data: dict[str, Any]) -> None:
        # a repodata patch (conda-forge style) and keys this server does not know
        rec = data["packages.conda"]["helper-0.5-0.conda"]
        rec["depends"] = ["libcore >=2,<3"]
        rec["x_vendor_note"] = {"kept": True}
        data["removed"] = ["helper-0.1-0.conda"]

    _edit_upstream(srv, "noarch", patch)
    make_channel("mirror")
    _mirror(testapp, admin_headers, "m", "mirror", source, subdirs="noarch, linux-64")
    out = _run(services, "m")
    assert out["state"] == "completed", out
    assert out["counts"]["added"] == 5
    assert out["counts"]["errors"] == 0
    noarch = _files(testapp, "mirror", "noarch")
    assert testapp.get("/mirror/noarch/repodata.json").json["removed"] == ["helper-0.1-0.conda"]
    assert noarch["helper-0.5-0.conda"]["depends"] == ["libcore >=2,<3"]
    assert noarch["helper-0.5-0.conda"]["x_vendor_note"] == {"kept": True}
    up = _upstream_repodata(srv, "linux-64")
    for fn, rec in _files(testapp, "mirror", "linux-64").items():
        uprec = {**up["packages"], **up["packages.conda"]}[fn]
        assert (rec["sha256"], rec["size"]) == (uprec["sha256"], uprec["size"])
        body = testapp.get(f"/mirror/linux-64/{fn}").body
        assert hashlib.sha256(body).hexdigest() == rec["sha256"]
    assert srv.hits["up/noarch/repodata_from_packages.json"] == 0
    # a second run downloads nothing again
    before = sum(v for k, v in srv.hits.items() if k.endswith((".conda", ".bz2")))
    again = _run(services, "m")
    assert again["counts"]["added"] == 0
    assert again["counts"]["present"] == 5
    assert sum(v for k, v in srv.hits.items() if k.endswith((".conda", ".bz2"))) == before
    entries = [json.loads(line) for line in testapp.get(
        "/api/v1/audit", headers=admin_headers).text.splitlines() if line.strip()]
    assert sum(1 for e in entries if e.get("action") == "package.mirror") == 5


def test_active_run_with_filters_keeps_what_the_table_says(
        testapp: Any, services: Any, admin_headers: dict[str, str], make_channel: Any,
        source: str) -> None:
    make_channel("mirror")
    _mirror(testapp, admin_headers, "m", "mirror", source, subdirs=["linux-64"],
            only_specs=["app", "libcore"], exclude_specs=["app", "libcore <2"],
            include_specs=["app 3.*"])
    out = _run(services, "m")
    assert out["state"] == "completed"
    assert sorted(_files(testapp, "mirror", "linux-64")) == [
        "app-3.0-0.conda", "libcore-2.0-0.tar.bz2"]
    assert _files(testapp, "mirror", "noarch") == {}


@pytest.mark.parametrize("closure", [False, True])
def test_only_spec_dependencies_add_what_a_solve_needs(
        testapp: Any, services: Any, admin_headers: dict[str, str], make_channel: Any,
        source: str, closure: bool) -> None:
    make_channel("deps")
    # app 3.0 needs helper (noarch) and libcore; helper needs libcore >=2 (only as .tar.bz2);
    # app 2.0 is mirrored as an only-spec match, not because a solve picked it
    _mirror(testapp, admin_headers, "d", "deps", source, subdirs=["linux-64", "noarch"],
            only_specs=["app"], only_spec_dependencies=closure,
            exclude_specs=["libcore 1.*"])
    out = _run(services, "d")
    assert out["state"] == "completed"
    assert out["counts"].get("closure_errors", 0) == 0
    linux, noarch = _files(testapp, "deps", "linux-64"), _files(testapp, "deps", "noarch")
    if closure:
        assert sorted(linux) == ["app-2.0-0.conda", "app-3.0-0.conda", "libcore-2.0-0.tar.bz2"]
        assert sorted(noarch) == ["helper-0.5-0.conda"]
    else:
        assert sorted(linux) == ["app-2.0-0.conda", "app-3.0-0.conda"]
        assert noarch == {}


def test_only_spec_dependencies_need_an_active_mirror(
        testapp: Any, admin_headers: dict[str, str], make_channel: Any, source: str) -> None:
    make_channel("deps")
    r = _mirror(testapp, admin_headers, "d", "deps", source, mode="passive", status=400,
                only_specs=["app"], only_spec_dependencies=True)
    assert "active mirrors only" in r["message"]


def test_active_run_never_stores_a_package_with_the_wrong_sha256_or_size(
        testapp: Any, services: Any, admin_headers: dict[str, str], make_channel: Any,
        upstream: tuple[Upstream, Any], source: str) -> None:
    srv, _ = upstream
    srv.faults["up/linux-64/app-3.0-0.conda"] = tampered(srv.directory)
    srv.faults["up/linux-64/app-2.0-0.conda"] = truncated(srv.directory)
    srv.faults["up/linux-64/libcore-1.0-0.conda"] = status(500)
    make_channel("mirror")
    _mirror(testapp, admin_headers, "m", "mirror", source, subdirs=["linux-64"])
    out = _run(services, "m")
    assert out["counts"]["added"] == 1
    assert out["counts"]["errors"] == 3
    assert "failed" in out["last_error"]
    assert list(_files(testapp, "mirror", "linux-64")) == ["libcore-2.0-0.tar.bz2"]
    leftovers = [p for p in (services.store.root).rglob("*") if p.name.startswith(".dl-")
                 or p.name.startswith(".in-")]
    assert leftovers == []
    assert sorted(p.name for p in services.store.subdir_dir("mirror", "linux-64").iterdir()
                  if p.name.endswith((".conda", ".bz2"))) == ["libcore-2.0-0.tar.bz2"]


def test_files_dropped_upstream_go_only_after_the_retention_period(
        testapp: Any, services: Any, admin_headers: dict[str, str], make_channel: Any,
        upstream: tuple[Upstream, Any], source: str, pkgdir: Path) -> None:
    from repoproxy_mirror.service import mirror_store

    from repoproxy.testing.fixtures import upload_raw
    from repoproxy.testing.packages import build_package

    srv, _ = upstream
    make_channel("mirror")
    # a file uploaded to the channel by hand is never the mirror's to remove
    upload_raw(testapp, "mirror", build_package(PackageSpec("mine", "1.0"), pkgdir),
               admin_headers)
    _mirror(testapp, admin_headers, "m", "mirror", source, subdirs=["noarch"])
    assert _run(services, "m")["counts"]["added"] == 1
    _edit_upstream(srv, "noarch", lambda d: d["packages.conda"].pop("helper-0.5-0.conda"))
    out = _run(services, "m")
    assert out["counts"]["pending_removal"] == 1
    assert out["counts"]["removed"] == 0
    assert sorted(_files(testapp, "mirror", "noarch")) == ["helper-0.5-0.conda",
                                                           "mine-1.0-0.conda"]
    store = mirror_store(services)
    mirror = store.get("m")
    store.set_missing(mirror.id, "noarch", ["helper-0.5-0.conda"], time.time() - 8 * 86400)
    out = _run(services, "m")
    assert out["counts"]["removed"] == 1
    assert sorted(_files(testapp, "mirror", "noarch")) == ["mine-1.0-0.conda"]


def test_stop_mid_run_then_restart_resumes(testapp: Any, services: Any,
                                           admin_headers: dict[str, str], make_channel: Any,
                                           upstream: tuple[Upstream, Any], source: str) -> None:
    from repoproxy_mirror import service

    srv, _ = upstream
    make_channel("mirror")
    _mirror(testapp, admin_headers, "m", "mirror", source, subdirs=["linux-64"])
    directory = srv.directory

    def stop_then_serve(h: Any, path: str) -> bool:
        service.stop(services, "m")  # the operator stops it while the first file downloads
        h.send(200, (directory / path).read_bytes())
        return True

    srv.faults["up/linux-64/app-2.0-0.conda"] = stop_then_serve  # the first file, by name
    out = _run(services, "m")
    assert out["state"] == "stopped"
    assert out["counts"]["added"] == 0  # the stop is seen before the first file is ingested
    assert _run(services, "m")["state"] == "stopped"  # a stopped mirror does not run
    del srv.faults["up/linux-64/app-2.0-0.conda"]
    assert service.restart(services, "m")["state"] == "pending"
    out = _run(services, "m")
    assert out["state"] == "completed"
    assert out["counts"]["added"] == 4
    assert len(_files(testapp, "mirror", "linux-64")) == 4
    assert list(services.store.root.rglob(".dl-*")) == []


def test_worker_resumes_a_crashed_run_and_runs_requested_and_scheduled_ones(
        testapp: Any, services: Any, admin_headers: dict[str, str], make_channel: Any,
        source: str) -> None:
    from datetime import UTC, datetime, timedelta

    from repoproxy_mirror.service import mirror_store
    from repoproxy_mirror.worker import MirrorWorker, cron_due

    make_channel("mirror")
    _mirror(testapp, admin_headers, "crashed", "mirror", source, subdirs=["noarch"])
    _mirror(testapp, admin_headers, "asked", "mirror", source, subdirs=["linux-64"],
            only_specs=["libcore"], run_now=True)
    _mirror(testapp, admin_headers, "idle", "mirror", source, subdirs=["linux-64"],
            cron="0 0 1 1 *")
    store = mirror_store(services)
    store.set_fields(store.get("crashed").id, state="running")  # its process died mid-run
    worker = MirrorWorker(services)
    assert sorted(worker.tick()) == ["asked", "crashed"]
    assert store.get("crashed").state == "completed"
    assert store.get("asked").counts["added"] == 2
    assert worker.tick() == []
    idle = store.get("idle")
    now = datetime.now(UTC)
    assert not cron_due(idle, now)
    idle.cron = "* * * * *"
    idle.last_run_at = (now - timedelta(minutes=2)).isoformat()
    assert cron_due(idle, now)
    idle.last_run_at = now.isoformat()
    assert not cron_due(idle, now)


def test_the_worker_sweeps_partial_downloads_a_stopped_process_left(
        testapp: Any, services: Any, proxied: str) -> None:
    """A process killed while relaying a first fetch leaves its .dl- file; the next worker
    start removes it once no fetch can still own it (older than the download deadline),
    and never a younger one, which may be another process's relay in progress."""
    from repoproxy_mirror.worker import MirrorWorker

    testapp.get("/proxy/linux-64/repodata.json")  # the cache exists
    pkgs = next((services.store.root / "mirror" / "cache").glob("*/linux-64"))
    (pkgs / "pkgs").mkdir(exist_ok=True)
    old, young = pkgs / "pkgs" / ".dl-dead", pkgs / "pkgs" / ".dl-alive"
    old.write_bytes(b"half a package")
    young.write_bytes(b"a package arriving")
    worker = MirrorWorker(services)
    past = time.time() - worker.deadline - 60
    os.utime(old, (past, past))
    worker.tick()
    assert not old.exists()
    assert young.exists()
    # once a deadline, not at every poll: a file that turns old meanwhile waits for the next
    os.utime(young, (past, past))
    worker.tick()
    assert young.exists()
    worker.swept_at = time.monotonic() - worker.deadline
    worker.tick()
    assert not young.exists()


def test_channel_page_shows_its_mirrors_and_only_managers_their_errors(
        testapp: Any, admin_headers: dict[str, str], make_channel: Any, source: str) -> None:
    from bs4 import BeautifulSoup

    browser = {"Accept": "text/html"}
    make_channel("lua")
    page = testapp.get("/ui/channels/lua/", headers=browser)
    assert BeautifulSoup(page.text, "html.parser").find(id="mirrors") is None  # none yet
    _mirror(testapp, admin_headers, "snakes", "lua", source, subdirs="noarch, linux-64",
            cron="0 0 * * *")
    _mirror(testapp, admin_headers, "proxy", "lua", source, mode="passive")

    def table(headers: dict[str, str]) -> list[dict[str, str]]:
        html = testapp.get("/ui/channels/lua/", headers={**browser, **headers}).text
        section = BeautifulSoup(html, "html.parser").find(id="mirrors")
        assert section is not None
        assert section.find("h2").get_text() == "Mirrors"
        heads = [th.get_text() for th in section.find_all("th")]
        return [dict(zip(heads, (td.get_text() for td in tr.find_all("td")), strict=True))
                for tr in section.find("tbody").find_all("tr")]

    anonymous = table({})
    assert [(r["Mirror"], r["Mode"], r["Upstream"], r["Subdirs"], r["Schedule"])
            for r in anonymous] == [
        ("proxy", "pull-through proxy", source, "all", "on request"),
        ("snakes", "copy (scheduled)", source, "noarch, linux-64", "cron 0 0 * * *")]
    assert all("Last error" not in r for r in anonymous)
    assert [r["Last error"] for r in table(admin_headers)] == ["", ""]


# --- passive mode --------------------------------------------------------------------------
@pytest.fixture
def proxied(testapp: Any, admin_headers: dict[str, str], make_channel: Any,
            source: str) -> str:
    make_channel("proxy")
    _mirror(testapp, admin_headers, "p", "proxy", source, mode="passive")
    return "proxy"


def test_a_channel_made_a_passive_mirror_is_answered_by_the_proxy_at_once(
        testapp: Any, admin_headers: dict[str, str], make_channel: Any, source: str,
        upstream: tuple[Upstream, Any]) -> None:
    """The server's lean path answers a local channel's indexes itself until a passive mirror
    claims the channel (repoproxy_channel_file_claims): from the next request on, the proxy."""
    make_channel("late")
    local = testapp.get("/late/noarch/repodata.json").json  # from the local tree
    _mirror(testapp, admin_headers, "late", "late", source, mode="passive")
    proxied = testapp.get("/late/noarch/repodata.json").json
    assert proxied["packages.conda"] == _upstream_repodata(upstream[0], "noarch")["packages.conda"]
    assert proxied != local


def test_passive_mirror_serves_its_own_indexes_and_shards(
        testapp: Any, proxied: str, upstream: tuple[Upstream, Any]) -> None:
    srv, _ = upstream
    _edit_upstream(srv, "linux-64", lambda d: d["info"].update(
        base_url="https://elsewhere.example/up/linux-64/"))
    data = testapp.get("/proxy/linux-64/repodata.json").json
    up = _upstream_repodata(srv, "linux-64")
    assert data["packages.conda"] == up["packages.conda"]
    assert data["info"] == {"subdir": "linux-64"}  # no absolute base_url reaches a client
    zst = testapp.get("/proxy/linux-64/repodata.json.zst")
    assert json.loads(zstandard.ZstdDecompressor().decompress(zst.body)) == data
    index = msgpack.unpackb(zstandard.ZstdDecompressor().decompress(
        testapp.get("/proxy/linux-64/repodata_shards.msgpack.zst").body))
    assert index["info"]["base_url"] == "./"
    assert index["info"]["shards_base_url"] == "./shards/"
    assert sorted(index["shards"]) == ["app", "libcore"]
    shard = msgpack.unpackb(zstandard.ZstdDecompressor().decompress(testapp.get(
        f"/proxy/linux-64/shards/{index['shards']['app'].hex()}.msgpack.zst").body))
    assert sorted(shard["packages.conda"]) == ["app-2.0-0.conda", "app-3.0-0.conda"]
    # own validators
    first = testapp.get("/proxy/linux-64/repodata.json")
    testapp.get("/proxy/linux-64/repodata.json",
                headers={"If-None-Match": first.headers["ETag"]}, status=304)
    # a subdir the upstream lacks is 404; noarch always exists
    testapp.get("/proxy/win-64/repodata.json", status=404)
    # fresh: one upstream fetch, of the .zst (the upstream has one)
    assert srv.hits["up/linux-64/repodata.json.zst"] == 1
    assert srv.hits["up/linux-64/repodata.json"] == 0


@pytest.mark.parametrize("zst", ["html 404", "html 200", "not a repodata", "absent"])
def test_an_upstream_without_a_good_zst_index_is_read_from_its_json(
        testapp: Any, services: Any, proxied: str, upstream: tuple[Upstream, Any],
        zst: str) -> None:
    srv, _ = upstream
    key = "up/linux-64/repodata.json.zst"
    html = {"Content-Type": "text/html"}
    if zst == "absent":
        (srv.directory / key).unlink()
    else:
        srv.faults[key] = {
            "html 404": status(404, b"<html>no such page</html>", html),
            "html 200": status(200, b"<html>sign in</html>", html),
            "not a repodata": status(200, zstandard.ZstdCompressor().compress(b"[1, 2]")),
        }[zst]
    data = testapp.get("/proxy/linux-64/repodata.json").json
    assert data["packages.conda"] == _upstream_repodata(srv, "linux-64")["packages.conda"]
    assert srv.hits["up/linux-64/repodata.json"] == 1
    # what is served is repoproxy's own .zst of what it serves; the bad body was not kept
    ours = testapp.get("/proxy/linux-64/repodata.json.zst").body
    assert json.loads(zstandard.ZstdDecompressor().decompress(ours)) == data
    cache = next((services.store.root / "mirror" / "cache").glob("*/linux-64"))
    assert b"<html>" not in b"".join(p.read_bytes() for p in cache.rglob("*") if p.is_file())


def test_proxied_shards_no_longer_named_go_after_their_grace_period(
        testapp: Any, services: Any, proxied: str, upstream: tuple[Upstream, Any]) -> None:
    from repoproxy_mirror.passive import proxy

    srv, _ = upstream
    index_url = "/proxy/linux-64/repodata_shards.msgpack.zst"

    def shard_of(name: str) -> str:
        index = msgpack.unpackb(zstandard.ZstdDecompressor().decompress(
            testapp.get(index_url).body))
        return f"/proxy/linux-64/shards/{index['shards'][name].hex()}.msgpack.zst"

    def rebuild() -> None:  # what a refresh does once the upstream index changed
        p = proxy(services)
        mirror = p.mirror_for("proxy")
        assert mirror is not None
        p.refresh(mirror, services.catalog().require_channel("proxy"), "linux-64", None)

    old_app, libcore = shard_of("app"), shard_of("libcore")
    _edit_upstream(srv, "linux-64", lambda d: d["packages.conda"].pop("app-2.0-0.conda"))
    rebuild()
    new_app = shard_of("app")
    assert new_app != old_app
    testapp.get(old_app)  # dropped just now: still served to clients of the old index
    shards = next((services.store.root / "mirror" / "cache").glob("*/linux-64/shards"))
    old_path = shards / old_app.rsplit("/", 1)[1]
    grace = float(services.settings["repoproxy_mirror.shard_grace"])
    past = time.time() - grace - 5
    os.utime(old_path, (past, past))
    # still-named shards are never collected, however old
    for path in shards.iterdir():
        if path != old_path:
            os.utime(path, (past, past))
    rebuild()
    testapp.get(old_app, status=404)
    testapp.get(new_app)
    testapp.get(libcore)
    assert not list(shards.glob(".tmp-*"))


def test_passive_packages_are_fetched_once_verified_and_kept(
        testapp: Any, services: Any, proxied: str, upstream: tuple[Upstream, Any]) -> None:
    srv, _ = upstream
    original = (srv.directory / "up/linux-64/app-3.0-0.conda").read_bytes()
    for _ in range(3):
        assert testapp.get("/proxy/linux-64/app-3.0-0.conda").body == original
    assert srv.hits["up/linux-64/app-3.0-0.conda"] == 1
    testapp.get("/proxy/linux-64/nothere-1.0-0.conda", status=404)
    assert srv.hits["up/linux-64/nothere-1.0-0.conda"] == 0  # not in the index: not asked


def _settled(services: Any) -> None:
    """Wait until relayed first fetches are committed: relay.py commits after the response,
    on a helper thread, holding the file's lock until the copy is stored and counted."""
    from repoproxy_mirror.locks import FETCH_LOCK, range_lock

    for lock in (services.store.root / "mirror" / "cache").rglob(f"pkgs/{FETCH_LOCK}"):
        release = range_lock(lock, 0, 0, blocking=True)  # every name's byte
        assert release is not None
        release()


def _big_proxy(testapp: Any, admin_headers: dict[str, str], make_channel: Any, tmp_path: Path,
               size: int, seed: int) -> tuple[Upstream, str, bytes]:
    """An upstream serving one package of ``size`` random (incompressible) bytes and the
    passive mirror ``bigproxy`` of it: (the upstream, its file's key, the file's bytes)."""
    core = build_upstream_root(tmp_path / "big", "up", [(PackageSpec(
        "big", files={"data.bin": random.Random(seed).randbytes(size)}), "conda")],
        tmp_path / "bigpkgs")
    core.close()
    srv = Upstream(tmp_path / "big" / "channels")
    key = "up/noarch/big-1.0-0.conda"
    try:
        make_channel("bigproxy")
        _mirror(testapp, admin_headers, "bp", "bigproxy", f"{srv.url}/up", mode="passive")
    except BaseException:
        srv.close()
        raise
    return srv, key, (srv.directory / key).read_bytes()


def _paused(directory: Path, first: int, go: threading.Event, tamper: bool = False) -> Any:
    """Send ``first`` bytes, wait for ``go``, then the rest (one byte flipped if ``tamper``)."""
    def fault(h: Any, path: str) -> bool:
        data = bytearray((directory / path).read_bytes())
        if tamper:
            data[-1] ^= 0xFF
        h.send_response(200)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data[:first])
        h.wfile.flush()
        go.wait(30)
        h.wfile.write(data[first:])
        return True
    return fault


@pytest.mark.parametrize("case", ["whole", "tampered", "client gone"])
def test_a_first_fetch_is_relayed_while_it_arrives_and_stored_only_when_verified(
        testapp: Any, admin_headers: dict[str, str], make_channel: Any, services: Any,
        tmp_path: Path, case: str) -> None:
    from repoproxy_stats.counter import buffer_for
    from webob import Request

    # a package of ~1 MB, behind an upstream that stops half-way until told to go on
    srv, key, original = _big_proxy(testapp, admin_headers, make_channel, tmp_path,
                                    1_000_000, seed=1)
    try:
        go = threading.Event()
        srv.faults[key] = _paused(srv.directory, 400_000, go, case == "tampered")
        response = Request.blank("/bigproxy/noarch/big-1.0-0.conda").get_response(testapp.app)
        assert response.status_int == 200
        assert response.content_length == len(original)
        chunks = iter(response.app_iter)
        got = next(chunks)  # while the upstream is still holding back its second half
        assert 0 < len(got) < 400_000
        assert original.startswith(got)
        assert not go.is_set()
        if case == "client gone":
            response.app_iter.close()  # what the server does when its client hangs up
            go.set()
        else:
            go.set()
            got += b"".join(chunks)
            response.app_iter.close()
        _settled(services)
        cache = services.store.root / "mirror" / "cache"
        stored = list(cache.rglob("big-1.0-0.conda"))
        assert list(cache.rglob(".dl-*")) == []
        buffer_for(services).flush()
        counted = testapp.get("/api/channels/bigproxy/downloads").json["downloads"]
        if case == "whole":
            assert got == original
            assert [p.read_bytes() for p in stored] == [original]
            assert counted == 1
        else:  # cut before its end, or abandoned: nothing kept, no download counted
            assert len(got) < len(original)
            assert stored == []
            assert counted == 0
        # the lock is free again: the next request is a hit, or a new (whole) fetch
        del srv.faults[key]
        assert testapp.get("/bigproxy/noarch/big-1.0-0.conda").body == original
        assert srv.hits[key] == (1 if case == "whole" else 2)
    finally:
        srv.close()


def test_a_relayed_first_fetch_holds_back_only_its_last_byte(
        testapp: Any, admin_headers: dict[str, str], make_channel: Any, services: Any,
        tmp_path: Path) -> None:
    """With the size known, the client gets every byte as it arrives but the file's last,
    which waits for the verification (it held back a whole chunk: up to 256 KiB, and the
    first bytes waited for a second chunk)."""
    from webob import Request

    srv, key, original = _big_proxy(testapp, admin_headers, make_channel, tmp_path, 300_000,
                                    seed=2)
    try:
        go = threading.Event()
        srv.faults[key] = _paused(srv.directory, len(original) - 1, go)
        late = threading.Timer(20, go.set)  # bounds the test if the bytes are held back
        late.start()
        response = Request.blank("/bigproxy/noarch/big-1.0-0.conda").get_response(testapp.app)
        chunks = iter(response.app_iter)
        got = b""
        while len(got) < len(original) - 1:
            got += next(chunks)
        assert not go.is_set()  # all but the last byte, while the upstream holds it back
        assert got == original[:-1]
        go.set()
        got += b"".join(chunks)
        response.app_iter.close()
        late.cancel()
        assert got == original
        _settled(services)
        assert [p.read_bytes() for p in (services.store.root / "mirror" / "cache").rglob(
            "big-1.0-0.conda")] == [original]
    finally:
        srv.close()


def test_the_threads_of_a_passive_mirror_share_its_upstream_connections(
        testapp: Any, services: Any, proxied: str, upstream: tuple[Upstream, Any]) -> None:
    """The threads share one client of the upstream and its pool of connections: a first
    fetch on a thread that never talked to the upstream reuses another thread's idle
    connection instead of opening one."""
    from repoproxy_mirror.passive import proxy

    p = proxy(services)
    mirror = p.mirror_for(proxied)
    assert mirror is not None
    made: list[Any] = []
    answers: list[int] = []

    def fetch() -> None:
        up = p._upstream(mirror)
        made.append(up)
        r = up.get("noarch/repodata.json")
        r.read()
        r.close()
        answers.append(r.status)

    for _ in range(2):  # one after the other: the first leaves its connection idle
        worker = threading.Thread(target=fetch)
        worker.start()
        worker.join(10)
    first, second = made
    assert first is second
    assert answers == [200, 200]
    pools = first.pools.manager(first.public("noarch/repodata.json")).pools
    keys = pools.keys()  # urllib3's container refuses to be iterated itself
    assert sum(pools[key].num_connections for key in keys) == 1


def test_relays_reuse_their_helper_threads(testapp: Any, services: Any, proxied: str,
                                           upstream: tuple[Upstream, Any]) -> None:
    from repoproxy_mirror.relay import threads

    srv, _ = upstream
    names = ["app-3.0-0.conda", "app-2.0-0.conda", "libcore-1.0-0.conda",
             "libcore-2.0-0.tar.bz2"]
    testapp.get("/proxy/linux-64/repodata.json")
    before = threads.made
    for name in names:  # one after the other: each relay's two helpers are idle again
        assert testapp.get(f"/proxy/linux-64/{name}").body == (
            srv.directory / "up/linux-64" / name).read_bytes()
        _settled(services)
        # the writer and the commit's helper are counted idle just after their work ends
        for _ in range(500):
            if threads._idle >= 2:
                break
            time.sleep(0.01)
    # two for the first relay when none is idle (the writer, the commit), then the idle
    # ones again (without reuse: two per relay)
    assert threads.made - before <= 2


@pytest.mark.parametrize("fault", ["truncated", "tampered", "500", "401", "403", "slow",
                                   "redirect loop"])
def test_a_corrupt_or_failing_upstream_package_is_never_stored_nor_a_401(
        testapp: Any, services: Any, settings: dict[str, Any], proxied: str,
        upstream: tuple[Upstream, Any], fault: str) -> None:
    srv, _ = upstream
    key = "up/linux-64/app-3.0-0.conda"
    srv.faults[key] = {"truncated": truncated(srv.directory),
                       "tampered": tampered(srv.directory),
                       "500": status(500), "401": status(401, b"who are you"),
                       "403": status(403),
                       "slow": slow(srv.directory, 3.0),
                       "redirect loop": redirect(f"{srv.url}/{key}")}[fault]
    if fault in ("truncated", "tampered", "slow"):
        # shown only by the body: the first fetch is relayed, so the client got a 200 and a
        # Content-Length, and the response is cut before its end (the held-back last byte
        # is never sent), which the client's own length and checksum checks refuse
        from webob import Request

        r = Request.blank(f"/proxy/linux-64/{key.split('/')[-1]}").get_response(testapp.app)
        assert r.status_int == 200
        try:  # read as a server does (webob's .body refuses a body short of its length)
            got = b"".join(r.app_iter)
        finally:
            r.app_iter.close()
        assert len(got) < r.content_length
    else:
        r = testapp.get(f"/proxy/linux-64/{key.split('/')[-1]}", status=502)
        assert r.json["error"] == "upstream-unavailable"
        if fault == "redirect loop":
            assert "redirects too often" in r.json["message"]
    cache = services.store.root / "mirror" / "cache"
    stored = [p.name for p in cache.rglob("*.conda")] + [
        p.name for p in cache.rglob(".dl-*")]
    assert stored == []
    del srv.faults[key]
    assert testapp.get(f"/proxy/linux-64/{key.split('/')[-1]}").body == (
        srv.directory / key).read_bytes()


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    # short enough for the fault tests (a slow body) and the freshness tests
    return {**settings, "repoproxy_mirror.timeout": "1", "repoproxy_mirror.index_freshness": "1"}


@pytest.mark.parametrize(("fault", "code"), [
    (status(500), 502),
    (status(404, b"<html>not here</html>", {"Content-Type": "text/html"}), 404),
    (status(200, b"<html>a login page</html>", {"Content-Type": "text/html"}), 502),
    (status(200, b"[1, 2]"), 502),
    (status(304), 502),  # a 304 to a request without validators
    (status(401), 502),
])
def test_upstream_index_faults_without_a_cache(testapp: Any, services: Any, proxied: str,
                                               upstream: tuple[Upstream, Any], fault: Any,
                                               code: int) -> None:
    srv, _ = upstream
    srv.faults["up/linux-64/repodata.json"] = fault
    srv.faults["up/linux-64/repodata.json.zst"] = fault
    testapp.get("/proxy/linux-64/repodata.json", status=code)
    assert not (services.store.root / "mirror/cache").exists() or not list(
        (services.store.root / "mirror/cache").rglob("repodata.json"))


def test_noarch_always_exists_even_when_the_upstream_has_none(
        testapp: Any, proxied: str, upstream: tuple[Upstream, Any]) -> None:
    srv, _ = upstream
    srv.faults["up/noarch/repodata.json"] = status(404)
    srv.faults["up/noarch/repodata.json.zst"] = status(404)
    data = testapp.get("/proxy/noarch/repodata.json").json
    assert data["packages"] == {}
    assert data["packages.conda"] == {}
    testapp.get("/proxy/noarch/repodata_shards.msgpack.zst")


def test_a_proxy_without_subdirs_asks_its_upstream_only_for_platforms_conda_knows(
        testapp: Any, services: Any, proxied: str, upstream: tuple[Upstream, Any]) -> None:
    """Any '<os>-<arch>' is a valid subdir name: without the bound, each made-up one cost an
    upstream request and left a cache entry behind, without end."""
    srv, _ = upstream
    for made_up in ("foo-bar", "linux-999", "zz-top"):
        for name in ("repodata.json", "repodata_shards.msgpack.zst", "x-1-0.conda"):
            testapp.get(f"/proxy/{made_up}/{name}", status=404)
    assert not any(made_up in key for key in srv.hits
                   for made_up in ("foo-bar", "linux-999", "zz-top")), srv.hits
    cache = services.store.root / "mirror" / "cache"
    assert not [p for p in cache.rglob("*") if p.name in ("foo-bar", "linux-999", "zz-top")]
    # a platform conda knows that the upstream lacks is asked for (and is a 404 too) ...
    testapp.get("/proxy/win-arm64/repodata.json", status=404)
    assert any(key.startswith("up/win-arm64/") for key in srv.hits), srv.hits
    # ... and one the upstream has is served
    assert testapp.get("/proxy/linux-64/repodata.json").json["packages.conda"]


def test_a_proxy_with_subdirs_serves_those_even_when_conda_does_not_know_them(
        testapp: Any, admin_headers: dict[str, str], make_channel: Any, source: str,
        upstream: tuple[Upstream, Any]) -> None:
    srv, _ = upstream
    make_channel("custom")
    _mirror(testapp, admin_headers, "c", "custom", source, mode="passive",
            subdirs="linux-64, linux-special")
    testapp.get("/custom/linux-special/repodata.json", status=404)
    assert any(key.startswith("up/linux-special/") for key in srv.hits), srv.hits
    testapp.get("/custom/osx-64/repodata.json", status=404)
    assert not any(key.startswith("up/osx-64/") for key in srv.hits), srv.hits
    assert testapp.get("/custom/linux-64/repodata.json").json["packages.conda"]


def test_stale_index_is_served_marked_while_the_upstream_is_down_then_refreshed(
        testapp: Any, services: Any, proxied: str, upstream: tuple[Upstream, Any]) -> None:
    srv, _ = upstream
    assert "helper-0.5-0.conda" in _files(testapp, "proxy", "noarch")
    testapp.get("/proxy/noarch/helper-0.5-0.conda")
    srv.faults["*"] = status(503)
    time.sleep(1.2)  # past the freshness time (1 s in these tests)
    r = testapp.get("/proxy/noarch/repodata.json")
    assert "helper-0.5-0.conda" in r.json["packages.conda"]
    assert int(r.headers["X-Repoproxy-Stale"]) >= 1
    testapp.get("/proxy/noarch/helper-0.5-0.conda")  # stored packages need no upstream
    del srv.faults["*"]
    # a new upload upstream (its record is all the index needs)
    _edit_upstream(srv, "noarch", lambda d: d["packages.conda"].update(
        {"newcomer-1.0-0.conda": dict(d["packages.conda"]["helper-0.5-0.conda"],
                                      name="newcomer", version="1.0")}))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = testapp.get("/proxy/noarch/repodata.json")
        if "newcomer-1.0-0.conda" in r.json["packages.conda"]:
            break
        time.sleep(0.2)
    assert "newcomer-1.0-0.conda" in r.json["packages.conda"]
    assert "X-Repoproxy-Stale" not in r.headers


def test_channel_policy_applies_to_proxied_content(testapp: Any, admin_headers: dict[str, str],
                                                   proxied: str) -> None:
    testapp.post_json("/api/v1/policies", {"name": "no-helper", "channel_name": "proxy",
                                           "exclude_package_name": "helper"},
                      headers=admin_headers, status=201)
    assert "helper-0.5-0.conda" not in _files(testapp, "proxy", "noarch")
    testapp.get("/proxy/noarch/helper-0.5-0.conda", status=404)


def test_a_passive_mirrors_own_policy_replaces_the_channels(
        testapp: Any, admin_headers: dict[str, str], make_channel: Any, source: str) -> None:
    make_channel("own")
    # the channel's policy hides helper; the mirror's own (not assigned to any channel)
    # hides app: with --use-channel-policy False only the mirror's applies
    testapp.post_json("/api/v1/policies", {"name": "no-helper", "channel_name": "own",
                                           "exclude_package_name": "helper"},
                      headers=admin_headers, status=201)
    pid = testapp.post_json("/api/v1/policies", {"name": "no-app",
                                                 "exclude_package_name": "app"},
                            headers=admin_headers, status=201).json["id"]
    _mirror(testapp, admin_headers, "own", "own", source, mode="passive",
            use_channel_policy=False, policy_id=str(pid))
    assert sorted(_files(testapp, "own", "linux-64")) == [
        "libcore-1.0-0.conda", "libcore-2.0-0.tar.bz2"]
    assert "helper-0.5-0.conda" in _files(testapp, "own", "noarch")
    testapp.get("/own/linux-64/app-3.0-0.conda", status=404)
    # back to the channel's policy: app returns, helper goes
    testapp.patch_json("/api/v1/mirrors/own", {"channel": "own", "use_channel_policy": True},
                       headers=admin_headers)
    assert "app-3.0-0.conda" in _files(testapp, "own", "linux-64")
    assert "helper-0.5-0.conda" not in _files(testapp, "own", "noarch")


def test_a_mirrors_own_policy_must_exist(testapp: Any, admin_headers: dict[str, str],
                                         make_channel: Any, source: str) -> None:
    make_channel("own")
    r = _mirror(testapp, admin_headers, "own", "own", source, status=404,
                use_channel_policy=False, policy_id="nope")
    assert "nope" in r["message"]
    assert testapp.get("/api/v1/mirrors", headers=admin_headers).json["mirrors"] == []


class CveFeed:
    """A CVE data source (the hook the CVE plugin implements): libcore 1.0 has a curated CVE
    of score 9.8, app 3.0 an uncurated one of score 2."""

    from repoproxy import hookimpl

    @hookimpl
    def repoproxy_cve_facts(self, services: Any, channel: Any, records: Any) -> Any:
        facts = {("libcore", "1.0"): {"id": "CVE-2099-0001", "score": 9.8, "status": "active"},
                 ("app", "3.0"): {"id": "CVE-2099-0002", "score": 2.0, "status": None}}
        return {(r.subdir, r.filename): [facts[(r.name, r.version)]]
                for r in records if (r.name, r.version) in facts}


@pytest.mark.parametrize(("options", "left_out"), [
    ({"cve_score": 7}, ["libcore-1.0-0.conda"]),
    ({"exclude_uncurated_cve_packages": True}, ["app-3.0-0.conda"]),
    ({"cve_score": 7, "exclude_uncurated_cve_packages": True},
     ["app-3.0-0.conda", "libcore-1.0-0.conda"]),
])
def test_an_active_mirrors_cve_options_filter_what_it_copies(
        testapp: Any, services: Any, admin_headers: dict[str, str], make_channel: Any,
        source: str, options: dict[str, Any], left_out: list[str]) -> None:
    services.pm.register(CveFeed(), name="repoproxy_test_cve_feed")
    try:
        make_channel("cvecopy")
        _mirror(testapp, admin_headers, "c", "cvecopy", source, subdirs=["linux-64"],
                **options)
        assert _run(services, "c")["state"] == "completed"
        everything = {"app-2.0-0.conda", "app-3.0-0.conda", "libcore-1.0-0.conda",
                      "libcore-2.0-0.tar.bz2"}
        assert sorted(_files(testapp, "cvecopy", "linux-64")) == sorted(
            everything - set(left_out))
    finally:
        services.pm.unregister(name="repoproxy_test_cve_feed")


def test_upstream_credentials_are_sent_and_never_served_or_stored(
        tmp_path: Path, upstream: tuple[Upstream, Any]) -> None:
    from repoproxy_mirror import service
    from webtest import TestApp

    from repoproxy.domain.channels import create_channel
    from repoproxy.domain.core import load_core
    from repoproxy.web.app import make_app

    srv, _ = upstream
    root = tmp_path / "creds"
    for kind, secret in (("bearer", "s3cr3t-bearer"), ("basic", "alice:s3cr3t-pw"),
                         ("token", "s3cr3t-tok"), ("apikey", "s3cr3t-key")):
        srv.headers_seen.clear()
        srv.paths_seen.clear()
        core = load_core({"repoproxy.root": str(root / kind), "repoproxy.log_requests": "false",
                          "repoproxy_mirror.credentials": f"{srv.url}/up={kind}:{secret}"}, {})
        create_channel(core, "c")
        service.create(core, "m", "c", {"source": f"{srv.url}/up", "mode": "passive"})
        app = TestApp(make_app(core))
        body = app.get("/c/linux-64/repodata.json").body + app.get(
            "/c/linux-64/repodata_shards.msgpack.zst").body
        app.get("/c/linux-64/app-3.0-0.conda")
        _settled(core)
        assert b"s3cr3t" not in body
        seen = json.dumps(srv.headers_seen) + json.dumps(srv.paths_seen)
        needle = {"bearer": "Bearer s3cr3t-bearer", "basic": "Basic YWxpY2U6czNjcjN0LXB3",
                  "token": "/t/s3cr3t-tok/up/", "apikey": "s3cr3t-key"}[kind]
        assert needle in seen
        on_disk = b"".join(p.read_bytes() for p in (root / kind).rglob("*")
                           if p.is_file() and p.suffix in (".json", ".db"))
        assert b"s3cr3t" not in on_disk
        core.close()


def test_the_upstream_connection_is_kept_and_one_closed_under_a_request_is_retried(
        testapp: Any, proxied: str, upstream: tuple[Upstream, Any]) -> None:
    srv, _ = upstream
    testapp.get("/proxy/linux-64/repodata.json")  # one request, one connection
    # from now on the upstream closes a kept-alive connection when it is reused: the next
    # fetches find theirs closed under the request, and each is sent again on a new one
    srv.faults["*"] = drops_reused_connections()
    key = "up/linux-64/app-3.0-0.conda"
    assert testapp.get("/proxy/linux-64/app-3.0-0.conda").body == (
        srv.directory / key).read_bytes()
    assert srv.hits[key] == 2  # the dropped attempt, then the answered one
    other = "up/linux-64/libcore-2.0-0.tar.bz2"
    assert testapp.get("/proxy/linux-64/libcore-2.0-0.tar.bz2").body == (
        srv.directory / other).read_bytes()
    assert srv.hits[other] == 2


@pytest.mark.parametrize("kind", ["bearer", "basic", "token", "apikey"])
def test_upstream_credentials_stay_with_their_upstream(
        tmp_path: Path, upstream: tuple[Upstream, Any], kind: str) -> None:
    """Two mirrors served by one thread (one kept connection each), one with credentials;
    and a package its upstream redirects to another origin (a CDN): the credentials reach
    their own upstream only."""
    from repoproxy_mirror import service
    from webtest import TestApp

    from repoproxy.domain.channels import create_channel
    from repoproxy.domain.core import load_core
    from repoproxy.web.app import make_app

    srv, _ = upstream
    other = Upstream(srv.directory)  # same files, another origin (port)
    try:
        secret = {"basic": "alice:s3cr3t-pw"}.get(kind, "s3cr3t")
        core = load_core({"repoproxy.root": str(tmp_path / "root"),
                          "repoproxy.log_requests": "false",
                          "repoproxy_mirror.credentials": f"{srv.url}/up={kind}:{secret}"}, {})
        for name, source in (("a", srv.url), ("b", other.url)):
            create_channel(core, name)
            service.create(core, name, name, {"source": f"{source}/up", "mode": "passive"})
        app = TestApp(make_app(core))
        key = "up/linux-64/app-3.0-0.conda"
        srv.faults[key] = redirect(f"{other.url}/{key}")
        for channel in ("a", "b", "a", "b"):
            app.get(f"/{channel}/linux-64/repodata.json")
        assert app.get("/a/linux-64/app-3.0-0.conda").body == (srv.directory / key).read_bytes()
        _settled(core)
        assert other.hits[key] == 1  # the redirected download
        mine = json.dumps(srv.headers_seen) + json.dumps(srv.paths_seen)
        assert ("s3cr3t" in mine) or ("czNjcjN0" in mine)  # sent to its own upstream
        theirs = json.dumps(other.headers_seen) + json.dumps(other.paths_seen)
        assert "s3cr3t" not in theirs
        assert "czNjcjN0" not in theirs  # nor base64-encoded (basic)
        assert not any(h for seen in other.headers_seen for h in seen
                       if h.lower() in ("authorization", "x-api-key"))
        core.close()
    finally:
        other.close()


@pytest.mark.parametrize(("target", "kept"), [
    ("http://up.example/b", True),
    ("http://UP.example:80/b", True),
    ("https://up.example/b", True),  # upgraded to https on the default ports
    ("https://up.example:8443/b", False),
    ("http://up.example:8080/b", False),
    ("http://cdn.example/b", False),
    ("http://up.example.evil/b", False),
])
def test_credentials_follow_a_redirect_within_the_upstreams_origin_only(
        target: str, kept: bool) -> None:
    from repoproxy_mirror.upstream import _same_origin

    assert _same_origin("http://up.example/a", target) is kept
    assert _same_origin("https://up.example/a", "http://up.example/a") is False  # downgrade


def test_an_upstreams_pools_keep_a_bounded_number_of_origins() -> None:
    """Redirects may name any number of hosts: the pools kept per origin are bounded, the
    upstream's own (the first) always among them."""
    from repoproxy_mirror.upstream import Pools

    pools = Pools(2)
    first = pools.manager("http://up.example/a")
    for i in range(3 * Pools.MAX_ORIGINS):
        pools.manager(f"http://cdn{i}.example/a")
    assert len(pools._managers) == Pools.MAX_ORIGINS
    assert pools.manager("http://up.example/b") is first
    pools.close()


def _upstream_statuses(services: Any) -> list[tuple[str, str, str]]:
    """(mirror, path, status) of every ``repoproxy_mirror_upstream`` call from now on, by a
    plugin registered as ``observer``."""
    from repoproxy import hookimpl

    seen: list[tuple[str, str, str]] = []

    class Observer:
        @hookimpl
        def repoproxy_mirror_upstream(self, mirror: str, channel: str, path: str,
                                      status: str) -> None:
            seen.append((mirror, path, status))

    services.pm.register(Observer(), name="observer")
    return seen


# --- hooks ---------------------------------------------------------------------------------
def test_hook_mirror_upstream(testapp: Any, services: Any, proxied: str) -> None:
    seen = _upstream_statuses(services)
    testapp.get("/proxy/noarch/repodata.json")
    testapp.get("/proxy/noarch/repodata.json")
    testapp.get("/proxy/noarch/helper-0.5-0.conda")
    _settled(services)
    assert seen == [("p", "noarch/repodata.json", "miss"), ("p", "noarch/repodata.json", "hit"),
                    ("p", "noarch/repodata.json", "hit"), ("p", "noarch/helper-0.5-0.conda",
                                                           "miss")]


def test_hook_channel_file(testapp: Any, services: Any, make_channel: Any) -> None:
    from pyramid.response import Response

    from repoproxy import hookimpl

    make_channel("main")
    make_channel("other")

    class Answer:
        @hookimpl
        def repoproxy_channel_file(self, request: Any, channel: Any, subdir: str,
                                   filename: str) -> Any:
            if channel.name != "main":
                return None
            return Response(f"{subdir}|{filename}", content_type="text/plain")

    services.pm.register(Answer(), name="answer")
    assert testapp.get("/main/noarch/repodata.json").text == "noarch|repodata.json"
    assert testapp.get("/main/linux-64/shards/" + "a" * 64 + ".msgpack.zst").text == (
        "linux-64|shards/" + "a" * 64 + ".msgpack.zst")
    assert "packages" in testapp.get("/other/noarch/repodata.json").json


# --- governance ----------------------------------------------------------------------------
def test_mirrored_packages_get_sboms_and_proxied_downloads_are_counted(
        testapp: Any, services: Any, admin_headers: dict[str, str], make_channel: Any,
        proxied: str, source: str) -> None:
    from repoproxy_stats.counter import buffer_for

    make_channel("mirror")
    _mirror(testapp, admin_headers, "m", "mirror", source, subdirs=["linux-64"],
            only_specs=["app 3.*"])
    assert _run(services, "m")["counts"]["added"] == 1
    sbom = testapp.get("/api/channels/mirror/sbom/linux-64/app-3.0-0.conda").json
    assert sbom["metadata"]["component"]["name"] == "app"
    for _ in range(2):
        testapp.get("/proxy/linux-64/app-3.0-0.conda")
    testapp.head("/proxy/linux-64/app-3.0-0.conda")  # a HEAD is no download
    buffer_for(services).flush()
    counts = testapp.get("/api/channels/proxy/downloads").json
    assert counts["downloads"] == 2


def test_hook_removed_files(testapp: Any, services: Any, make_channel: Any) -> None:
    from repoproxy import hookimpl

    make_channel("main")

    class Withdrawn:
        @hookimpl
        def repoproxy_removed_files(self, channel: Any, subdir: str) -> list[str]:
            return ["old-1.0-0.conda"] if subdir == "noarch" else []

    services.pm.register(Withdrawn(), name="withdrawn")
    services.indexer.build("main", "noarch", force=True)
    assert testapp.get("/main/noarch/repodata.json").json["removed"] == ["old-1.0-0.conda"]


# --- the lean path (web/lean.py) and a passive mirror's cached files -------------------------
def test_lean_path_answers_a_proxys_cached_indexes_and_shards_as_pyramid_does(
        testapp: Any, services: Any, admin_headers: dict[str, str], make_channel: Any,
        source: str) -> None:
    """A passive mirror's fresh cached indexes and its shards are answered in front of Pyramid
    (repoproxy_channel_file_lean) with the same status, headers in order and body as the
    proxy's own answer, and the same status-hook calls; a stale index, an index never
    fetched, a subdir the upstream lacks, other files and refusals stay Pyramid's (the stale
    marker, the background refresh, the 404s, download counting)."""
    from repoproxy_mirror.passive import STALE_HEADER, proxy
    from webtest import TestApp

    from repoproxy.testing.fixtures import make_token
    from repoproxy.testing.visibility import shard_digests
    from repoproxy.web import fastpath
    from repoproxy.web.app import make_app
    from repoproxy.web.lean import LeanApp

    make_channel("proxy")
    make_channel("privproxy", privacy="private")
    _mirror(testapp, admin_headers, "p", "proxy", source, mode="passive")
    _mirror(testapp, admin_headers, "pp", "privproxy", source, mode="passive")
    p = proxy(services)
    p._fresh = 3600.0  # this module's settings make an index stale after a second
    reader = make_token(services, "reader", channels=["privproxy"])
    auth = {"Authorization": f"Bearer {reader}"}
    seen = _upstream_statuses(services)
    lean_app = testapp.app
    assert isinstance(lean_app, LeanApp)
    plain = TestApp(fastpath.uninstall(make_app(services).router))
    reached: list[str] = []
    router = lean_app.router

    def pyramid(environ: dict[str, Any], start_response: Any) -> Any:
        reached.append(environ["PATH_INFO"])
        return router(environ, start_response)

    lean_app.router = pyramid
    for channel in ("proxy", "privproxy"):  # fetched and cached through Pyramid
        for subdir in ("noarch", "linux-64"):
            testapp.get(f"/{channel}/{subdir}/repodata.json", headers=auth)
    index = testapp.get("/proxy/linux-64/repodata_shards.msgpack.zst").body
    shard = next(iter(shard_digests(index).values()))
    files = ["noarch/repodata.json", "noarch/repodata.json.zst",
             "noarch/repodata_shards.msgpack.zst", "linux-64/repodata.json",
             "linux-64/repodata_shards.msgpack.zst", f"linux-64/shards/{shard}.msgpack.zst",
             f"linux-64/shards/{'0' * 64}.msgpack.zst", "linux-64/run_exports.json",
             "osx-64/repodata.json", "win-64/repodata_shards.msgpack.zst",
             "nosuch-arch/repodata.json", "linux-64/app-3.0-0.conda"]
    etags = {f: testapp.get(f"/proxy/{f}").headers["ETag"] for f in files[:6]}
    requests_ = []
    for channel in ("proxy", "privproxy"):
        for f in files:
            for headers in ({}, auth, {**auth, "If-None-Match": etags.get(f, '"x"')},
                            {**auth, "Accept-Encoding": "gzip"}, {**auth, "Range": "bytes=0-3"},
                            {"Authorization": "Bearer nonsense"}):
                requests_ += [("GET", f"/{channel}/{f}", headers),
                              ("HEAD", f"/{channel}/{f}", headers)]
    for method, url, headers in requests_:  # every answer cached or remembered (a 404)
        plain.request(url, method=method, headers=headers, expect_errors=True)
    _settled(services)
    reached.clear()
    for method, url, headers in requests_:
        seen.clear()
        r = testapp.request(url, method=method, headers=headers, expect_errors=True)
        got = (r.status, r.headerlist, r.body)
        told = list(seen)
        seen.clear()
        r = plain.request(url, method=method, headers=headers, expect_errors=True)
        assert got == (r.status, r.headerlist, r.body), (method, url, headers)
        assert told == seen, (method, url, headers)
        _settled(services)
    # the fresh cached files a caller may read were answered in front of Pyramid
    assert len(requests_) - len(reached) > 50, (len(requests_), len(reached))
    reached.clear()
    testapp.get("/proxy/noarch/repodata.json")
    testapp.get("/privproxy/linux-64/repodata_shards.msgpack.zst", headers=auth)
    testapp.head(f"/privproxy/linux-64/shards/{shard}.msgpack.zst", headers=auth)
    testapp.get("/proxy/noarch/repodata.json.zst",
                headers={"If-None-Match": etags["noarch/repodata.json.zst"]}, status=304)
    assert reached == []
    testapp.get("/proxy/linux-64/app-3.0-0.conda")  # packages: Pyramid
    assert reached == ["/proxy/linux-64/app-3.0-0.conda"]
    # stale: Pyramid answers, with the stale marker, and refreshes in the background
    p._fresh = 0.0
    reached.clear()
    r = testapp.get("/proxy/noarch/repodata_shards.msgpack.zst")
    assert STALE_HEADER in r.headers
    assert reached == ["/proxy/noarch/repodata_shards.msgpack.zst"]
    services.pm.unregister(name="observer")


def test_first_fetches_of_a_subdir_share_one_lock_file_and_other_names_never_wait(
        testapp: Any, services: Any, proxied: str, upstream: tuple[Upstream, Any]) -> None:
    """A first fetch locks its name's byte of the subdir's one lock file (no file made per
    package): while one is relaying, another name's first fetch goes on; the same name's
    lock is held, for the other threads as for the other processes (test_mirror_locks.py)."""
    from repoproxy_mirror.locks import package_lock
    from webob import Request

    srv, _ = upstream
    held, other = "app-3.0-0.conda", "app-2.0-0.conda"
    go = threading.Event()
    srv.faults[f"up/linux-64/{held}"] = _paused(srv.directory, 100, go)
    response = Request.blank(f"/proxy/linux-64/{held}").get_response(testapp.app)
    chunks = iter(response.app_iter)
    got = next(chunks)  # relaying: the upstream holds back the rest, the lock is held
    pkgs = next((services.store.root / "mirror" / "cache").glob("*/linux-64/pkgs"))
    try:
        assert testapp.get(f"/proxy/linux-64/{other}").body == (
            srv.directory / "up/linux-64" / other).read_bytes()
        assert not go.is_set()  # the other name was fetched while this one was held
        assert package_lock(pkgs, held, blocking=False) is None
    finally:
        go.set()
        got += b"".join(chunks)
        response.app_iter.close()
    assert got == (srv.directory / "up/linux-64" / held).read_bytes()
    _settled(services)
    assert sorted(p.name for p in pkgs.iterdir()) == [".fetch.lock", other, held]
    release = package_lock(pkgs, held, blocking=False)  # free again once committed
    assert release is not None
    release()


class _ForwardProxy:
    """An HTTP forward proxy on the loopback: answers ``GET http://<host>/<path>`` from
    ``directory`` (as the upstream would) and keeps the absolute URLs it was asked for."""

    def __init__(self, directory: Path) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                proxy.seen.append(self.path)
                file = directory / urlsplit(self.path).path.lstrip("/")
                body = file.read_bytes() if file.is_file() else b"not found"
                self.send_response(200 if file.is_file() else 404)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_environments_proxy_settings_are_honoured_and_read_once_per_upstream(
        testapp: Any, admin_headers: dict[str, str], make_channel: Any,
        upstream: tuple[Upstream, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP(S)_PROXY and NO_PROXY apply to the upstream's requests as requests reads them,
    read once per upstream origin (per server thread), not again for every request."""
    srv, _ = upstream
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "ALL_PROXY",
                 "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    forward = _ForwardProxy(srv.directory)
    dead = _ForwardProxy(srv.directory)
    dead.close()  # a proxy address nothing answers at
    try:
        # an upstream name that does not resolve: only the proxy can answer for it
        monkeypatch.setenv("HTTP_PROXY", forward.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        make_channel("viaproxy")
        _mirror(testapp, admin_headers, "vp", "viaproxy", "http://upstream.invalid/up",
                mode="passive")
        key = "up/linux-64/app-3.0-0.conda"
        assert testapp.get("/viaproxy/linux-64/app-3.0-0.conda").body == (
            srv.directory / key).read_bytes()
        assert f"http://upstream.invalid/{key}" in forward.seen
        # NO_PROXY: the loopback upstream is asked directly
        make_channel("direct")
        _mirror(testapp, admin_headers, "dp", "direct", f"{srv.url}/up", mode="passive")
        assert testapp.get("/direct/linux-64/app-2.0-0.conda").status_int == 200
        assert srv.hits["up/linux-64/app-2.0-0.conda"] == 1
        assert not [u for u in forward.seen if srv.url in u]
        # read once: a changed environment is not read again for the same upstream
        monkeypatch.setenv("HTTP_PROXY", dead.url)
        seen = len(forward.seen)
        assert testapp.get("/viaproxy/linux-64/libcore-2.0-0.tar.bz2").status_int == 200
        assert forward.seen[seen:] == ["http://upstream.invalid/up/linux-64/libcore-2.0-0.tar.bz2"]
    finally:
        forward.close()

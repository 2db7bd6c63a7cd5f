"""Subchannels (``C/SUB``): served as conda channels of their own, access following the
parent; and copy, move, remove between channels and subchannels through the one pipeline.

Real app, real SQLite, real files; packages built at test time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from repoproxy.domain import channels, transfers
from repoproxy.errors import InvalidName, RepoproxyError
from repoproxy.storage.accounts import Accounts
from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package


def _files(testapp: Any, path: str, headers: dict[str, str] | None = None) -> set[str]:
    r = testapp.get(path, headers=headers or {})
    data = r.json
    return set(data.get("packages", {})) | set(data.get("packages.conda", {}))


@pytest.fixture
def pkg(pkgdir: Path) -> Path:
    return build_package(PackageSpec("tool", "1.0"), pkgdir, "conda")


@pytest.fixture
def pkg2(pkgdir: Path) -> Path:
    return build_package(PackageSpec("tool", "2.0", subdir="linux-64"), pkgdir, "tar.bz2")


def _sub(testapp: Any, headers: dict[str, str], parent: str, name: str,
         status: int = 201) -> Any:
    return testapp.post_json(f"/api/v1/channels/{parent}/subchannels", {"name": name},
                             headers=headers, status=status)


# --- names -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["noarch", "linux-64", "osx-arm64", "emscripten-wasm32",
                                  "some-thing", "shards", "artifacts", "channeldata.json", "a/b",
                                  "", "UP", ".x"])
def test_a_subchannel_name_is_never_a_subdir_or_a_path_word(services: Any, name: str) -> None:
    channels.create_channel(services, "main")
    with pytest.raises(InvalidName):
        channels.create_channel(services, f"main/{name}")


def test_subchannel_needs_an_existing_parent(services: Any) -> None:
    with pytest.raises(RepoproxyError) as e:
        channels.create_channel(services, "nope/dev")
    assert e.value.status == 404


# --- served as a channel of its own -------------------------------------------------------------
def test_subchannel_is_a_channel_of_its_own(testapp: Any, make_channel: Callable[..., Any],
                                            admin_headers: dict[str, str], pkg: Path,
                                            pkg2: Path) -> None:
    make_channel("main")
    details = _sub(testapp, admin_headers, "main", "dev").json
    assert details["name"] == "main/dev"
    assert details["parent"] == "main"
    assert details["url"].endswith("/main/dev/")
    upload_raw(testapp, "main/dev", pkg, admin_headers)
    upload_raw(testapp, "main", pkg2, admin_headers)
    assert _files(testapp, "/main/dev/noarch/repodata.json") == {pkg.name}
    assert _files(testapp, "/main/noarch/repodata.json") == set()
    assert _files(testapp, "/main/linux-64/repodata.json") == {pkg2.name}
    assert testapp.get(f"/main/dev/noarch/{pkg.name}").body == pkg.read_bytes()
    testapp.get(f"/main/noarch/{pkg.name}", status=404)
    index = testapp.get("/main/dev/noarch/repodata_shards.msgpack.zst")
    assert index.status_int == 200
    assert testapp.get("/main/dev/channeldata.json").json["packages"]["tool"]
    # the parent's shard route and the subchannel's file route never meet
    testapp.get("/main/linux-64/shards/" + "0" * 64 + ".msgpack.zst", status=404)
    # channel show counts subchannels; the list and the subchannel API name it
    assert testapp.get("/api/v1/channels/main", headers=admin_headers).json["subchannel_count"] == 1
    listed = testapp.get("/api/v1/channels/main/subchannels", headers=admin_headers).json
    assert [c["name"] for c in listed["subchannels"]] == ["main/dev"]
    shown = testapp.get("/api/v1/channels/main/subchannels/dev", headers=admin_headers).json
    assert shown["package_files"] == {"noarch": 1}
    files = testapp.get("/api/v1/channels/main/subchannels/dev/files").json["files"]
    assert [f["filename"] for f in files] == [pkg.name]
    # the details API takes C/SUB
    art = testapp.get("/api/channels/main/dev/artifacts/conda/tool").json
    assert art["name"] == "tool"
    fl = testapp.get("/api/channels/main/dev/artifacts/conda/tool/files").json
    assert fl["channel"] == "main/dev"
    assert fl["files"][0]["url"] == f"http://localhost/main/dev/noarch/{pkg.name}"
    # delete one file and reindex through the C/SUB API paths
    testapp.post("/api/v1/reindex/main/dev/noarch", headers=admin_headers)
    testapp.delete(f"/api/v1/delete/main/dev/noarch/{pkg.name}", headers=admin_headers)
    assert _files(testapp, "/main/dev/noarch/repodata.json") == set()


def test_access_follows_the_parent(testapp: Any, services: Any, make_channel: Callable[..., Any],
                                   admin_headers: dict[str, str], pkg: Path) -> None:
    make_channel("secret", privacy="private")
    _sub(testapp, admin_headers, "secret", "dev")
    upload_raw(testapp, "secret/dev", pkg, admin_headers)
    # anonymous: asked to authenticate, exactly as for an absent subchannel
    testapp.get("/secret/dev/noarch/repodata.json", status=401)
    testapp.get("/secret/nothing/noarch/repodata.json", status=401)
    # a read token of the parent reads the subchannel, and may not write it
    reader = make_token(services, "r", channels=["secret"], access="read")
    auth = {"Authorization": f"Bearer {reader}"}
    assert _files(testapp, "/secret/dev/noarch/repodata.json", auth) == {pkg.name}
    testapp.get(f"/t/{reader}/secret/dev/noarch/{pkg.name}")
    r = testapp.delete(f"/api/v1/delete/secret/dev/noarch/{pkg.name}", headers=auth,
                       status=403)
    assert "secret/dev" in r.json["message"]
    # a token of another channel sees nothing (404 like absent)
    other = make_token(services, "o", channels=["elsewhere"], access="manage")
    testapp.get("/secret/dev/noarch/repodata.json",
                headers={"Authorization": f"Bearer {other}"}, status=404)
    # a write token of the parent uploads to the subchannel
    writer = make_token(services, "w", channels=["secret"], access="write")
    pkg_b = build_package(PackageSpec("other", "1.0"), pkg.parent, "conda")
    upload_raw(testapp, "secret/dev", pkg_b, {"Authorization": f"Bearer {writer}"})
    # privacy follows the parent; a subchannel's own privacy cannot be set
    testapp.patch_json("/api/v1/channels/secret", {"privacy": "public"}, headers=admin_headers)
    assert services.catalog().get_channel("secret/dev").privacy == "public"
    testapp.get("/secret/dev/noarch/repodata.json")
    with pytest.raises(RepoproxyError):
        channels.update_channel(services, "secret/dev", privacy="private")
    # nor asked for at creation: refused with the reason, not silently ignored
    for url, body in (("/api/v1/channels/secret/subchannels", {"name": "p", "privacy": "private"}),
                      ("/api/v1/channels", {"name": "secret/p", "privacy": "private"})):
        r = testapp.post_json(url, body, headers=admin_headers, status=400)
        assert "follows its parent" in r.json["message"]
    assert services.catalog().get_channel("secret/p") is None
    testapp.post_json("/api/v1/channels/secret/subchannels", {"name": "p", "privacy": "public"},
                      headers=admin_headers, status=201)
    # creating a subchannel needs manage on the parent
    testapp.post_json("/api/v1/channels/secret/subchannels", {"name": "x"}, headers=auth,
                      status=403)
    testapp.post_json("/api/v1/channels", {"name": "secret/y"},
                      headers={"Authorization": f"Bearer {writer}"}, status=403)


def test_removing_the_parent_removes_its_subchannels(testapp: Any, services: Any,
                                                     make_channel: Callable[..., Any],
                                                     admin_headers: dict[str, str],
                                                     pkg: Path) -> None:
    make_channel("main")
    _sub(testapp, admin_headers, "main", "dev")
    _sub(testapp, admin_headers, "main", "rc")
    upload_raw(testapp, "main/dev", pkg, admin_headers)
    testapp.delete("/api/v1/channels/main/subchannels/rc", headers=admin_headers)
    assert [c.name for c in services.catalog().subchannels("main")] == ["main/dev"]
    assert not (services.store.channels_dir / "main" / "rc").exists()
    testapp.delete("/api/v1/channels/main", headers=admin_headers)
    assert services.catalog().get_channel("main/dev") is None
    assert not (services.store.channels_dir / "main").exists()
    assert list(services.store.tmp_dir.iterdir()) == []
    testapp.get("/main/dev/noarch/repodata.json", headers=admin_headers, status=404)
    actions = [r["action"] for r in Accounts(services.db()).audit_entries()]
    assert actions.count("subchannel.create") == 2


# --- copy, move, remove -----------------------------------------------------------------------
def test_copy_hard_links_and_indexes_the_destination(
        testapp: Any, services: Any, make_channel: Callable[..., Any],
        admin_headers: dict[str, str], pkg: Path, pkg2: Path) -> None:
    make_channel("main")
    make_channel("prod")
    _sub(testapp, admin_headers, "prod", "rc")
    upload_raw(testapp, "main", pkg, admin_headers)
    upload_raw(testapp, "main", pkg2, admin_headers)
    r = testapp.post_json("/api/v1/copy/main", {"package": "tool", "version": "1.0",
                                                "destination": "prod/rc"},
                          headers=admin_headers).json
    assert r["files"] == [f"prod/rc/noarch/{pkg.name}"]
    assert r["duplicates"] == []
    src = services.store.package_path("main", "noarch", pkg.name)
    dst = services.store.package_path("prod/rc", "noarch", pkg.name)
    assert src.stat().st_ino == dst.stat().st_ino  # a hard link, no byte copied
    assert _files(testapp, "/prod/rc/noarch/repodata.json") == {pkg.name}
    assert _files(testapp, "/main/noarch/repodata.json") == {pkg.name}
    # again: reported as a duplicate, nothing written
    r = testapp.post_json("/api/v1/copy/main", {"package": "tool", "destination": "prod/rc"},
                          headers=admin_headers).json
    assert r["duplicates"] == [f"prod/rc/noarch/{pkg.name}"]
    assert r["files"] == [f"prod/rc/linux-64/{pkg2.name}"]
    actions = [(e["action"], e["channel"]) for e in Accounts(services.db()).audit_entries()]
    assert actions.count(("package.copy", "main")) == 2


def test_move_removes_from_the_origin_in_the_same_commit(
        testapp: Any, services: Any, make_channel: Callable[..., Any],
        admin_headers: dict[str, str], pkg: Path, pkg2: Path) -> None:
    make_channel("main")
    make_channel("prod")
    upload_raw(testapp, "main", pkg, admin_headers)
    upload_raw(testapp, "main", pkg2, admin_headers)
    r = testapp.post_json("/api/v1/move/main", {"package": "tool", "subdir": "linux-64",
                                                "destination": "prod"},
                          headers=admin_headers).json
    assert r["files"] == [f"prod/linux-64/{pkg2.name}"]
    assert _files(testapp, "/main/linux-64/repodata.json") == set()
    assert _files(testapp, "/prod/linux-64/repodata.json") == {pkg2.name}
    assert _files(testapp, "/main/noarch/repodata.json") == {pkg.name}
    assert not services.store.package_path("main", "linux-64", pkg2.name).exists()
    entry = [e for e in Accounts(services.db()).audit_entries() if e["action"] == "package.move"]
    assert len(entry) == 1
    assert entry[0]["details"]["destination"] == "prod"


def test_remove_narrowed_by_version_and_file(testapp: Any, services: Any,
                                             make_channel: Callable[..., Any],
                                             admin_headers: dict[str, str], pkg: Path,
                                             pkg2: Path) -> None:
    make_channel("main")
    _sub(testapp, admin_headers, "main", "dev")
    upload_raw(testapp, "main/dev", pkg, admin_headers)
    upload_raw(testapp, "main/dev", pkg2, admin_headers)
    testapp.post_json("/api/v1/remove/main/dev", {"package": "tool", "version": "3.0"},
                      headers=admin_headers, status=404)
    r = testapp.post_json("/api/v1/remove/main/dev", {"package": "tool", "file": pkg.name},
                          headers=admin_headers).json
    assert r["files"] == [f"main/dev/noarch/{pkg.name}"]
    assert _files(testapp, "/main/dev/linux-64/repodata.json") == {pkg2.name}
    result = transfers.remove_package(services, transfers.Spec.parse("main/dev::tool==2.0"))
    assert [f.filename for f in result.files] == [pkg2.name]


def test_transfer_permissions(testapp: Any, services: Any, make_channel: Callable[..., Any],
                              admin_headers: dict[str, str], pkg: Path) -> None:
    make_channel("main")
    make_channel("prod", privacy="private")
    upload_raw(testapp, "main", pkg, admin_headers)
    writer = make_token(services, "w", channels=["main"], access="write")
    auth = {"Authorization": f"Bearer {writer}"}
    # a destination the caller may not read answers like an absent one
    testapp.post_json("/api/v1/copy/main", {"package": "tool", "destination": "prod"},
                      headers=auth, status=404)
    testapp.post_json("/api/v1/copy/main", {"package": "tool", "destination": "nope"},
                      headers=auth, status=404)
    reader = make_token(services, "r", channels=["main", "prod"], access="read")
    r = testapp.post_json("/api/v1/copy/main", {"package": "tool", "destination": "prod"},
                          headers={"Authorization": f"Bearer {reader}"}, status=403)
    assert "prod" in r.json["message"]
    testapp.post_json("/api/v1/move/main", {"package": "tool", "destination": "prod"},
                      headers={"Authorization": f"Bearer {reader}"}, status=403)
    testapp.post_json("/api/v1/copy/main", {"package": "tool", "destination": "main"},
                      headers=admin_headers, status=400)
    testapp.post_json("/api/v1/copy/main", {"package": "Bad Name", "destination": "prod"},
                      headers=admin_headers, status=400)


def test_spec_parsing() -> None:
    assert transfers.Spec.parse("c/sub::pkg==1.0") == transfers.Spec("c/sub", "pkg", "1.0")
    assert transfers.Spec.parse("c::pkg") == transfers.Spec("c", "pkg", None)
    for bad in ("c", "::pkg", "c::", "c::pkg==", "c/linux-64::pkg"):
        with pytest.raises(InvalidName):
            transfers.Spec.parse(bad)

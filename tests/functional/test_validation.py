"""Names and versions follow one rule, the clients' rule (rattler's parsers, whole strings).

Whatever the catalog accepts, rattler (pixi, rattler-build, conda via libmamba) must be able to
read back: a version like ``1..0`` or a name ending in a newline is refused with a 400 naming
the problem, nothing is stored, and the channel keeps working. A bad row that reached the
catalog anyway (an older server, a hand edit) is isolated: it never stops the index writers
nor start-up recovery for the rest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from rattler import RepoData, Version
from rattler.exceptions import InvalidVersionError

from repoproxy.domain.recovery import recover
from repoproxy.storage.db import write_transaction
from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

CH = "valid"


@pytest.fixture
def channel(testapp: Any, make_channel: Any, admin_headers: dict[str, str],
            pkgdir: Path) -> Path:
    """A public channel holding one good package; returns that package's path."""
    make_channel(CH)
    good = build_package(PackageSpec("good", "1.0"), pkgdir / "good", "conda")
    upload_raw(testapp, CH, good, admin_headers)
    return good


def snapshot(services: Any) -> dict[str, Any]:
    root = Path(services.store.root)
    channels = root / "channels"
    return {
        "files": sorted(str(p.relative_to(channels)) for p in channels.rglob("*")
                        if "shards" not in p.parts),
        "tmp": sorted(p.name for p in (root / "tmp").iterdir()),
        "rows": services.db().execute("SELECT channel, subdir, filename FROM packages "
                                      "ORDER BY 1, 2, 3").fetchall(),
        "channels": services.db().execute("SELECT name FROM channels ORDER BY 1").fetchall(),
    }


def error_of(response: Any, status: int, code: str) -> str:
    assert response.status_int == status, response.text
    assert response.json["error"] == code, response.json
    return str(response.json["message"])


def quetz_upload(testapp: Any, headers: dict[str, str], path: Path, filename: str,
                 status: int) -> Any:
    """The quetz form names the file in the URL path: any character can be sent there."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    return testapp.post(f"/api/channels/{CH}/upload/{quote(filename, safe='')}?sha256={sha}",
                        data, status=status,
                        headers={**headers, "Content-Type": "application/octet-stream"})


def assert_channel_still_works(testapp: Any, headers: dict[str, str], pkgdir: Path,
                               services: Any) -> None:
    """A good upload after a refusal is accepted and every index says so, readable by rattler."""
    later = build_package(PackageSpec("later", "2.0"), pkgdir / "later", "conda")
    upload_raw(testapp, CH, later, headers)
    repodata = testapp.get(f"/{CH}/noarch/repodata.json").json
    assert later.name in repodata["packages.conda"]
    assert testapp.get(f"/{CH}/channeldata.json").json["packages"]["later"]["version"] == "2.0"
    path = Path(services.store.root) / "channels" / CH / "noarch" / "repodata.json"
    RepoData.from_path(path)  # rattler parses what we serve


# --- versions -----------------------------------------------------------------------------------
BAD_VERSIONS = ["1..0", "1.*", "1.0.", ".1", "1!!0", "1__0", "1.0+", "1..0+x"]


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_version_rattler_cannot_parse_is_400_and_nothing_is_stored(
    testapp: Any, services: Any, admin_headers: dict[str, str], channel: Path, pkgdir: Path,
    version: str,
) -> None:
    with pytest.raises(InvalidVersionError):  # the clients' parser refuses it
        Version(version)
    path = build_package(PackageSpec("vers", version), pkgdir / "v", "conda")
    before = snapshot(services)
    message = error_of(upload_raw(testapp, CH, path, admin_headers, status=400), 400,
                       "invalid-name")
    assert f"invalid version {version!r}" in message
    assert snapshot(services) == before
    assert_channel_still_works(testapp, admin_headers, pkgdir, services)


def test_version_in_index_json_is_checked_too(
    testapp: Any, services: Any, admin_headers: dict[str, str], channel: Path, pkgdir: Path,
) -> None:
    """index.json must agree with the file name, and both must parse."""
    path = build_package(PackageSpec("vers", "1.0", extra_index={"version": "1..0"}),
                         pkgdir / "v", "conda")
    before = snapshot(services)
    message = error_of(upload_raw(testapp, CH, path, admin_headers, status=400), 400,
                       "invalid-package")
    assert "index.json version '1..0'" in message
    assert snapshot(services) == before


# --- names with control or non-ASCII characters ---------------------------------------------------
FILE_NAMES = {
    # what is wrong -> (spec, the message must say)
    "name-newline": (PackageSpec("evil\n"), "invalid package name 'evil\\n'"),
    "name-tab": (PackageSpec("evil\t"), "invalid package name 'evil\\t'"),
    "name-unicode": (PackageSpec("évil"), "invalid package name 'évil'"),
    "version-newline": (PackageSpec("evil", "1.0\n"), "invalid version '1.0\\n'"),
    "version-tab": (PackageSpec("evil", "1.0\t"), "invalid version '1.0\\t'"),
    "version-unicode": (PackageSpec("evil", "1.0é"), "invalid version '1.0é'"),
    "build-newline": (PackageSpec("evil", "1.0", "0\n"), "invalid build string '0\\n'"),
    "build-tab": (PackageSpec("evil", "1.0", "0\t"), "invalid build string '0\\t'"),
    "build-unicode": (PackageSpec("evil", "1.0", "é0"), "invalid build string 'é0'"),
}


@pytest.mark.parametrize("case", sorted(FILE_NAMES))
def test_bad_characters_in_file_names_are_400(
    testapp: Any, services: Any, admin_headers: dict[str, str], channel: Path, pkgdir: Path,
    case: str,
) -> None:
    spec, says = FILE_NAMES[case]
    path = build_package(spec, pkgdir / case, "conda")
    before = snapshot(services)
    message = error_of(quetz_upload(testapp, admin_headers, path, path.name, 400), 400,
                       "invalid-name")
    assert says in message
    assert snapshot(services) == before
    assert_channel_still_works(testapp, admin_headers, pkgdir, services)


@pytest.mark.parametrize("subdir", ["linux-64\n", "linux-64\t", "linux-6é", "noarch\n"])
def test_bad_subdir_in_index_json_is_400(
    testapp: Any, services: Any, admin_headers: dict[str, str], channel: Path, pkgdir: Path,
    subdir: str,
) -> None:
    path = build_package(PackageSpec("sub", extra_index={"subdir": subdir}), pkgdir / "s",
                         "conda")
    before = snapshot(services)
    message = error_of(upload_raw(testapp, CH, path, admin_headers, status=400), 400,
                       "invalid-package")
    assert f"index.json subdir {subdir!r} is not a valid subdir" in message
    assert snapshot(services) == before
    assert_channel_still_works(testapp, admin_headers, pkgdir, services)


@pytest.mark.parametrize("name", ["chan\n", "chan\t", "chän", "chan\r\n", "\nchan"])
def test_bad_channel_names_are_400(
    testapp: Any, services: Any, admin_headers: dict[str, str], channel: Path, pkgdir: Path,
    name: str,
) -> None:
    before = snapshot(services)
    r = testapp.post_json("/api/v1/channels", {"name": name, "privacy": "public"},
                          headers=admin_headers, status=400)
    assert f"invalid channel name {name!r}" in error_of(r, 400, "invalid-name")
    assert snapshot(services) == before
    assert_channel_still_works(testapp, admin_headers, pkgdir, services)


# --- what is already in the catalog ---------------------------------------------------------------
def _plant_bad_row(services: Any, channel: str, version: str = "1..0") -> None:
    """A row no current upload could make (an older server, a hand edit), straight in SQL."""
    db = services.db()
    row = db.execute("SELECT * FROM packages WHERE channel = ? LIMIT 1", [channel]).fetchone()
    cols = [d[0] for d in db.execute("SELECT * FROM packages LIMIT 0").description]
    values = dict(zip(cols, row, strict=True))
    record = json.loads(values["record"])
    record["version"] = version
    filename = f"old-{version}-0.conda"
    values.update(filename=filename, name="old", version=version, record=json.dumps(record))
    # its file is there too (a hard link: the inode and mtime the row names)
    noarch = Path(services.store.root) / "channels" / channel / "noarch"
    os.link(noarch / row[cols.index("filename")],
            noarch / filename)
    with write_transaction(db):
        db.execute(f"INSERT INTO packages ({', '.join(cols)}) "  # noqa: S608 - our columns
                   f"VALUES ({', '.join('?' for _ in cols)})", list(values.values()))


def test_unparsable_version_in_catalog_does_not_break_channeldata(
    testapp: Any, services: Any, admin_headers: dict[str, str], channel: Path, pkgdir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _plant_bad_row(services, CH)
    with caplog.at_level(logging.WARNING):
        assert_channel_still_works(testapp, admin_headers, pkgdir, services)
    packages = testapp.get(f"/{CH}/channeldata.json").json["packages"]
    assert set(packages) == {"good", "later"}  # the bad row is left out, the rest is there
    # repodata.json too: one record rattler cannot parse would make it refuse the whole subdir
    assert "old-1..0-0.conda" not in testapp.get(f"/{CH}/noarch/repodata.json").text
    assert "old" in caplog.text
    assert "1..0" in caplog.text


def test_recover_isolates_a_bad_row_and_a_bad_channel(
    testapp: Any, services: Any, admin_headers: dict[str, str], channel: Path, pkgdir: Path,
    make_channel: Any, caplog: pytest.LogCaptureFixture,
) -> None:
    make_channel("other")
    other = build_package(PackageSpec("otherpkg", "3.0"), pkgdir / "o", "conda")
    upload_raw(testapp, "other", other, admin_headers)
    _plant_bad_row(services, CH)
    db = services.db()
    with write_transaction(db):
        for bad in ("bad\nchannel", "Bad Channel"):
            db.execute("INSERT INTO channels (name, description, privacy, created) "
                       "VALUES (?, '', 'public', '')", [bad])
            db.execute("INSERT INTO subdirs (channel, subdir, generation, built) "
                       "VALUES (?, 'noarch', 1, -1)", [bad])
        # and a subdir row that could never be a directory of ours
        db.execute("INSERT INTO subdirs (channel, subdir, generation, built) "
                   "VALUES ('other', 'linux-64\n', 1, -1)")
    # the indexes are stale, as after a crash: recovery must rebuild them
    for name in (CH, "other"):
        (Path(services.store.root) / "channels" / name / "noarch" / "repodata.json").unlink()
        (Path(services.store.root) / "channels" / name / "channeldata.json").unlink()

    with caplog.at_level(logging.WARNING):
        recover(services)

    assert "bad\\nchannel" in caplog.text
    assert "Bad Channel" in caplog.text
    assert "1..0" in caplog.text
    assert channel.name in testapp.get(f"/{CH}/noarch/repodata.json").json["packages.conda"]
    assert testapp.get(f"/{CH}/channeldata.json").json["packages"]["good"]["version"] == "1.0"
    assert other.name in testapp.get("/other/noarch/repodata.json").json["packages.conda"]
    assert set(testapp.get("/other/channeldata.json").json["packages"]) == {"otherpkg"}
    # nothing was deleted: removing the odd row and its file is the operator's call
    rows = services.db().execute("SELECT filename FROM packages WHERE channel = ?",
                                 [CH]).fetchall()
    assert ("old-1..0-0.conda",) in rows

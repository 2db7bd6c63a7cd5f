"""End to end: a real `repoproxy serve` starts and serves the good channels even when the
catalog holds a row or a channel that no current rule allows (an older server, a hand edit).

Before the fix, ``1..0`` in the catalog made start-up recovery raise while writing
channeldata.json and a channel named ``"bad\\n"`` made it raise while finding its directory:
the server never started at all.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from rattler import RepoData

from repoproxy.testing.fixtures import RunningServer
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.wire import upload_prefix_raw

pytestmark = pytest.mark.e2e


def test_serve_starts_with_a_bad_row_and_a_bad_channel_in_the_catalog(
    server_factory: Callable[..., RunningServer], tmp_path: Path
) -> None:
    root = tmp_path / "root"
    srv = server_factory(root)
    admin = srv.token("--admin", "--name", "admin")
    auth = {"Authorization": f"Bearer {admin}"}
    pkgs = {}
    for channel in ("alpha", "beta"):
        r = requests.post(f"{srv.url}/api/v1/channels", json={"name": channel}, headers=auth,
                          timeout=30)
        assert r.status_code == 201, r.text
        path = build_package(PackageSpec(f"{channel}pkg", "1.0"), tmp_path / channel, "conda")
        r = upload_prefix_raw(srv.url, channel, path, admin)
        assert r.status_code == 201, r.text
        pkgs[channel] = path
    assert srv.stop(signal.SIGTERM) == 0

    # plant, straight in SQL, what no upload can make today
    noarch = root / "channels" / "alpha" / "noarch"
    os.link(noarch / pkgs["alpha"].name, noarch / "old-1..0-0.conda")
    db = sqlite3.connect(root / "catalog.db")
    with db:
        cols = [d[0] for d in db.execute("SELECT * FROM packages LIMIT 0").description]
        row = dict(zip(cols, db.execute("SELECT * FROM packages WHERE channel = 'alpha'")
                       .fetchone(), strict=True))
        record = dict(json.loads(row["record"]), name="old", version="1..0")
        row.update(filename="old-1..0-0.conda", name="old", version="1..0",
                   record=json.dumps(record))
        db.execute(f"INSERT INTO packages ({', '.join(cols)}) "  # noqa: S608 - our columns
                   f"VALUES ({', '.join('?' for _ in cols)})", list(row.values()))
        db.execute("INSERT INTO channels (name, description, privacy, created) "
                   "VALUES ('bad\n', '', 'public', '')")
        db.execute("INSERT INTO subdirs (channel, subdir, generation, built) "
                   "VALUES ('bad\n', 'noarch', 1, -1)")
        db.execute("UPDATE subdirs SET built = -1")  # every index is stale, as after a crash
    db.close()
    for channel in ("alpha", "beta"):
        (root / "channels" / channel / "channeldata.json").unlink()

    srv = server_factory(root)  # raises if the process exits during start-up
    for channel in ("alpha", "beta"):
        r = requests.get(f"{srv.url}/{channel}/noarch/repodata.json", timeout=30)
        assert r.status_code == 200
        assert pkgs[channel].name in r.json()["packages.conda"]
        r = requests.get(f"{srv.url}/{channel}/channeldata.json", timeout=30)
        assert r.status_code == 200
        assert set(r.json()["packages"]) == {f"{channel}pkg"}
        assert requests.get(f"{srv.url}/{channel}/noarch/{pkgs[channel].name}",
                            timeout=30).content == pkgs[channel].read_bytes()
    # the bad row is kept out of what clients read, so they can still parse the subdir
    served = tmp_path / "repodata.json"
    served.write_bytes(requests.get(f"{srv.url}/alpha/noarch/repodata.json", timeout=30).content)
    RepoData.from_path(served)
    assert "old-1..0-0.conda" not in served.read_text()
    # and uploads keep working
    more = build_package(PackageSpec("alphapkg", "2.0"), tmp_path / "more", "conda")
    assert upload_prefix_raw(srv.url, "alpha", more, admin).status_code == 201
    r = requests.get(f"{srv.url}/alpha/channeldata.json", timeout=30)
    assert r.json()["packages"]["alphapkg"]["version"] == "2.0"
    log = srv.log_path.read_text()
    assert "recovery skipped channel 'bad\\n'" in log
    assert "old-1..0-0.conda" in log

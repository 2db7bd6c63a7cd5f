"""A burst of uploads against a real `repoproxy serve` while a reader polls repodata.json, its
.zst and the shard index over HTTP (issue 12's acceptance; bench/ingest.py runs it with 500).

"Never disagree for longer than one publish", without timing: in every poll the views are
ordered (``json <= zst <= shards``: each is written before the one read before it, and files
only join), and every upload answered 201 before the poll began is in all three (its publish
has finished, so no view may lag behind it). At the end all three name exactly the uploads.
"""

from __future__ import annotations

import hashlib
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.visibility import Reader, View

pytestmark = pytest.mark.e2e

CH = "burst"
UPLOADS = 100
UPLOADERS = 4
TIMEOUT = 60


def test_indexes_never_disagree_beyond_one_publish(server_factory: Any, tmp_path: Path) -> None:
    srv = server_factory(tmp_path / "root", REPOPROXY_LOG_REQUESTS="false")
    token = srv.token("--admin", "--name", "burst")
    auth = {"Authorization": f"Bearer {token}"}
    requests.post(f"{srv.url}/api/v1/channels", json={"name": CH}, headers=auth,
                  timeout=TIMEOUT).raise_for_status()
    # five versions per name: shards are rewritten while they already exist
    paths = [build_package(PackageSpec(f"b{i // 5}", f"1.{i % 5}"), tmp_path / "pkgs")
             for i in range(UPLOADS)]
    acked: set[str] = set()
    acked_lock = threading.Lock()
    done = threading.Event()
    session = requests.Session()

    def fetch(name: str) -> bytes | None:
        r = session.get(f"{srv.url}/{CH}/noarch/{name}", timeout=TIMEOUT)
        if r.status_code == 404:
            return None
        r.raise_for_status()
        return r.content

    polls: list[tuple[set[str], View]] = []
    errors: list[str] = []

    def read() -> None:
        reader = Reader(fetch)
        try:
            while not done.is_set():
                with acked_lock:
                    before = set(acked)
                polls.append((before, reader.view()))
        except Exception as e:  # reported below, with the polls so far
            errors.append(repr(e))

    def upload(path: Path) -> None:
        data = path.read_bytes()
        r = requests.post(
            f"{srv.url}/api/v1/upload/{CH}", data=data, timeout=TIMEOUT,
            headers={**auth, "X-File-Name": path.name,
                     "X-File-SHA256": hashlib.sha256(data).hexdigest(),
                     "Content-Type": "application/octet-stream"})
        assert r.status_code == 201, r.text
        with acked_lock:
            acked.add(path.name)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        with ThreadPoolExecutor(UPLOADERS) as pool:
            list(pool.map(upload, paths))
    finally:
        done.set()
        reader.join(timeout=TIMEOUT)
    assert not errors, errors
    assert len(polls) > 10, "the reader hardly polled during the burst"

    went_back = [v for _, v in polls if not v.ordered()]
    assert not went_back, f"{len(went_back)} polls saw a view go back in time: {went_back[0]}"
    lagging = [(sorted(before - v.json), v) for before, v in polls if not before <= v.json]
    assert not lagging, f"{len(lagging)} polls missed acknowledged uploads: {lagging[0][0][:5]}"
    final = Reader(fetch).view()
    assert final.agree()
    assert final.json == {p.name for p in paths}

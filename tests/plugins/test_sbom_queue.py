"""repoproxy_sbom's queue: publishing only enqueues; the endpoint builds on demand, the worker
drains with bounded retries, and a SIGKILLed server loses no SBOM."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from repoproxy_sbom.build import validate
from repoproxy_sbom.queue import SbomWorker, drain, pending, rescan

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_many, build_package
from repoproxy.testing.server import RunningServer
from repoproxy.testing.wire import upload_prefix_raw


def _queue_rows(services: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in services.db().execute(
        "SELECT channel, subdir, filename, sha256, attempts, last_error FROM sbom_queue "
        "ORDER BY filename").fetchall()]


def _stored(root: Path, channel: str, subdir: str, filename: str) -> Path:
    return root / "sbom" / channel / subdir / f"{filename}.cdx.json"


@pytest.fixture
def one(testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path) -> Path:
    make_channel("pub")
    path = build_package(PackageSpec("demo", "1.0"), pkgdir, "conda")
    upload_raw(testapp, "pub", path, admin_headers)
    return path


def test_upload_only_enqueues_and_the_endpoint_builds_on_demand(
        testapp: Any, one: Path, services: Any) -> None:
    rows = _queue_rows(services)
    assert [r[:3] for r in rows] == [("pub", "noarch", one.name)]
    assert rows[0][4:] == (0, None)
    stored = _stored(services.store.root, "pub", "noarch", one.name)
    assert not stored.exists()
    r = testapp.get(f"/api/channels/pub/sbom/noarch/{one.name}")
    validate(r.text)
    assert r.json["metadata"]["component"]["name"] == "demo"
    assert stored.exists()
    assert pending(services) == 0, "built on demand, so dequeued"


def test_the_worker_builds_queued_sboms(testapp: Any, make_channel: Any,
                                        admin_headers: dict[str, str], pkgdir: Path,
                                        services: Any) -> None:
    make_channel("pub")
    paths = build_many(pkgdir, 6)
    for p in paths:
        upload_raw(testapp, "pub", p, admin_headers)
    assert pending(services) == 6
    worker = SbomWorker(services, interval=0.05, max_attempts=3)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while pending(services) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
    assert pending(services) == 0
    for p in paths:
        validate(_stored(services.store.root, "pub", "noarch", p.name).read_text())


def test_the_worker_rescans_at_start_and_drains_from_its_next_tick(
        testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path,
        services: Any) -> None:
    """A paused queue (a long interval) stays paused at start: the first tick only finds the
    files without an SBOM (a crash between commit and enqueue), the builds wait an interval."""
    make_channel("pub")
    paths = build_many(pkgdir, 3)
    for p in paths:
        upload_raw(testapp, "pub", p, admin_headers)
    services.db().execute("DELETE FROM sbom_queue WHERE filename = ?", [paths[0].name])
    assert pending(services) == 2
    worker = SbomWorker(services, interval=3600, max_attempts=3)
    worker.tick()
    assert pending(services) == 3, "the re-scan queued the file whose row was lost"
    assert not any(_stored(services.store.root, "pub", "noarch", p.name).exists()
                   for p in paths)
    worker.tick()
    assert pending(services) == 0
    for p in paths:
        validate(_stored(services.store.root, "pub", "noarch", p.name).read_text())


def test_failures_are_retried_with_backoff_and_bounded(testapp: Any, one: Path,
                                                       services: Any) -> None:
    # the stored file is damaged after ingest: every build fails
    services.store.package_path("pub", "noarch", one.name).write_bytes(b"not an archive")
    assert drain(services, max_attempts=3) == 1
    (_, _, _, _, attempts, error), = _queue_rows(services)
    assert attempts == 1
    assert error
    assert drain(services, max_attempts=3) == 0, "not due again before its backoff"
    db = services.db()
    for _ in range(5):  # skip the backoff: at most three attempts in all
        db.execute("UPDATE sbom_queue SET next_try = 0")
        drain(services, max_attempts=3)
    assert _queue_rows(services)[0][4] == 3
    assert not _stored(services.store.root, "pub", "noarch", one.name).exists()


def test_rows_of_removed_files_and_channels_go(testapp: Any, one: Path, services: Any,
                                              admin_headers: dict[str, str],
                                              make_channel: Any, pkgdir: Path) -> None:
    testapp.delete(f"/api/v1/delete/pub/noarch/{one.name}", headers=admin_headers)
    assert pending(services) == 0
    make_channel("gone")
    upload_raw(testapp, "gone", one, admin_headers)
    assert pending(services) == 1
    testapp.delete("/api/v1/channels/gone", headers=admin_headers)
    assert pending(services) == 0
    # a row whose file vanished behind the queue's back is dropped by the worker
    db = services.db()
    db.execute("INSERT INTO sbom_queue (channel, subdir, filename, sha256, attempts, "
               "enqueued_at, next_try) VALUES ('pub', 'noarch', 'x-1-0.conda', '', 0, '', 0)")
    assert drain(services, max_attempts=3) == 1
    assert pending(services) == 0


def test_rescan_requeues_files_lost_between_commit_and_enqueue(testapp: Any, one: Path,
                                                               services: Any) -> None:
    services.db().execute("DELETE FROM sbom_queue")  # the process died before enqueueing
    assert rescan(services) == 1
    assert [r[:3] for r in _queue_rows(services)] == [("pub", "noarch", one.name)]
    assert rescan(services) == 0, "already queued"
    drain(services, max_attempts=3)
    assert rescan(services) == 0, "has its SBOM"


@pytest.mark.e2e
def test_a_sigkilled_server_with_a_full_queue_loses_no_sbom(
        server_factory: Callable[..., RunningServer], tmp_path: Path) -> None:
    root = tmp_path / "root"
    srv = server_factory(root, REPOPROXY_SBOM__WORKER_INTERVAL="3600")  # paused
    admin = srv.token("--admin", "--name", "admin")
    r = requests.post(f"{srv.url}/api/v1/channels", json={"name": "pub"},
                      headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    assert r.status_code == 201, r.text
    uploaded = build_many(tmp_path / "up", 12, prefix="up")
    for p in uploaded:
        assert upload_prefix_raw(srv.url, "pub", p, admin).status_code == 201
    assert srv.stop(signal.SIGKILL) == -signal.SIGKILL
    # more files, imported while the server is down (the CLI leaves them queued too)
    imported = build_many(tmp_path / "imp" / "noarch", 12, prefix="imp")
    subprocess.run([sys.executable, "-m", "repoproxy", "import", str(tmp_path / "imp"),
                    "--channel", "pub", "--root", str(root)], check=True, env=srv.env,
                   capture_output=True, timeout=300)
    from sqlite_utils import Database

    db = Database(root / "catalog.db")
    assert db.execute("SELECT COUNT(*) FROM sbom_queue").fetchone()[0] == 24
    # a process that died between commit and enqueue: rows missing, found by the re-scan
    db.execute("DELETE FROM sbom_queue WHERE filename LIKE 'up1-%'")
    db.conn.commit()
    db.close()
    names = [p.name for p in (*uploaded, *imported)]
    assert not any(_stored(root, "pub", "noarch", n).exists() for n in names)

    srv2 = server_factory(root, REPOPROXY_SBOM__WORKER_INTERVAL="0.1")
    deadline = time.monotonic() + 120
    missing = names
    while missing and time.monotonic() < deadline:
        missing = [n for n in missing if not _stored(root, "pub", "noarch", n).exists()]
        time.sleep(0.2)
    assert missing == []
    for n in names:
        r = requests.get(f"{srv2.url}/api/channels/pub/sbom/noarch/{n}", timeout=30)
        assert r.status_code == 200, r.text
        validate(r.text)
    db = Database(root / "catalog.db")
    assert db.execute("SELECT COUNT(*) FROM sbom_queue").fetchone()[0] == 0

"""The watch folder plugin, in-process: a worker on a test root, files dropped beside it.

Every wait is bounded by a deadline; quiet times are fractions of a second.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from repoproxy_watch.config import WatchConfig
from repoproxy_watch.folder import is_temporary
from repoproxy_watch.state import status, worker_running
from repoproxy_watch.worker import WatchWorker

from repoproxy.domain.channels import create_channel
from repoproxy.errors import ConfigError
from repoproxy.testing.packages import (
    HOSTILE_KINDS,
    PackageSpec,
    build_hostile,
    build_many,
    build_package,
)

CH = "main"
QUIET = 0.4
TIMEOUT = 30.0
MiB = 1024 * 1024


def wait_for(predicate: Callable[[], Any], timeout: float = TIMEOUT,
             interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def settings(settings: dict[str, Any]) -> dict[str, Any]:
    settings.update({
        "repoproxy_watch.quiet_seconds": str(QUIET),
        "repoproxy_watch.poll_interval": "0.1",
        "repoproxy_watch.batch_wait": "0.5",
        # bounds as in tests/functional/test_bad_input.py: hostile files stay small
        "repoproxy.max_info_member_size": str(MiB),
        "repoproxy.max_index_json_size": str(64 * 1024),
    })
    return settings


@pytest.fixture
def channel(services: Any) -> str:
    create_channel(services, CH)
    return CH


@pytest.fixture
def config(services: Any) -> WatchConfig:
    return WatchConfig.from_settings(services.settings)


@pytest.fixture
def start_worker(services: Any) -> Iterator[Callable[[], WatchWorker]]:
    workers: list[WatchWorker] = []

    def _start() -> WatchWorker:
        worker = WatchWorker(services, WatchConfig.from_settings(services.settings))
        worker.start()
        workers.append(worker)
        return worker

    yield _start
    for worker in workers:
        worker.stop()


def repodata(services: Any, channel: str = CH, subdir: str = "noarch") -> dict[str, Any]:
    path = services.store.subdir_dir(channel, subdir) / "repodata.json"
    try:
        data: dict[str, Any] = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {"packages": {}, "packages.conda": {}}
    return data


def listed(services: Any, channel: str = CH, subdir: str = "noarch") -> set[str]:
    rd = repodata(services, channel, subdir)
    return set(rd["packages"]) | set(rd["packages.conda"])


def reason(config: WatchConfig, channel: str, filename: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (config.rejected_dir / channel / f"{filename}.reason.json").read_text())
    return data


def drop_dir(config: WatchConfig, *parts: str) -> Path:
    path = config.root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- completeness -------------------------------------------------------------------------
def test_file_copied_slowly_in_chunks_is_ingested_once_after_the_copy_ends(
        services: Any, channel: str, config: WatchConfig, start_worker: Any,
        tmp_path: Path) -> None:
    big = {f"share/slow/{i}.bin": os.urandom(64 * 1024) for i in range(8)}
    src = build_package(PackageSpec("slow", "1.0", files=big), tmp_path / "src")
    data = src.read_bytes()
    start_worker()
    dest = drop_dir(config, CH) / src.name
    chunks = 12
    step = len(data) // chunks + 1
    with open(dest, "wb") as out:  # one writer, pausing below the quiet time between chunks
        for i in range(chunks):
            out.write(data[i * step:(i + 1) * step])
            out.flush()
            time.sleep(QUIET / 4)
            assert src.name not in listed(services), "ingested while still being written"
            assert not config.rejected_dir.joinpath(CH, src.name).exists(), "half-read"
    copy_ended = time.time()
    wait_for(lambda: src.name in listed(services))
    rec = services.catalog().get_package(CH, "noarch", src.name)
    assert rec.sha256 == hashlib.sha256(data).hexdigest()
    assert time.time() - copy_ended >= QUIET * 0.9
    wait_for(lambda: status(services, config)["processed"] == 1)
    report = status(services, config)
    assert (report["processed"], report["rejected"], report["pending"]) == (1, 0, 0)
    assert not dest.exists()
    assert list(services.store.tmp_dir.iterdir()) == []


def test_atomic_move_in_is_ingested_without_waiting_the_quiet_time(
        services: Any, channel: str, settings: dict[str, Any], tmp_path: Path) -> None:
    from repoproxy.domain.core import load_core

    slow = dict(settings, **{"repoproxy_watch.quiet_seconds": "60"})
    svc = load_core(slow, {})
    worker = WatchWorker(svc, WatchConfig.from_settings(svc.settings))
    worker.start()
    try:
        staging = worker.config.root / CH / ".staging"  # same filesystem, hidden: ignored
        path = build_package(PackageSpec("moved", "1.0"), staging)
        wait_for(lambda: worker_running(worker.config))
        time.sleep(0.3)  # the observer is watching
        os.replace(path, worker.config.root / CH / path.name)
        wait_for(lambda: path.name in listed(svc), timeout=15)
        assert not (worker.config.root / CH / path.name).exists()
    finally:
        worker.stop()
        svc.close()


def test_temporary_names_are_left_alone_until_renamed(
        services: Any, channel: str, config: WatchConfig, start_worker: Any,
        tmp_path: Path) -> None:
    good = build_package(PackageSpec("tmpname", "1.0"), tmp_path)
    folder = drop_dir(config, CH)
    names = [good.name + s for s in (".part", ".tmp", "~", ".crdownload")] + ["." + good.name]
    for name in names:
        assert is_temporary(name)
        (folder / name).write_bytes(good.read_bytes())
    start_worker()
    time.sleep(QUIET * 3)
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)
    assert not config.rejected_dir.joinpath(CH).exists()
    os.replace(folder / names[0], folder / good.name)  # the download finished
    wait_for(lambda: good.name in listed(services))
    assert sorted(p.name for p in folder.iterdir()) == sorted(names[1:])


# --- refusals -----------------------------------------------------------------------------
#: what the reason must say, per hostile kind (the core's messages; see test_bad_input.py)
EXPECTED = {
    "empty": "the file is empty (0 bytes)",
    "truncated": "not a readable",
    "not_archive": "not a readable",
    "missing_index": "has no info/index.json",
    "invalid_json": "index.json is not valid JSON",
    "name_mismatch": "does not match the file name",
    "wrong_subdir": "does not match the target subdir 'noarch'",
    "traversal": "'..'",
    "absolute": "absolute member path",
    "zipslip": {"conda": "'../evil.txt' leaves the archive ('..')",
                "tar.bz2": "links outside the archive"},
    "bomb": f"over the limit of {MiB} bytes",
    "huge_index": f"index.json unpacks to {256 * 1024} bytes, over",
    "future_timestamp": "is in the future",
}
SIZES = {"bomb": 8 * MiB, "huge_index": 256 * 1024}


def test_every_hostile_kind_lands_in_rejected_with_a_reason_naming_the_problem(
        services: Any, channel: str, config: WatchConfig, start_worker: Any) -> None:
    assert set(EXPECTED) == set(HOSTILE_KINDS)
    dropped: dict[str, str] = {}
    for kind in HOSTILE_KINDS:
        for fmt in ("conda", "tar.bz2"):
            # wrong_subdir is only wrong where the folder names the subdir
            where = drop_dir(config, CH, "noarch") if kind == "wrong_subdir" else \
                drop_dir(config, CH)
            path = build_hostile(kind, where, name="bad-" + kind.replace("_", "-"), fmt=fmt,
                                 size=SIZES.get(kind, 0))
            says = EXPECTED[kind]
            dropped[path.name] = says[fmt] if isinstance(says, dict) else says
    good = build_package(PackageSpec("good", "1.0"), drop_dir(config, CH))
    start_worker()
    wait_for(lambda: all((config.rejected_dir / CH / n).exists() for n in dropped))
    for name, says in dropped.items():
        doc = reason(config, CH, name)
        assert says in doc["reason"], (name, doc)
        assert doc["file"] == name
        assert doc["channel"] == CH
        assert doc["when"]
        assert doc["error"]
    wait_for(lambda: good.name in listed(services))
    assert listed(services) == {good.name}
    assert sorted(p.name for p in config.root.joinpath(CH).rglob("*") if p.is_file()) == []
    wait_for(lambda: status(services, config)["processed"] == 1)
    report = status(services, config)
    assert report["rejected"] == len(dropped)
    assert report["processed"] == 1
    assert report["last_error"]["error"]
    assert list(services.store.tmp_dir.iterdir()) == []


def test_folder_of_a_missing_channel_is_refused_with_a_reason(
        services: Any, config: WatchConfig, start_worker: Any) -> None:
    path = build_package(PackageSpec("orphan", "1.0"), drop_dir(config, "nochannel"))
    start_worker()
    wait_for(lambda: (config.rejected_dir / "nochannel" / path.name).exists())
    doc = reason(config, "nochannel", path.name)
    assert "channel 'nochannel' does not exist" in doc["reason"]
    assert "repoproxy_watch.create_channels" in doc["reason"]
    assert services.catalog().get_channel("nochannel") is None


def test_create_channels_setting_creates_the_channel_with_the_stated_privacy(
        settings: dict[str, Any]) -> None:
    from repoproxy.domain.core import load_core

    svc = load_core(dict(settings, **{"repoproxy_watch.create_channels": "true",
                                          "repoproxy_watch.create_privacy": "authenticated"}),
                        {})
    worker = WatchWorker(svc, WatchConfig.from_settings(svc.settings))
    path = build_package(PackageSpec("fresh", "1.0", subdir="linux-64"),
                         worker.config.root / "newchan")
    worker.start()
    try:
        wait_for(lambda: path.name in listed(svc, "newchan", "linux-64"))
        assert svc.catalog().get_channel("newchan").privacy.value == "authenticated"
    finally:
        worker.stop()
        svc.close()


def test_layout_problems_are_refused_with_reasons(
        services: Any, channel: str, config: WatchConfig, start_worker: Any,
        tmp_path: Path) -> None:
    pkg = build_package(PackageSpec("placed", "1.0"), tmp_path)
    drop_dir(config)
    (config.root / pkg.name).write_bytes(pkg.read_bytes())  # no channel folder
    # <channel>/<sub>/<folder>/: <sub> is a subchannel, and <folder> must be a subdir
    (drop_dir(config, CH, "dev", "notasubdir") / pkg.name).write_bytes(pkg.read_bytes())
    (drop_dir(config, CH) / "README.txt").write_text("not a package")
    (drop_dir(config, CH) / "link.conda").symlink_to(pkg)
    start_worker()
    wait_for(lambda: (config.rejected_dir / CH / "link.conda.reason.json").exists()
             and (config.rejected_dir / pkg.name).exists()
             and (config.rejected_dir / CH / "README.txt").exists()
             and (config.rejected_dir / CH / "dev" / pkg.name).exists())
    assert "not in a channel folder" in json.loads(
        (config.rejected_dir / f"{pkg.name}.reason.json").read_text())["reason"]
    assert "is not a conda subdir" in json.loads(
        (config.rejected_dir / CH / "dev" / f"{pkg.name}.reason.json").read_text())["reason"]
    assert "not a conda package file name" in reason(config, CH, "README.txt")["reason"]
    assert "symbolic link" in reason(config, CH, "link.conda")["reason"]
    assert listed(services) == set()


def test_subdir_folder_puts_the_package_in_that_subdir(
        services: Any, channel: str, config: WatchConfig, start_worker: Any) -> None:
    path = build_package(PackageSpec("native", "1.0", subdir="linux-64"),
                         drop_dir(config, CH, "linux-64"))
    start_worker()
    wait_for(lambda: path.name in listed(services, CH, "linux-64"))


def _crashing_prepare(src: Path, *args: Any) -> Any:
    """prepare_file, except that reading a file named poison-* kills the process."""
    from repoproxy.pipeline.ingest import prepare_file

    if src.name.startswith("poison-"):
        os._exit(3)
    return prepare_file(src, *args)


def test_a_file_that_kills_its_reading_process_is_refused_alone(
        settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from repoproxy.domain.core import load_core

    # by reference: the reading processes import this module and find the function
    monkeypatch.setattr("repoproxy_watch.batcher.prepare_file", _crashing_prepare)
    svc = load_core(dict(settings, **{"repoproxy_watch.max_attempts": "2"}), {})
    create_channel(svc, CH)
    worker = WatchWorker(svc, WatchConfig.from_settings(svc.settings))
    innocent = build_many(drop_dir(worker.config, CH), 30, prefix="innocent")
    poison = build_package(PackageSpec("poison", "1.0"), drop_dir(worker.config, CH))
    worker.start()
    try:
        wait_for(lambda: (worker.config.rejected_dir / CH / poison.name).exists())
        assert "terminated abruptly" in reason(worker.config, CH, poison.name)["reason"]
        wait_for(lambda: listed(svc) == {p.name for p in innocent})
        assert sorted(p.name for p in worker.config.rejected_dir.rglob("*.conda")) == \
            [poison.name]
    finally:
        worker.stop()
        svc.close()


# --- duplicates -----------------------------------------------------------------------------
def _other_bytes(tmp_path: Path) -> Path:
    """Same file name as PackageSpec('dup', '1.0'), other content."""
    return build_package(PackageSpec("dup", "1.0", files={"share/dup/v2": b"other"}),
                         tmp_path / "other")


def test_duplicate_name_with_other_content_is_rejected(
        services: Any, channel: str, config: WatchConfig, start_worker: Any,
        tmp_path: Path) -> None:
    first = build_package(PackageSpec("dup", "1.0"), drop_dir(config, CH))
    sha = hashlib.sha256(first.read_bytes()).hexdigest()
    start_worker()
    wait_for(lambda: first.name in listed(services) and not first.exists())
    other = _other_bytes(tmp_path)
    os.replace(other, config.root / CH / other.name)
    wait_for(lambda: (config.rejected_dir / CH / first.name).exists())
    assert "already exists" in reason(config, CH, first.name)["reason"]
    assert services.catalog().get_package(CH, "noarch", first.name).sha256 == sha


def test_duplicate_name_with_the_same_content_is_simply_done(
        services: Any, channel: str, config: WatchConfig, start_worker: Any,
        tmp_path: Path) -> None:
    # what a crash between commit and removal leaves behind: no refusal for it
    path = build_package(PackageSpec("same", "1.0"), tmp_path)
    services.ingestor.ingest_file(CH, path)
    os.replace(path, drop_dir(config, CH) / path.name)
    start_worker()
    wait_for(lambda: status(services, config)["already_present"] == 1)
    report = status(services, config)
    assert not (config.root / CH / path.name).exists()
    assert (report["already_present"], report["rejected"]) == (1, 0)


def test_duplicates_replace_setting_replaces_the_file(
        settings: dict[str, Any], tmp_path: Path) -> None:
    from repoproxy.domain.core import load_core

    svc = load_core(dict(settings, **{"repoproxy_watch.duplicates": "replace",
                                          "repoproxy_watch.processed_dir": ".processed"}), {})
    create_channel(svc, CH)
    svc.ingestor.ingest_file(CH, build_package(PackageSpec("dup", "1.0"), tmp_path))
    worker = WatchWorker(svc, WatchConfig.from_settings(svc.settings))
    other = _other_bytes(tmp_path)
    sha = hashlib.sha256(other.read_bytes()).hexdigest()
    os.replace(other, drop_dir(worker.config, CH) / other.name)
    worker.start()
    try:
        wait_for(lambda: svc.catalog().get_package(CH, "noarch", other.name).sha256 == sha)
        kept = worker.config.root / ".processed" / CH / "noarch" / other.name
        wait_for(kept.exists)
        assert hashlib.sha256(kept.read_bytes()).hexdigest() == sha
    finally:
        worker.stop()
        svc.close()


# --- bursts ---------------------------------------------------------------------------------
def test_burst_of_500_files_is_ingested_with_few_repodata_builds(
        services: Any, channel: str, config: WatchConfig, start_worker: Any) -> None:
    n = 500
    paths = build_many(drop_dir(config, CH), n, prefix="burst")
    builds = services.indexer.builds
    start = time.monotonic()
    start_worker()
    wait_for(lambda: len(listed(services)) == n, timeout=90)
    elapsed = time.monotonic() - start
    rebuilds = services.indexer.builds - builds
    assert listed(services) == {p.name for p in paths}
    assert rebuilds <= 10, f"{rebuilds} repodata builds for a burst of {n}"
    wait_for(lambda: status(services, config)["processed"] == n)
    report = status(services, config)
    assert report["pending"] == 0
    assert report["rejected"] == 0
    assert report["batches"] <= 10
    assert report["repodata_builds"] <= 10
    assert config.workers == (os.cpu_count() or 1)
    print(f"burst of {n}: {elapsed:.1f} s, {rebuilds} builds, {report['batches']} batches")


def test_files_dropped_before_start_are_ingested(
        services: Any, channel: str, config: WatchConfig, start_worker: Any) -> None:
    paths = build_many(drop_dir(config, CH), 20, prefix="early")
    start_worker()
    wait_for(lambda: listed(services) == {p.name for p in paths})


# --- status, CLI, settings ------------------------------------------------------------------
def test_status_api_is_for_admins(services: Any, channel: str, config: WatchConfig,
                                  testapp: Any, admin_headers: dict[str, str],
                                  start_worker: Any) -> None:
    testapp.get("/api/v1/watch", status=401)
    build_many(drop_dir(config, CH), 3, prefix="stat")
    (drop_dir(config, CH) / "junk.conda").write_bytes(b"junk")
    report = testapp.get("/api/v1/watch", headers=admin_headers).json
    assert report["pending"] == 4
    assert report["running"] is False
    assert report["folders"] == [{"channel": CH, "path": str(config.root / CH),
                                  "channel_exists": True, "pending": 4}]
    start_worker()
    wait_for(lambda: testapp.get("/api/v1/watch", headers=admin_headers).json["processed"] == 3)
    report = testapp.get("/api/v1/watch", headers=admin_headers).json
    assert report["running"] is True
    wait_for(lambda: testapp.get("/api/v1/watch", headers=admin_headers).json["rejected"] == 1)
    report = testapp.get("/api/v1/watch", headers=admin_headers).json
    assert report["last_error"]["file"] == f"{CH}/junk.conda"
    assert report["pending"] == 0


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    env.update(REPOPROXY_WATCH__QUIET_SECONDS="0.2", REPOPROXY_WATCH__POLL_INTERVAL="0.1")
    return subprocess.run([sys.executable, "-m", "repoproxy", "watch", "--root", str(root),
                           *args], capture_output=True, text=True, env=env, timeout=120,
                          check=False)


def test_cli_once_ingests_and_status_works_without_a_server(
        services: Any, channel: str, config: WatchConfig, root: Path) -> None:
    paths = build_many(drop_dir(config, CH), 5, prefix="cli")
    before = json.loads(_cli(root, "--status").stdout)
    assert before["pending"] == 5
    assert before["running"] is False
    done = _cli(root, "--once", "--timeout", "60")
    assert done.returncode == 0, done.stderr
    assert "processed 5" in done.stdout
    assert listed(services) == {p.name for p in paths}
    after = json.loads(_cli(root, "--status").stdout)
    assert (after["pending"], after["processed"], after["rejected"]) == (0, 5, 0)


def test_only_one_worker_processes_a_root(services: Any, channel: str, config: WatchConfig,
                                          start_worker: Any) -> None:
    start_worker()
    wait_for(lambda: worker_running(config))
    second = WatchWorker(services, config)
    assert second.run(until_idle=True, timeout=1) is False  # a standby, not a second writer


def test_bad_watch_setting_stops_start_up(settings: dict[str, Any]) -> None:
    from repoproxy.domain.core import load_core
    from repoproxy.web.app import make_app

    svc = load_core(dict(settings, **{"repoproxy_watch.duplicates": "sometimes"}), {})
    try:
        with pytest.raises(ConfigError, match=r"repoproxy_watch\.duplicates"):
            make_app(svc)
    finally:
        svc.close()


def test_default_root_is_watch_under_the_server_root(services: Any, root: Path) -> None:
    config = WatchConfig.from_settings(services.settings)
    assert config.root == root.resolve() / "watch"
    assert config.processed_dir is None
    assert config.duplicates == "reject"
    assert config.create_channels is False
    assert config.create_privacy == "private"


def test_a_burst_is_published_once_though_committed_in_batches(
        services: Any, channel: str, config: WatchConfig) -> None:
    """Several batches (batch_size 4) of one burst, one repodata build: the indexes are built
    when nothing else is arriving, not once per batch."""
    import dataclasses

    paths = build_many(drop_dir(config, CH), 14, prefix="onebuild")
    builds = services.indexer.builds
    worker = WatchWorker(services, dataclasses.replace(config, batch_size=4, quiet_seconds=0))
    assert worker.run(until_idle=True, timeout=60)
    assert listed(services) == {p.name for p in paths}
    report = status(services, config)
    assert report["batches"] >= 2
    assert services.indexer.builds - builds == 1
    assert report["repodata_builds"] == 1


def test_a_steady_stream_is_published_every_batch_wait(
        services: Any, channel: str, config: WatchConfig) -> None:
    """Committed files wait for the burst's end at most batch_wait seconds."""
    import dataclasses

    from repoproxy_watch.batcher import Batcher
    from repoproxy_watch.tracker import Tracker

    build_many(drop_dir(config, CH), 2, prefix="stream")
    cfg = dataclasses.replace(config, batch_size=1, quiet_seconds=0, batch_wait=0.3)
    tracker = Tracker(cfg.quiet_seconds)
    batcher = Batcher(services, cfg, tracker)
    try:
        from repoproxy_watch import folder

        tracker.observe(folder.scan(cfg))
        batcher.take(tracker.ready(), {CH})
        while batcher.in_flight:
            batcher.collect(timeout=5)
        for name in batcher.due(idle=False):
            batcher.flush(name)
        batcher.publish_due(idle=False)  # more is coming (not idle), and nothing waited yet
        assert len(listed(services)) == 0
        assert batcher.next_due_in() is not None
        time.sleep(0.35)
        batcher.publish_due(idle=False)  # still not idle, but the first commit waited enough
        assert len(listed(services)) == 2
    finally:
        batcher.close()

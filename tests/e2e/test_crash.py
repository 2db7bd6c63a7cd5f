"""SIGKILL a real `repoproxy serve` in the middle of writes; the restarted server must be whole.

After each kill the server is restarted on the same root (start-up recovery runs) and:
repodata.json lists exactly the package files present in ``channels/<ch>/noarch`` with their
sha256, every listed file downloads with that sha256, ``root/tmp`` is empty, no temporary or
backup file stays in the channel, every upload that was acknowledged (201) survived, and a file
that was being written when the server died is either absent (404) or complete.
Loopback only; every wait is bounded.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import zstandard

from repoproxy.names import is_package_filename
from repoproxy.testing.fixtures import RunningServer
from repoproxy.testing.packages import PackageSpec, build_many, build_package

pytestmark = pytest.mark.e2e

CH = "crash"
TIMEOUT = 60  # seconds, for every HTTP call and every wait
BIG_PAYLOAD = 20 * 1024 * 1024
CHUNK = 256 * 1024


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            h.update(block)
    return h.hexdigest()


def wait_for(
    predicate: Callable[[], bool], timeout: float = TIMEOUT, interval: float = 0.0005
) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid ~20 MB package: one payload file of random bytes (incompressible)."""
    blob = random.Random(20).randbytes(BIG_PAYLOAD)
    path = build_package(
        PackageSpec("big", "1.0", files={"share/big/blob.bin": blob}),
        tmp_path_factory.mktemp("big"),
        "conda",
    )
    assert path.stat().st_size > BIG_PAYLOAD
    return path


@dataclass
class Crash:
    """One server root, its current server, and every package file we ever sent it."""

    factory: Callable[..., RunningServer]
    root: Path
    srv: RunningServer
    token: str
    sources: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    acked: set[str] = field(default_factory=set)  # uploads answered 201

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def noarch(self) -> Path:
        return self.root / "channels" / CH / "noarch"

    def url(self, path: str) -> str:
        return f"{self.srv.url}{path}"

    def remember(self, path: Path) -> None:
        sha = sha256_file(path)
        assert self.sources.setdefault(path.name, sha) == sha, "two different files, one name"

    def upload(self, path: Path, *, multipart: bool = False) -> requests.Response:
        """One upload in a prefix.dev wire form (raw body or multipart)."""
        self.remember(path)
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if multipart:
            files = {
                "file": (
                    path.name,
                    data,
                    "application/octet-stream",
                    {"X-File-Name": path.name, "X-File-SHA256": sha},
                )
            }
            r = requests.post(
                self.url(f"/api/v1/upload/{CH}"), files=files, headers=self.auth, timeout=TIMEOUT
            )
        else:
            r = requests.post(
                self.url(f"/api/v1/upload/{CH}"),
                data=data,
                timeout=TIMEOUT,
                headers={
                    **self.auth,
                    "X-File-Name": path.name,
                    "X-File-SHA256": sha,
                    "Content-Type": "application/octet-stream",
                },
            )
        if r.status_code == 201:
            self.acked.add(path.name)
        return r

    def kill(self) -> None:
        assert self.srv.proc is not None
        assert self.srv.proc.poll() is None, "the server died before the kill"
        code = self.srv.stop(signal.SIGKILL, timeout=TIMEOUT)
        assert code == -signal.SIGKILL

    def restart(self) -> None:
        self.srv = self.factory(self.root)

    def catalog_rows(self) -> int:
        """Rows in the catalog, read (read-only) beside the running server."""
        with sqlite3.connect(
            f"file:{self.root / 'catalog.db'}?mode=ro", uri=True, timeout=TIMEOUT
        ) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM packages").fetchone()[0])

    # --- the invariants -------------------------------------------------------------------
    def check(self) -> dict[str, str]:
        """Everything that must hold after a restart; returns the listed files' sha256."""
        r = requests.get(self.url(f"/{CH}/noarch/repodata.json"), timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        repodata = r.json()
        records = {**repodata["packages"], **repodata["packages.conda"]}
        listed = {fn: rec["sha256"] for fn, rec in records.items()}

        on_disk = {
            p.name: sha256_file(p)
            for p in self.noarch.iterdir()
            if p.is_file() and is_package_filename(p.name)
        }
        assert listed == on_disk, "repodata.json does not list exactly the files on disk"
        for fn, sha in listed.items():
            assert self.sources.get(fn) == sha, f"{fn} is not a file we sent (partial?)"
            assert records[fn]["size"] == (self.noarch / fn).stat().st_size
            body = requests.get(self.url(f"/{CH}/noarch/{fn}"), timeout=TIMEOUT).content
            assert hashlib.sha256(body).hexdigest() == sha, f"{fn} downloads wrong bytes"
        for fn in set(self.sources) - set(listed):
            r = requests.get(self.url(f"/{CH}/noarch/{fn}"), timeout=TIMEOUT)
            assert r.status_code == 404, f"{fn} is served but not listed"
        lost = self.acked - set(listed)
        assert not lost, f"acknowledged uploads lost in the crash: {sorted(lost)}"

        assert list((self.root / "tmp").iterdir()) == [], "temporary files survived a restart"
        strays = [p.name for p in self.noarch.rglob(".*") if p.name != ".hidden.json"]
        assert strays == [], f"temporary or backup files in the channel: {strays}"

        # the catalog, the twins and the API agree with repodata.json
        raw = (self.noarch / "repodata.json").read_bytes()
        assert json.loads(raw) == repodata
        assert gzip.decompress((self.noarch / "repodata.json.gz").read_bytes()) == raw
        zst = (self.noarch / "repodata.json.zst").read_bytes()
        assert zstandard.ZstdDecompressor().decompressobj().decompress(zst) == raw
        files = requests.get(
            self.url(f"/api/v1/channels/{CH}/files"), headers=self.auth, timeout=TIMEOUT
        ).json()["files"]
        assert {f["filename"]: f["sha256"] for f in files} == listed
        return listed


@pytest.fixture
def crash(server_factory: Callable[..., RunningServer], tmp_path: Path) -> Crash:
    """A server with a public channel already holding a few packages (both formats)."""
    root = tmp_path / "root"
    srv = server_factory(root)
    token = srv.token("--admin", "--name", "a")
    c = Crash(server_factory, root, srv, token)
    r = requests.post(c.url("/api/v1/channels"), json={"name": CH}, headers=c.auth, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    pkgs = tmp_path / "pkgs"
    for i, fmt in enumerate(("conda", "tar.bz2", "conda")):
        path = build_package(
            PackageSpec(f"base{i}", "1.0", depends=["big"] if i else []), pkgs, fmt
        )
        r = c.upload(path, multipart=bool(i % 2))
        assert r.status_code == 201, r.text
    assert len(c.check()) == 3
    return c


# --- (a) a large upload, killed at several moments ------------------------------------------
class SlowBody:
    """A file-like body with a length (so a Content-Length is sent), read slowly."""

    def __init__(self, data: bytes, on_fraction: Callable[[float], None]) -> None:
        self.data, self.pos, self.on_fraction = data, 0, on_fraction

    def __len__(self) -> int:
        return len(self.data)

    def read(self, size: int = -1) -> bytes:
        chunk = self.data[self.pos : self.pos + CHUNK]
        self.pos += len(chunk)
        self.on_fraction(self.pos / len(self.data))
        time.sleep(0.005)
        return chunk


def _slow_chunks(data: bytes, on_fraction: Callable[[float], None]) -> Iterator[bytes]:
    for start in range(0, len(data), CHUNK):
        chunk = data[start : start + CHUNK]
        on_fraction((start + len(chunk)) / len(data))
        yield chunk
        time.sleep(0.005)


def _tmp_upload_present(root: Path) -> bool:
    try:
        return any(p.name.startswith(".in-") for p in (root / "tmp").iterdir())
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    "moment", ["mid-body-chunked", "mid-body-length", "writing-tmp", "renamed-into-place"]
)
def test_kill_during_large_upload(crash: Crash, big: Path, moment: str) -> None:
    data = big.read_bytes()
    crash.remember(big)
    dest = crash.noarch / big.name
    halfway = threading.Event()
    outcome: dict[str, Any] = {}

    def progress(fraction: float) -> None:
        if fraction >= 0.5:
            halfway.set()

    def send() -> None:
        body: Any = (
            _slow_chunks(data, progress)
            if moment == "mid-body-chunked"
            else SlowBody(data, progress)
        )
        headers = {
            **crash.auth,
            "X-File-Name": big.name,
            "Content-Type": "application/octet-stream",
            "X-File-SHA256": hashlib.sha256(data).hexdigest(),
        }
        try:
            r = requests.post(
                crash.url(f"/api/v1/upload/{CH}"), data=body, headers=headers, timeout=TIMEOUT
            )
            outcome["status"] = r.status_code
        except requests.RequestException as e:
            outcome["error"] = e

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    if moment.startswith("mid-body"):
        assert halfway.wait(TIMEOUT)
    elif moment == "writing-tmp":
        # the body is complete (waitress buffers it), the app streams it into root/tmp
        assert wait_for(lambda: _tmp_upload_present(crash.root) or "status" in outcome)
    else:
        assert wait_for(lambda: dest.exists() or "status" in outcome)
    crash.kill()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    if moment != "renamed-into-place":  # there the answer may win the race: also fine
        assert "error" in outcome, f"the upload was answered before the kill: {outcome}"
    if outcome.get("status") == 201:
        crash.acked.add(big.name)

    crash.restart()
    listed = crash.check()
    assert set(listed) - {big.name} == {
        "base0-1.0-0.conda",
        "base1-1.0-0.tar.bz2",
        "base2-1.0-0.conda",
    }

    # a client retries: the file is either already there whole (409) or goes in now
    r = crash.upload(big)
    assert r.status_code == (409 if big.name in listed else 201), r.text
    assert crash.check()[big.name] == crash.sources[big.name]


# --- (b) many uploads from threads, killed in the middle ------------------------------------
@pytest.mark.parametrize("kill_after", [3, 20])
def test_kill_during_concurrent_uploads(crash: Crash, tmp_path: Path, kill_after: int) -> None:
    paths = build_many(tmp_path / "many", 40, "conda", prefix="many")
    paths += build_many(tmp_path / "many", 20, "tar.bz2", prefix="old")
    for p in paths:
        crash.remember(p)
    answered = threading.Event()
    errors: list[BaseException] = []
    statuses: list[int] = []
    lock = threading.Lock()

    def one(i: int, path: Path) -> None:
        try:
            r = crash.upload(path, multipart=bool(i % 2))
        except requests.RequestException as e:
            with lock:
                errors.append(e)
            return
        with lock:
            statuses.append(r.status_code)
            if len(statuses) >= kill_after:
                answered.set()

    with ThreadPoolExecutor(max_workers=12) as pool:
        futures = [pool.submit(one, i, p) for i, p in enumerate(paths)]
        assert answered.wait(TIMEOUT)
        crash.kill()
        for f in futures:
            f.result(timeout=TIMEOUT)
    assert set(statuses) <= {201}, statuses
    assert errors, "every upload finished before the kill"
    assert len(crash.acked) < len(paths)

    crash.restart()
    listed = crash.check()
    assert crash.acked <= set(listed)

    # the clients retry what they did not see acknowledged; the server ends up with all of it
    for p in paths:
        if p.name not in crash.acked:
            r = crash.upload(p)
            assert r.status_code == (409 if p.name in listed else 201), r.text
    assert set(crash.check()) >= {p.name for p in paths}


# --- (c) a reindex, killed while it works ---------------------------------------------------
def _drop_in(crash: Crash, paths: list[Path]) -> None:
    """Put package files straight into the channel directory (as an rsync would)."""
    for p in paths:
        crash.remember(p)
        tmp = crash.noarch / f".drop-{p.name}"
        shutil.copyfile(p, tmp)
        os.replace(tmp, crash.noarch / p.name)


@pytest.mark.parametrize("moment", ["reconciling", "building"])
def test_kill_during_reindex(crash: Crash, tmp_path: Path, moment: str) -> None:
    paths = build_many(tmp_path / "drop", 300, "conda", prefix="drop")
    _drop_in(crash, paths)
    base = crash.catalog_rows()
    total = base + len(paths)
    outcome: dict[str, Any] = {}

    def reindex() -> None:
        try:
            r = requests.post(
                crash.url(f"/api/v1/reindex/{CH}/noarch"), headers=crash.auth, timeout=TIMEOUT
            )
            outcome["status"] = r.status_code
            outcome["body"] = r.text
        except requests.RequestException as e:
            outcome["error"] = e

    thread = threading.Thread(target=reindex, daemon=True)
    thread.start()
    # "building": every row is in, the indexes are being rewritten
    target = base + len(paths) // 3 if moment == "reconciling" else total
    assert wait_for(
        lambda: crash.catalog_rows() >= target or "status" in outcome, interval=0.002
    ), "the reindex made no progress"
    crash.kill()
    thread.join(TIMEOUT)
    assert not thread.is_alive()
    if moment == "reconciling":
        assert "error" in outcome, f"the reindex finished before the kill: {outcome}"
        assert crash.catalog_rows() < total

    crash.restart()
    listed = crash.check()
    assert set(listed) >= {p.name for p in paths}
    assert len(listed) == total

    # and a reindex now finds nothing left to do
    r = requests.post(
        crash.url(f"/api/v1/reindex/{CH}/noarch"), headers=crash.auth, timeout=TIMEOUT
    )
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("added", "updated", "removed", "invalid")} == {
        "added": 0,
        "updated": 0,
        "removed": 0,
        "invalid": 0,
    }
    assert crash.check() == listed


# --- what a crash leaves behind, planted by hand ---------------------------------------------
def test_restart_removes_leftovers_of_interrupted_writes(crash: Crash, tmp_path: Path) -> None:
    """Deterministic version of the kills above: every kind of leftover at once."""
    import subprocess
    import sys

    crash.kill()
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=TIMEOUT,
    )
    dead_pid = int(dead.stdout)
    noarch = crash.noarch
    base = noarch / "base0-1.0-0.conda"
    planted = [
        crash.root / "tmp" / ".in-abcd-half-1.0-0.conda",  # an upload being received
        noarch / ".tmp-abcd-repodata.json",  # an index being rewritten
        noarch / ".tmp-efgh-repodata.json.gz",
        noarch / "shards" / f".tmp-ijkl-{'0' * 64}.msgpack.zst",
        noarch.parent / ".tmp-mnop-channeldata.json",
    ]
    for p in planted:
        p.write_bytes(b"partial")
    backup = noarch / f".bak-{dead_pid}-{base.name}"  # a forced replacement in flight
    os.link(base, backup)
    # renamed into place, but the catalog row was never committed
    late = build_package(PackageSpec("late", "1.0"), tmp_path / "late", "tar.bz2")
    crash.remember(late)
    shutil.copyfile(late, noarch / late.name)

    crash.restart()
    listed = crash.check()
    assert late.name in listed
    for p in [*planted, backup]:
        assert not p.exists(), p
    assert base.exists()
    assert "removed" in crash.srv.log_path.read_text()

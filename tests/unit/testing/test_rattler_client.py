"""Tests for :mod:`repoproxy.testing.rattler_client` against throw-away local channels.

The channels are built here from hand-made ``.conda`` files, indexed by py-rattler's own
indexer and served by ``http.server``, so no other repoproxy module is involved.  Besides
checking the client wrapper, the tests pin down what py-rattler 0.28 sends on the wire
(shard index first, HEAD probes for flat repodata, auth keyed by host, ``/t/<token>/``
kept verbatim) because the server is written against exactly that behaviour.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard

from repoproxy.testing.rattler_client import (
    RattlerResult,
    _parse_last_line,
    fetch_repodata,
    install,
    solve,
)

PLATFORMS = ["linux-64", "noarch"]
BUILD_TIMESTAMP_MS = 1_700_000_000_000
TOKEN = "secret-1"

# name, version, depends: alpha pulls in the newest beta; gamma must never be installed.
PACKAGES = [
    ("alpha", "1.0", ["beta >=2"]),
    ("beta", "1.0", []),
    ("beta", "2.0", []),
    ("gamma", "0.1", []),
]

# Indexing runs in a child for the same reason the client does: py-rattler 0.28 may
# crash at interpreter exit, so leave with os._exit once the work is done.
_INDEX_SCRIPT = """
import asyncio, os, sys
from rattler.index import index_fs
try:
    asyncio.run(index_fs(sys.argv[1], write_shards=sys.argv[2] == "1"))
except BaseException as exc:
    print(f"indexing failed: {exc!r}", file=sys.stderr, flush=True)
    os._exit(1)
os._exit(0)
"""

# A static file server that logs every request as a JSON line (with the headers we
# care about), optionally demands a bearer token, and serves /t/<token>/<path> as
# <path> the way repoproxy's token URLs look.  The logged path is the raw one.
_LOGGING_SERVER = """
import functools, http.server, json, re, sys, threading
root, port, log_path, token = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
token_prefix = re.compile(r"^/t/[^/]+(/.*)$")
lock = threading.Lock()

class Handler(http.server.SimpleHTTPRequestHandler):
    def _admit(self):
        entry = {
            "method": self.command,
            "path": self.path,
            "accept_encoding": self.headers.get("Accept-Encoding"),
            "if_none_match": self.headers.get("If-None-Match"),
            "if_modified_since": self.headers.get("If-Modified-Since"),
            "authorization": self.headers.get("Authorization"),
        }
        with lock, open(log_path, "a") as log:
            log.write(json.dumps(entry) + "\\n")
        if token and self.headers.get("Authorization") != "Bearer " + token:
            self.send_error(401)
            return False
        match = token_prefix.match(self.path)
        if match:
            self.path = match.group(1)
        return True

    def do_GET(self):
        if self._admit():
            super().do_GET()

    def do_HEAD(self):
        if self._admit():
            super().do_HEAD()

    def log_message(self, format, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # rattler drops connections after a 401; that is not a server bug.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

Server(("127.0.0.1", port), functools.partial(Handler, directory=root)).serve_forever()
"""

# `python -m http.server` logs `"GET /path HTTP/1.1" 404 -` lines to stderr.
_HTTP_SERVER_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')


def _tar_zst(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            info.mtime = BUILD_TIMESTAMP_MS // 1000
            tar.addfile(info, io.BytesIO(content))
    return zstandard.ZstdCompressor().compress(buffer.getvalue())


def _payload_path(name: str) -> str:
    return f"share/rattler-client-test/{name}.txt"


def _make_conda(directory: Path, name: str, version: str, depends: list[str]) -> Path:
    """Write a CEP-34 ``.conda`` (uncompressed zip of two zstd tarballs)."""
    stem = f"{name}-{version}-0"
    payload = {_payload_path(name): f"{name} {version}\n".encode()}
    index = {
        "name": name,
        "version": version,
        "build": "0",
        "build_number": 0,
        "depends": depends,
        "subdir": "noarch",
        "noarch": "generic",
        "timestamp": BUILD_TIMESTAMP_MS,
        "license": "MIT",
    }
    paths = {
        "paths": [
            {
                "_path": path,
                "path_type": "hardlink",
                "sha256": hashlib.sha256(content).hexdigest(),
                "size_in_bytes": len(content),
            }
            for path, content in payload.items()
        ],
        "paths_version": 1,
    }
    info = {
        "info/index.json": json.dumps(index).encode(),
        "info/paths.json": json.dumps(paths).encode(),
        "info/files": "".join(f"{path}\n" for path in payload).encode(),
        "info/about.json": json.dumps({"summary": f"{name} test package"}).encode(),
    }
    target = directory / f"{stem}.conda"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("metadata.json", json.dumps({"conda_pkg_format_version": 2}))
        archive.writestr(f"pkg-{stem}.tar.zst", _tar_zst(payload))
        archive.writestr(f"info-{stem}.tar.zst", _tar_zst(info))
    return target


def _build_channel(channel: Path, *, write_shards: bool) -> None:
    (channel / "noarch").mkdir(parents=True)
    (channel / "linux-64").mkdir()
    for name, version, depends in PACKAGES:
        _make_conda(channel / "noarch", name, version, depends)
    index = subprocess.run(
        [sys.executable, "-c", _INDEX_SCRIPT, str(channel), "1" if write_shards else "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert index.returncode == 0, index.stderr
    assert (channel / "noarch" / "repodata.json").is_file()
    assert (channel / "noarch" / "repodata_shards.msgpack.zst").exists() == write_shards


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server child process plus the log its requests are read back from."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    json_log: bool

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def mark(self) -> int:
        # Requests are read from a byte offset rather than by truncating the log:
        # the server holds the file open and truncation would leave NUL padding.
        return self.log_path.stat().st_size

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        with open(self.log_path, "rb") as log:
            log.seek(since)
            lines = log.read().decode().splitlines()
        if self.json_log:
            return [json.loads(line) for line in lines if line.strip()]
        return [
            {**match.groupdict(), "status": int(match["status"])}
            for match in map(_HTTP_SERVER_LINE.search, lines)
            if match
        ]


def _start_server(argv: list[str], port: int, log_path: Path, *, json_log: bool) -> Server:
    stderr_path = log_path if not json_log else log_path.with_suffix(".stderr")
    log_path.touch()
    with open(stderr_path, "ab") as stderr:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 15
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early: {stderr_path.read_text()}")
        try:
            # A bare connect is not logged by http.server (no request line), so
            # waiting does not pollute the request log the tests inspect.
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if time.monotonic() > deadline:
                _stop(process)
                raise
            time.sleep(0.05)
    return Server(process=process, port=port, log_path=log_path, json_log=json_log)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="module")
def channels_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``chan`` has flat repodata only; ``sharded`` also has the CEP-16 shard index."""
    root = tmp_path_factory.mktemp("channels")
    _build_channel(root / "chan", write_shards=False)
    _build_channel(root / "sharded", write_shards=True)
    return root


@pytest.fixture(scope="module")
def plain_server(channels_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    port = _free_port()
    log_path = tmp_path_factory.mktemp("plain-server") / "access.log"
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]
    argv += ["--directory", str(channels_root), str(port)]
    server = _start_server(argv, port, log_path, json_log=False)
    yield server
    _stop(server.process)


def _logging_server(root: Path, log_dir: Path, token: str) -> Server:
    port = _free_port()
    log_path = log_dir / "requests.jsonl"
    argv = [sys.executable, "-c", _LOGGING_SERVER, str(root), str(port), str(log_path), token]
    return _start_server(argv, port, log_path, json_log=True)


@pytest.fixture(scope="module")
def logging_server(
    channels_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    server = _logging_server(channels_root, tmp_path_factory.mktemp("logging-server"), "")
    yield server
    _stop(server.process)


@pytest.fixture(scope="module")
def auth_server(channels_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = _logging_server(channels_root, tmp_path_factory.mktemp("auth-server"), TOKEN)
    yield server
    _stop(server.process)


def _versions(result: RattlerResult) -> dict[str, str]:
    return {record["name"]: record["version"] for record in result.records}


def _assert_single_json_line(result: RattlerResult) -> None:
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    assert json.loads(lines[0]) == result.data


def _assert_installed(prefix: Path) -> None:
    assert (prefix / _payload_path("alpha")).read_text() == "alpha 1.0\n"
    assert (prefix / _payload_path("beta")).read_text() == "beta 2.0\n"
    assert not (prefix / _payload_path("gamma")).exists()
    assert (prefix / "conda-meta" / "alpha-1.0-0.json").is_file()
    assert (prefix / "conda-meta" / "beta-2.0-0.json").is_file()


def _write_auth_file(path: Path, host: str, token: str = TOKEN) -> Path:
    path.write_text(json.dumps({host: {"BearerToken": token}}))
    return path


@pytest.mark.parametrize("use_shards", [True, False])
def test_solve_against_plain_http_server(plain_server: Server, use_shards: bool) -> None:
    channel = f"{plain_server.base_url}/chan"
    mark = plain_server.mark()

    result = solve([channel], ["alpha"], PLATFORMS, use_shards=use_shards)

    assert result.ok, result
    _assert_single_json_line(result)
    assert _versions(result) == {"alpha": "1.0", "beta": "2.0"}
    for record in result.records:
        assert record["url"] == f"{channel}/noarch/{record['file_name']}"
        assert record["subdir"] == "noarch"
        assert record["build"] == "0"
    seen = plain_server.requests(mark)
    shard_index = [r for r in seen if r["path"].endswith("/repodata_shards.msgpack.zst")]
    if use_shards:
        # No shard index on disk: rattler asks for it, gets 404, falls back to flat.
        assert shard_index
        assert {r["status"] for r in shard_index} == {404}
    else:
        assert not shard_index
    assert {"method": "GET", "path": "/chan/noarch/repodata.json.zst", "status": 200} in seen


@pytest.mark.parametrize("use_shards", [True, False])
def test_install_against_plain_http_server(
    plain_server: Server, tmp_path: Path, use_shards: bool
) -> None:
    prefix = tmp_path / "env"
    mark = plain_server.mark()

    result = install(
        [f"{plain_server.base_url}/chan"], ["alpha"], prefix, PLATFORMS, use_shards=use_shards
    )

    assert result.ok, result
    _assert_single_json_line(result)
    assert result.data["prefix"] == str(prefix)
    assert _versions(result) == {"alpha": "1.0", "beta": "2.0"}
    _assert_installed(prefix)
    downloads = {r["path"] for r in plain_server.requests(mark) if r["path"].endswith(".conda")}
    assert downloads == {"/chan/noarch/alpha-1.0-0.conda", "/chan/noarch/beta-2.0-0.conda"}


@pytest.mark.parametrize("use_shards", [True, False])
def test_shards_toggle_on_a_sharded_channel(
    logging_server: Server, tmp_path: Path, use_shards: bool
) -> None:
    prefix = tmp_path / "env"
    mark = logging_server.mark()

    result = install(
        [f"{logging_server.base_url}/sharded"],
        ["alpha"],
        prefix,
        PLATFORMS,
        use_shards=use_shards,
    )

    assert result.ok, result
    _assert_installed(prefix)
    paths = [r["path"] for r in logging_server.requests(mark)]
    sharded = [p for p in paths if "/shards/" in p or p.endswith("repodata_shards.msgpack.zst")]
    flat = [p for p in paths if "/repodata.json" in p]
    if use_shards:
        assert "/sharded/noarch/repodata_shards.msgpack.zst" in sharded
        assert any("/sharded/noarch/shards/" in p for p in sharded)
        assert not flat
    else:
        assert not sharded
        assert "/sharded/noarch/repodata.json.zst" in flat


@pytest.mark.parametrize("use_shards", [True, False])
def test_fetch_repodata_returns_every_record_of_the_names(
    logging_server: Server, use_shards: bool
) -> None:
    result = fetch_repodata(
        [f"{logging_server.base_url}/sharded"], PLATFORMS, ["beta"], use_shards=use_shards
    )

    assert result.ok, result
    _assert_single_json_line(result)
    assert sorted((r["name"], r["version"]) for r in result.records) == [
        ("beta", "1.0"),
        ("beta", "2.0"),
    ]


def test_each_call_gets_a_fresh_cache_unless_one_is_shared(
    logging_server: Server, tmp_path: Path
) -> None:
    channel = f"{logging_server.base_url}/chan"

    def repodata_gets(mark: int) -> list[dict[str, Any]]:
        return [
            r
            for r in logging_server.requests(mark)
            if r["method"] == "GET" and "/repodata.json" in r["path"]
        ]

    for _ in range(2):
        mark = logging_server.mark()
        assert solve([channel], ["alpha"], PLATFORMS, use_shards=False).ok
        gets = repodata_gets(mark)
        assert gets
        assert all(r["if_modified_since"] is None and r["if_none_match"] is None for r in gets)

    shared = tmp_path / "cache"
    assert solve([channel], ["alpha"], PLATFORMS, use_shards=False, cache_dir=shared).ok
    mark = logging_server.mark()
    assert solve([channel], ["alpha"], PLATFORMS, use_shards=False, cache_dir=shared).ok
    # http.server sends Last-Modified but no ETag, so revalidation uses the date only.
    gets = repodata_gets(mark)
    assert gets
    assert all(r["if_modified_since"] for r in gets)


@pytest.mark.parametrize("use_shards", [True, False])
def test_auth_file_supplies_the_bearer_token(
    auth_server: Server, tmp_path: Path, use_shards: bool
) -> None:
    auth_file = _write_auth_file(tmp_path / "auth.json", "127.0.0.1")
    prefix = tmp_path / "env"
    mark = auth_server.mark()

    result = install(
        [f"{auth_server.base_url}/chan"],
        ["alpha"],
        prefix,
        PLATFORMS,
        auth_file=auth_file,
        use_shards=use_shards,
    )

    assert result.ok, result
    _assert_installed(prefix)
    seen = auth_server.requests(mark)
    # Repodata (including HEAD probes) and package downloads all carry the token.
    assert any(r["path"].endswith(".conda") for r in seen)
    assert {r["authorization"] for r in seen} == {f"Bearer {TOKEN}"}


def test_install_without_credentials_is_rejected(auth_server: Server, tmp_path: Path) -> None:
    prefix = tmp_path / "env"

    result = install([f"{auth_server.base_url}/chan"], ["alpha"], prefix, PLATFORMS)

    assert result.returncode == 1
    assert not result.ok
    assert "401" in result.data["error"]
    _assert_single_json_line(result)
    assert not (prefix / "conda-meta").exists()


def test_credentials_are_keyed_by_host_without_port(auth_server: Server, tmp_path: Path) -> None:
    # Characterises py-rattler 0.28: the lookup key is the bare host, so an entry
    # "127.0.0.1:<port>" is never used (and "127.0.0.1" applies to every port).
    auth_file = _write_auth_file(tmp_path / "auth.json", f"127.0.0.1:{auth_server.port}")
    mark = auth_server.mark()

    result = solve([f"{auth_server.base_url}/chan"], ["alpha"], PLATFORMS, auth_file=auth_file)

    assert result.returncode == 1
    assert "401" in result.data["error"]
    assert {r["authorization"] for r in auth_server.requests(mark)} == {None}


@pytest.mark.parametrize("use_shards", [True, False])
def test_token_path_prefix_reaches_the_server_verbatim(
    logging_server: Server, tmp_path: Path, use_shards: bool
) -> None:
    channel = f"{logging_server.base_url}/t/tok-123/sharded"
    prefix = tmp_path / "env"
    mark = logging_server.mark()

    result = install([channel], ["alpha"], prefix, PLATFORMS, use_shards=use_shards)

    assert result.ok, result
    _assert_installed(prefix)
    paths = [r["path"] for r in logging_server.requests(mark)]
    assert paths
    assert all(p.startswith("/t/tok-123/sharded/") for p in paths), paths
    assert "/t/tok-123/sharded/noarch/alpha-1.0-0.conda" in paths
    # Record URLs keep the token; only the channel's display name masks it.
    for record in result.records:
        assert record["url"].startswith(f"{channel}/noarch/")
        assert "tok-123" not in record["channel"]


def test_unsatisfiable_spec_reports_an_error_object(plain_server: Server) -> None:
    result = solve([f"{plain_server.base_url}/chan"], ["does-not-exist"], PLATFORMS)

    assert result.returncode == 1
    assert "does-not-exist" in result.data["error"]
    _assert_single_json_line(result)


def test_timeout_returns_an_error_result(plain_server: Server) -> None:
    result = solve([f"{plain_server.base_url}/chan"], ["alpha"], PLATFORMS, timeout=0.01)

    assert result.returncode < 0
    assert "timed out" in result.data["error"]


@pytest.mark.parametrize(
    ("stdout", "expected"),
    [
        ('log line\n{"records": []}\n', {"records": []}),
        ('{"error": "boom"}\n\n', {"error": "boom"}),
    ],
)
def test_last_stdout_line_is_the_result(stdout: str, expected: dict[str, Any]) -> None:
    assert _parse_last_line(stdout, 0) == expected


@pytest.mark.parametrize("stdout", ["", "not json\n", "[1, 2]\n"])
def test_missing_json_result_becomes_an_error(stdout: str) -> None:
    assert "no JSON result" in _parse_last_line(stdout, -11)["error"]

"""File bodies go out by sendfile() (web/server.py ``SendfileBuffer``): the bytes of a
package several socket buffers long arrive whole and in order, twice on one keep-alive
connection with a 304 after them; a Range is still answered from the bytes; a client that
hangs up mid-body leaves the server serving. Loopback, a real ``repoproxy serve``."""

from __future__ import annotations

import hashlib
import io
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from repoproxy.testing.fixtures import RunningServer
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.web.server import FileSlice, SendfileBuffer

pytestmark = pytest.mark.e2e

TIMEOUT = 60.0


def test_sendfile_buffer_hands_out_slices_of_real_files(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    with path.open("rb") as f:
        buf = SendfileBuffer(f)
        assert buf.prepare(60) == 60
        chunk = buf.get(16384)
        assert isinstance(chunk, FileSlice)
        assert (chunk.offset, chunk.count) == (0, 60)
        buf.skip(50, True)
        assert (buf.get(16384).offset, buf.get(16384).count) == (50, 10)
    # no descriptor: bytes, as waitress reads them
    plain = SendfileBuffer(io.BytesIO(b"abc"))
    plain.prepare()
    assert plain.get(2) == b"ab"


def read_answer(sock: socket.socket, buffered: bytes) -> tuple[bytes, bytes, bytes]:
    """(head, body, what follows) of one answer with a Content-Length."""
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(1 << 16)
        assert chunk, "connection closed"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(1 << 20)
        assert chunk, "connection closed mid-body"
        rest += chunk
    return head, rest[:length], rest[length:]


def test_a_big_package_arrives_whole_by_sendfile(
        server_factory: Callable[..., RunningServer], tmp_path: Path) -> None:
    srv = server_factory()
    token = srv.token("--admin", "--name", "admin")
    auth = {"Authorization": f"Bearer {token}"}
    r = requests.post(f"{srv.url}/api/v1/channels", json={"name": "big", "privacy": "public"},
                      headers=auth, timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    pkg = build_package(PackageSpec("bigone", "1.0",
                                    files={"data/blob": os.urandom(3 << 20)}), tmp_path)
    data = pkg.read_bytes()
    r = requests.post(f"{srv.url}/api/v1/upload/big", data=data, timeout=TIMEOUT,
                      headers={**auth, "X-File-Name": pkg.name,
                               "Content-Type": "application/octet-stream",
                               "X-File-SHA256": hashlib.sha256(data).hexdigest()})
    assert r.status_code == 201, r.text
    url = f"/big/noarch/{pkg.name}"
    get = f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as sock:
        rest = b""
        etag = b""
        for _ in range(2):
            sock.sendall(get)
            head, body, rest = read_answer(sock, rest)
            assert head.startswith(b"HTTP/1.1 200 "), head
            assert body == data
            etag = next(line.split(b":", 1)[1].strip() for line in head.split(b"\r\n")
                        if line.lower().startswith(b"etag:"))
        sock.sendall(f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
                     + b"If-None-Match: " + etag + b"\r\n\r\n")
        head, body, rest = read_answer(sock, rest)
        assert head.startswith(b"HTTP/1.1 304 "), head
    ranged = requests.get(f"{srv.url}{url}", headers={"Range": "bytes=1000000-1000099"},
                          timeout=TIMEOUT)
    assert ranged.status_code == 206
    assert ranged.content == data[1000000:1000100]
    # hang up after the first bytes of the body, several times: the server keeps serving
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as sock:
            sock.sendall(get)
            assert sock.recv(1024)
    assert requests.get(f"{srv.url}{url}", timeout=TIMEOUT).content == data
    assert requests.get(f"{srv.url}/-/health", timeout=TIMEOUT).status_code == 200

"""A streamed body (a generator ``app_iter``) goes to the socket while the client keeps up and
through waitress's buffer when it does not (web/server.py ``RepoproxyChannel.write_soon``):
either way the bytes arrive whole and in order, framed by Content-Length or chunked, a second
answer on the same keep-alive connection follows intact, and a client that hangs up mid-body
leaves the server serving. waitress's real server on a loopback port, in this process."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from repoproxy.web.server import make_server

CHUNK = 256 * 1024
BODY = os.urandom(24 * CHUNK)  # 6 MiB: many socket buffers


def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    framed = environ["PATH_INFO"] != "/chunked"
    headers = [("Content-Type", "application/octet-stream")]
    if framed:
        headers.append(("Content-Length", str(len(BODY))))
    start_response("200 OK", headers)

    def body() -> Iterator[bytes]:
        for i in range(0, len(BODY), CHUNK):
            yield BODY[i:i + CHUNK]
    return body()


@pytest.fixture
def server() -> Iterator[int]:
    srv = make_server(app, None, host="127.0.0.1", port=0, threads=2)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        srv.close()
        srv.task_dispatcher.shutdown()


def _answer(sock: socket.socket, rest: bytes, pause: float = 0.0) -> tuple[bytes, bytes, bytes]:
    """(head, body, what follows) of one Content-Length answer, read ``pause`` apart."""
    data = rest
    while b"\r\n\r\n" not in data:
        got = sock.recv(65536)
        assert got, "connection closed"
        data += got
    head, _, data = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(data) < length:
        if pause:
            time.sleep(pause)
        got = sock.recv(65536)
        assert got, "connection closed mid-body"
        data += got
    return head, data[:length], data[length:]


def test_a_slow_client_gets_every_byte_in_order_then_the_next_answer(server: int) -> None:
    get = b"GET /framed HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server), timeout=30) as sock:
        # a small receive buffer and pauses: the server's sends come back short and the rest
        # goes through waitress's buffer
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.sendall(get)
        head, body, rest = _answer(sock, b"", pause=0.002)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert body == BODY
        sock.sendall(get)  # the same connection: nothing of the first answer is left over
        head, body, rest = _answer(sock, rest)
        assert head.startswith(b"HTTP/1.1 200 ")
        assert body == BODY
        assert rest == b""


def test_a_fast_client_and_a_chunked_body(server: int) -> None:
    with requests.Session() as s:
        for path in ("/framed", "/chunked", "/framed"):
            r = s.get(f"http://127.0.0.1:{server}{path}", timeout=30)
            assert r.status_code == 200
            assert r.content == BODY
        assert r.headers["Content-Length"] == str(len(BODY))


def test_a_client_hanging_up_mid_body_leaves_the_server_serving(server: int) -> None:
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server), timeout=30) as sock:
            sock.sendall(b"GET /framed HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(1024)
    assert requests.get(f"http://127.0.0.1:{server}/framed", timeout=30).content == BODY


def _channel_pair() -> tuple[Any, socket.socket, Any]:
    """(a channel of a server whose event loop never runs, the client's end, the server)."""
    from repoproxy.web.server import RepoproxyChannel

    srv = make_server(app, None, host="127.0.0.1", port=0, threads=1)
    ours, theirs = socket.socketpair()
    channel = RepoproxyChannel(srv, ours, ("127.0.0.1", 1), srv.adj, map={})
    return channel, theirs, srv


def _file_body(tmp_path: Any, data: bytes, name: str = "body") -> Any:
    from repoproxy.web.server import SendfileBuffer

    path = tmp_path / name
    path.write_bytes(data)
    body = SendfileBuffer(open(path, "rb"))  # noqa: SIM115 - the channel closes it
    body.prepare()
    return body


def test_a_small_file_body_is_sent_by_the_requests_thread(tmp_path: Any) -> None:
    """A file body under waitress's send_bytes (a shard, a shard index) goes out at once, from
    the thread that writes it: waitress left it to its event loop, which had to win the GIL
    from the busy request threads first. Here the loop never runs: the bytes arrive anyway."""
    channel, client, srv = _channel_pair()
    try:
        data = os.urandom(3000)
        body = _file_body(tmp_path, data)
        assert channel.write_soon(b"HEAD\r\n\r\n") == 8
        assert channel.write_soon(body) == len(data)
        assert channel.total_outbufs_len == 0  # nothing left for the event loop
        assert body.file.closed  # closed once sent, as waitress closes a sent buffer
        client.settimeout(5)
        got = b""
        while len(got) < 8 + len(data):
            got += client.recv(65536)
        assert got == b"HEAD\r\n\r\n" + data
    finally:
        client.close()
        channel.close()
        srv.close()
        srv.task_dispatcher.shutdown()


def test_a_file_body_the_socket_cannot_take_at_once_is_finished_by_the_event_loop(
        tmp_path: Any) -> None:
    """What the socket does not take goes to waitress's buffers, whose flushes (the event
    loop's ``handle_write``) send the rest in order; output pending before a file body keeps
    the file behind it."""
    channel, client, srv = _channel_pair()
    try:
        data = os.urandom(8 << 20)  # more than any socket buffer
        body = _file_body(tmp_path, data)
        channel.write_soon(body)
        pending = channel.total_outbufs_len
        assert 0 < pending < len(data)  # a part went at once, the rest waits
        later = _file_body(tmp_path, b"after", "later")  # written while output is pending
        channel.write_soon(later)
        assert channel.total_outbufs_len == pending + 5
        client.settimeout(5)
        got = b""
        while len(got) < len(data) + 5:
            if channel.total_outbufs_len:
                channel.handle_write()  # what the event loop does when the socket is writable
            try:
                got += client.recv(1 << 20)
            except TimeoutError:
                break
        assert got == data + b"after"
        assert channel.total_outbufs_len == 0
        assert body.file.closed
    finally:
        client.close()
        channel.close()
        srv.close()
        srv.task_dispatcher.shutdown()

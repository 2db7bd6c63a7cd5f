"""Hardening of the server process, against a real ``repoproxy serve`` on loopback.

* an idle-connection flood neither kills the server nor keeps real clients out, and idle
  connections are closed after a bounded time;
* an upload without acceptable credentials (or with an over-limit Content-Length) is refused
  as soon as its headers arrive, before any body is read;
* an undecodable query string or path is a 400 with one log line, not a 500 and a traceback;
* no log line, from any logger, ever carries a token.

Every wait is bounded; only loopback addresses are used.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from repoproxy.testing.fixtures import RunningServer, free_port

pytestmark = pytest.mark.e2e

TIMEOUT = 30  # seconds, for every HTTP call and wait that is not itself what is tested
FLOOD = 1500
CH = "hard"


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    env.update(extra)
    return env


def start_with_limits(srv: RunningServer, soft: int, hard: int,
                      timeout: float = TIMEOUT) -> RunningServer:
    """``srv.start()``, with the child's RLIMIT_NOFILE set like systemd's (low soft, high hard)."""
    log = open(srv.log_path, "ab")  # noqa: SIM115 - owned by the process until stop()
    srv.proc = subprocess.Popen(
        [sys.executable, "-m", "repoproxy", "serve", "--root", str(srv.root),
         "--host", "127.0.0.1", "--port", str(srv.port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, env=srv.env,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert srv.proc.poll() is None, srv.log_path.read_text()[-2000:]
        try:
            if requests.get(srv.url + "/-/health", timeout=2).ok:
                return srv
        except requests.RequestException:
            time.sleep(0.1)
    raise AssertionError("server did not start in time")


@pytest.fixture
def limited_server(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def _start(soft: int, hard: int, **env: str) -> RunningServer:
        srv = RunningServer(tmp_path / "root", free_port(), tmp_path / "server.log",
                            base_env(**env))
        started.append(srv)
        return start_with_limits(srv, soft, hard)

    yield _start
    for srv in started:
        if srv.proc is not None:
            srv.stop(signal.SIGKILL)


def open_fds(pid: int) -> list[str]:
    """What the process's descriptors point at (``socket:[...]``, file paths)."""
    out = []
    for entry in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            out.append(str(entry.readlink()))
    return out


# --- 1. idle-connection flood --------------------------------------------------------------
@pytest.mark.parametrize(("soft", "env"), [
    # systemd's default: a soft limit of 1024 under a high hard limit
    (1024, {}),
    # descriptors past 1023, which select() cannot watch (production.ini had 2000)
    (4096, {"REPOPROXY_CONNECTION_LIMIT": "2000"}),
], ids=["soft-1024", "limit-2000"])
def test_idle_flood_server_stays_up_and_answers(
        limited_server: Callable[..., RunningServer], soft: int, env: dict[str, str]) -> None:
    """1,500 idle connections (fd limit ``soft`` / 4096 hard): the server holds them all,
    answers a real request within 5 s, and closes them once idle for a bounded time."""
    own_soft, own_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = FLOOD + 200
    if own_soft < need:  # the test process holds the client ends
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(own_hard, 4 * need), own_hard))
    srv = limited_server(soft, 4096, REPOPROXY_IDLE_TIMEOUT="3", **env)
    assert srv.proc is not None
    idle: list[socket.socket] = []
    try:
        for _ in range(FLOOD):
            idle.append(socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT))
        # the server accepted them all (waitress keeps accepting while under its limit)
        deadline = time.monotonic() + TIMEOUT
        held = 0
        while time.monotonic() < deadline:
            assert srv.proc.poll() is None, srv.log_path.read_text()[-1500:]  # still alive
            held = sum(1 for link in open_fds(srv.proc.pid) if link.startswith("socket:"))
            if held >= FLOOD:
                break
            time.sleep(0.05)
        assert held >= FLOOD, f"server holds only {held} sockets"

        started = time.monotonic()
        response = requests.get(srv.url + "/-/health", timeout=5)
        elapsed = time.monotonic() - started
        assert response.status_code == 200
        assert srv.proc.poll() is None
        print(f"\nflood: {held} sockets held, server fd limit 4096, real request in {elapsed:.3f}s")

        # every idle connection is closed by the server within a bounded time
        poller = select.poll()
        by_fd = {s.fileno(): s for s in idle}
        for fd in by_fd:
            poller.register(fd, select.POLLIN | select.POLLHUP)
        closed: set[int] = set()
        deadline = time.monotonic() + TIMEOUT
        while len(closed) < FLOOD and time.monotonic() < deadline:
            for fd, _event in poller.poll(500):
                if fd in closed:
                    continue
                try:
                    data = by_fd[fd].recv(1)
                except ConnectionResetError:
                    data = b""
                assert data == b""  # closed, never answered with anything
                closed.add(fd)
                poller.unregister(fd)
        assert len(closed) == FLOOD
        assert srv.proc.poll() is None
    finally:
        for s in idle:
            s.close()
    log = srv.log_path.read_text()
    assert "filedescriptor out of range" not in log
    assert "open-file limit 4096" in log


# --- 3. credentials before the body ----------------------------------------------------------
@pytest.fixture
def upload_server(tmp_path: Path, limited_server: Callable[..., RunningServer]
                  ) -> tuple[RunningServer, Path, dict[str, str]]:
    spool = tmp_path / "spool"
    spool.mkdir()
    srv = limited_server(4096, 4096, TMPDIR=str(spool))
    admin = srv.token("--name", "admin", "--admin")
    response = requests.post(srv.url + "/api/v1/channels", json={"name": CH},
                             headers={"Authorization": f"Bearer {admin}"}, timeout=TIMEOUT)
    assert response.status_code == 201, response.text
    tokens = {
        "admin": admin,
        "read": srv.token("--name", "reader", "--channel", CH, "--permission", "read"),
        "write": srv.token("--name", "writer", "--channel", CH, "--permission", "write"),
    }
    return srv, spool, tokens


def raw_request(port: int, head: str, body: bytes = b"", timeout: float = 1.0
                ) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (and ``body``), read one response within ``timeout`` seconds."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head.encode("latin-1") + body)
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
            s.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = s.recv(65536)  # a timeout here fails the test: no answer in time
            if not chunk:
                break
            data += chunk
    header, _, payload = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, payload


def _length(data: bytes) -> int:
    match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", data.split(b"\r\n\r\n", 1)[0])
    return int(match.group(1)) if match else 0


def upload_head(path: str, length: int, *extra: str, method: str = "POST") -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1",
             "Content-Type: application/octet-stream", "X-File-Name: big-1.0-0.conda",
             f"Content-Length: {length}", *extra]
    return "\r\n".join(lines) + "\r\n\r\n"


def test_upload_refused_from_headers(upload_server: tuple[RunningServer, Path, dict[str, str]]
                                     ) -> None:
    srv, spool, tokens = upload_server
    big = 900 * 1000 * 1000
    cases = [
        # (what, head, expected status, expected error code)
        ("no credentials", upload_head(f"/api/v1/upload/{CH}", big), 401,
         "authentication-required"),
        ("no credentials, Expect", upload_head(f"/api/v1/upload/{CH}", big,
                                               "Expect: 100-continue"), 401,
         "authentication-required"),
        ("unknown token", upload_head(f"/api/v1/upload/{CH}", big,
                                      "Authorization: Bearer rp-0123456789-" + "x" * 43), 401,
         "invalid-credentials"),
        ("malformed Basic", upload_head(f"/api/v1/upload/{CH}", big,
                                        "Authorization: Basic !!!"), 401, "invalid-credentials"),
        ("quetz form", upload_head(f"/api/channels/{CH}/upload/big-1.0-0.conda", big), 401,
         "authentication-required"),
        ("artifactory form", upload_head(f"/{CH}/noarch/big-1.0-0.conda", big, method="PUT"),
         401, "authentication-required"),
        ("read-only token", upload_head(f"/api/v1/upload/{CH}", big,
                                        f"Authorization: Bearer {tokens['read']}"), 403,
         "forbidden"),
        ("read-only token in /t/", upload_head(f"/t/{tokens['read']}/api/v1/upload/{CH}", big),
         403, "forbidden"),
        ("read-only token, X-API-Key", upload_head(f"/api/v1/upload/{CH}", big,
                                                   f"X-API-Key: {tokens['read']}"), 403,
         "forbidden"),
        # over the limit (1 GiB + 64 KiB of multipart slack) but under waitress's own cap
        ("too large", upload_head(f"/api/v1/upload/{CH}", 1024**3 + 512 * 1024,
                                  f"Authorization: Bearer {tokens['write']}"), 413, "too-large"),
    ]
    assert srv.proc is not None
    for what, head, status, code in cases:
        got, headers, payload = raw_request(srv.port, head)  # no body sent at all
        assert (what, got) == (what, status), payload
        assert headers["content-type"] == "application/json"
        assert json.loads(payload)["error"] == code, (what, payload)
        assert ("www-authenticate" in headers) == (status == 401), what
    # a refused upload with body bytes already on the wire: answered, nothing spooled
    got, _, _ = raw_request(srv.port, upload_head(f"/api/v1/upload/{CH}", big),
                            b"\0" * (2 * 1024 * 1024))
    assert got == 401
    assert not [link for link in open_fds(srv.proc.pid) if str(spool) in link]
    assert list(spool.iterdir()) == []
    assert list((srv.root / "tmp").iterdir()) == []
    # an upload that passes the check still reaches the app (which answers its bad body)
    response = requests.post(srv.url + f"/api/v1/upload/{CH}", data=b"not a package",
                             headers={"Authorization": f"Bearer {tokens['write']}",
                                      "X-File-Name": "x-1.0-0.conda"}, timeout=TIMEOUT)
    assert response.status_code == 400, response.text
    # and the server is fine afterwards
    assert requests.get(srv.url + "/-/health", timeout=TIMEOUT).status_code == 200
    log = srv.log_path.read_text()
    assert tokens["read"] not in log
    assert tokens["write"] not in log


# --- 4 and 5. bad URLs and tokens in logs ----------------------------------------------------
BOOM_PLUGIN = """
    import logging

    from repoproxy import hookimpl

    log = logging.getLogger("site.boom")

    def boom(request):
        # a careless plugin: logs the full URL and puts it in its exception
        log.warning("boom called for %s with %s", request.url, dict(request.headers))
        raise RuntimeError(f"boom at {request.url}")

    @hookimpl
    def repoproxy_configure(config):
        config.add_route("boom", "/api/boom")
        config.add_view(boom, route_name="boom")
"""


@pytest.fixture
def logged_server(tmp_path: Path, limited_server: Callable[..., RunningServer]
                  ) -> tuple[RunningServer, str]:
    plugins = tmp_path / "site-plugins"
    plugins.mkdir()
    (plugins / "repoproxy_boom.py").write_text(textwrap.dedent(BOOM_PLUGIN))
    srv = limited_server(4096, 4096, REPOPROXY_PLUGINS__DIR=str(plugins))
    token = srv.token("--name", "admin", "--admin")
    response = requests.post(srv.url + "/api/v1/channels", json={"name": CH},
                             headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    assert response.status_code == 201
    return srv, token


def test_undecodable_url_is_400_with_one_log_line(logged_server: tuple[RunningServer, str]
                                                  ) -> None:
    srv, token = logged_server
    paths = [f"/{CH}/noarch/repodata.json?%ff", f"/{CH}/noarch/repodata.json?a=%ff&b=1",
             "/api/v1/channels?%ff", "/api/v1/search?q=%ff", "/-/health?%FF%FE",
             f"/t/{token}/{CH}/noarch/repodata.json?%ff", "/%ff/noarch/repodata.json",
             "/api/v1/channels/%C3%28"]
    before = srv.log_path.read_text().count("\n")
    for path in paths:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
            # raw, so the client library cannot re-encode the URL
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.split()[1] == b"400", (path, data)
        assert json.loads(body)["error"] == "bad-request", path
        assert b"UTF-8" in body
    srv.stop()
    new_lines = srv.log_path.read_text().splitlines()[before:]
    access = [line for line in new_lines if "[repoproxy.access]" in line]
    assert len(access) == len(paths), new_lines  # one line per request
    assert all(" 400 " in line for line in access)
    assert not [line for line in new_lines if "Traceback" in line or "ERROR" in line]
    assert token not in "\n".join(new_lines)


def test_no_token_in_any_log_line(logged_server: tuple[RunningServer, str]) -> None:
    srv, token = logged_server
    url = srv.url
    repodata = f"/{CH}/noarch/repodata.json"
    basic = base64.b64encode(f"admin:{token}".encode()).decode()
    sent = [
        # every credential form, on good and bad routes
        ("GET", repodata, {"Authorization": f"Bearer {token}"}),
        ("GET", repodata, {"Authorization": f"Basic {basic}"}),
        ("GET", repodata, {"X-API-Key": token}),
        ("GET", f"/t/{token}{repodata}", {}),
        ("GET", f"{repodata}?token={token}", {}),
        ("GET", f"/nope/noarch/x.conda?token={token}&a=1", {}),
        # misplaced /t/ segments, which the token tween does not strip
        ("GET", f"/T/{token}{repodata}", {}),
        ("GET", f"/t/rp-aaaaaaaaaa-bbbb/t/{token}{repodata}", {}),
        ("GET", f"/{CH}/t/{token}/noarch/repodata.json", {}),
        ("GET", f"/api/v1/channels/t/{token}/files", {}),
        # errors: 4xx and forced 500s (the plugin logs the URL and raises with it)
        ("GET", "/api/v1/tokens", {"Authorization": f"Bearer {token}x"}),
        ("DELETE", f"/t/{token}/api/v1/channels/nope", {}),
        ("GET", f"/t/{token}/api/boom", {}),
        ("GET", f"/api/boom?token={token}", {}),
        ("GET", "/api/boom", {"Authorization": f"Bearer {token}"}),
        ("GET", f"/T/{token}/api/boom", {}),
        ("POST", f"/t/{token}/api/v1/upload/{CH}", {"Content-Type": "application/json"}),
    ]
    statuses = []
    for method, path, headers in sent:
        response = requests.request(method, url + path, headers=headers, timeout=TIMEOUT)
        statuses.append(response.status_code)
        assert token not in response.text
    assert {200, 401, 404, 500} <= set(statuses)
    assert srv.stop() == 0
    log = srv.log_path.read_text()
    secret = token.rsplit("-", 1)[1]
    leaks = [line for line in log.splitlines() if token in line or secret in line]
    assert leaks == []
    # the lines are there, redacted: the test looked at the right output
    assert "Exception while serving /t/<redacted>/api/boom" in log
    assert "boom called for" in log
    assert "Traceback" in log
    assert log.count("[repoproxy.access]") >= len(sent)

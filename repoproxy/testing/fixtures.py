"""pytest fixtures shared by the core's and the plugins' tests.

Use with ``-p repoproxy.testing.fixtures`` (the project's pytest config does) or
``pytest_plugins = ["repoproxy.testing.fixtures"]``. A ladder: settings -> services -> app ->
testapp (webtest), plus a real ``repoproxy serve`` for end-to-end tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from repoproxy.models import Access
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.db import write_transaction

if TYPE_CHECKING:
    from repoproxy.domain.core import Core


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def settings(root: Path) -> dict[str, Any]:
    """Raw settings for the app under test; tests may add keys before ``services`` is used."""
    return {"repoproxy.root": str(root), "repoproxy.log_requests": "false"}


@pytest.fixture
def services(settings: dict[str, Any]) -> Iterator[Any]:
    from repoproxy.domain.core import load_core

    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    svc = load_core(settings, env)
    yield svc
    svc.close()


@pytest.fixture
def app(services: Core) -> Any:
    from repoproxy.web.app import make_app

    return make_app(services)


@pytest.fixture
def testapp(app: Any) -> Any:
    from webtest import TestApp

    return TestApp(app)


def make_token(services: Core, name: str = "t", *, admin: bool = False,
               channels: list[str] | None = None, access: str = "read",
               expires_in_days: int | None = None) -> str:
    from repoproxy.domain.tokens import store_token

    db = services.db()
    with write_transaction(db):
        token, _ = store_token(Catalog(db), name=name, admin=admin, channels=channels or [],
                               access=Access(access), expires_in_days=expires_in_days)
    return token


@pytest.fixture
def admin_token(services: Core) -> str:
    return make_token(services, "admin", admin=True)


@pytest.fixture
def admin_headers(admin_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
def make_channel(testapp: Any, admin_headers: dict[str, str]) -> Callable[..., dict[str, Any]]:
    def _make(name: str = "main", privacy: str = "public", description: str = "") -> Any:
        return testapp.post_json(
            "/api/v1/channels",
            {"name": name, "privacy": privacy, "description": description},
            headers=admin_headers,
        ).json

    return _make


@pytest.fixture
def pkgdir(tmp_path: Path) -> Path:
    path = tmp_path / "pkgs"
    path.mkdir()
    return path


def upload_raw(testapp: Any, channel: str, path: Path, headers: dict[str, str],
               status: int | str = 201, sha256: str | None = None, force: bool = False) -> Any:
    import hashlib

    data = path.read_bytes()
    return testapp.post(
        f"/api/v1/upload/{channel}" + ("?force=true" if force else ""),
        data,
        headers={**headers, "X-File-Name": path.name, "Content-Type": "application/octet-stream",
                 "X-File-SHA256": sha256 or hashlib.sha256(data).hexdigest()},
        status=status,
    )


# --- a real server -------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningServer:
    def __init__(self, root: Path, port: int, log_path: Path, env: dict[str, str]) -> None:
        self.root, self.port, self.log_path, self.env = root, port, log_path, env
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> RunningServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process until stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "repoproxy", "serve", "--root", str(self.root),
             "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, env=self.env,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.proc = None
        return code

    def token(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "repoproxy", "token", "create", "--root", str(self.root),
             *args], capture_output=True, text=True, check=True, env=self.env, timeout=60,
        )
        return out.stdout.strip()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def _start(root: Path | None = None, **env_extra: str) -> RunningServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
        env.update(env_extra)
        srv = RunningServer(root or tmp_path / "server-root", free_port(),
                            tmp_path / f"server-{len(started)}.log", env)
        started.append(srv)
        return srv.start()

    yield _start
    for srv in started:
        if srv.proc is not None:
            srv.stop(signal.SIGKILL)


@pytest.fixture
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory()

"""pytest fixtures shared by the core's and the plugins' tests.

Use with ``-p repoproxy.testing.fixtures`` (the project's pytest config does) or
``pytest_plugins = ["repoproxy.testing.fixtures"]``. A ladder: settings -> services -> app ->
testapp (webtest), plus a real ``repoproxy serve`` for end-to-end tests.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from repoproxy.models import Access
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.db import write_transaction
from repoproxy.testing.server import RunningServer, free_port

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
@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., RunningServer]]:
    started: list[RunningServer] = []

    def _start(root: Path | None = None, workers: int = 1, **env_extra: str) -> RunningServer:
        env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
        env.update(env_extra)
        srv = RunningServer(root or tmp_path / "server-root", free_port(),
                            tmp_path / f"server-{len(started)}.log", env, workers=workers)
        started.append(srv)
        return srv.start()

    yield _start
    for srv in started:
        if srv.proc is not None:
            srv.stop(signal.SIGKILL)


@pytest.fixture
def server(server_factory: Callable[..., RunningServer]) -> RunningServer:
    return server_factory()

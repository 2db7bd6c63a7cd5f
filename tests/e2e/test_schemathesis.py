"""API fuzzing: schemathesis generates requests from ``/api/openapi.json`` (valid and invalid
data for every parameter and body) and sends them to a real ``repoproxy serve`` as an admin.
No answer may be a 500, and every answer must match the document: the documented success body,
or the error body ``{"error", "message", "reasons"?}`` for any other status.

Bounded and repeatable: ``max_examples`` cases per operation and phase, a fixed seed
(``derandomize``), no example database. The server has a channel ``main`` with a real package
``fuzzpkg`` in it, which the document's path examples name, so the package-details and plugin
routes are reached with existing data and not only answered with 404.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from repoproxy.testing.fixtures import RunningServer, free_port
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.wire import upload_prefix_raw
from repoproxy.web.openapi import document

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# cases per operation and phase; FUZZ_MAX_EXAMPLES raises it for a longer run by hand
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[tuple[RunningServer, str]]:
    """One server for every operation's test (they share its state, as real clients do)."""
    tmp_path = tmp_path_factory.mktemp("fuzz")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    srv = RunningServer(tmp_path / "root", free_port(), tmp_path / "server.log", env).start()
    try:
        yield _prepare(srv, tmp_path)
    finally:
        srv.stop(signal.SIGKILL)


def _prepare(srv: RunningServer, tmp_path: Path) -> tuple[RunningServer, str]:
    admin = srv.token("--admin", "--name", "fuzz-admin")
    auth = {"Authorization": f"Bearer {admin}"}
    for channel in ("main", "scratch"):
        r = requests.post(f"{srv.url}/api/v1/channels", json={"name": channel}, headers=auth,
                          timeout=30)
        assert r.status_code == 201, r.text
    pkgdir = tmp_path / "pkgs"
    # what the document's examples name: read data, and scratch data for the deletions
    for channel, spec, fmt in (
            ("main", PackageSpec("fuzzpkg", "1.0", subdir="linux-64",
                                 depends=["python >=3.8"]), "conda"),
            ("main", PackageSpec("fuzzpkg", "1.1", depends=["fuzzpkg-data"]), "tar.bz2"),
            ("main", PackageSpec("fuzzpkg-data", "0.1"), "conda"),
            ("main", PackageSpec("scratchpkg", "1.0"), "conda"),
            ("main", PackageSpec("scratchpkg", "2.0"), "tar.bz2"),
            ("scratch", PackageSpec("scratchpkg", "1.0"), "conda")):
        path = build_package(spec, pkgdir, fmt)
        assert upload_prefix_raw(srv.url, channel, path, admin).status_code == 201
    return srv, admin


# The document as the server builds it with every first-party plugin loaded; the fixture's
# server must serve the same (checked below). Loaded at import, not from the live server,
# so that every operation is its own test item.
schema = schemathesis.openapi.from_dict(document())


def test_the_server_serves_the_fuzzed_document(fuzz_server: tuple[RunningServer, str]) -> None:
    srv, _ = fuzz_server
    served = requests.get(f"{srv.url}/api/openapi.json", timeout=30).json()
    assert served == document(server_url=srv.url)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_answers_no_500_and_matches_its_document(
        case: Any, fuzz_server: tuple[RunningServer, str]) -> None:
    srv, admin = fuzz_server
    case.call_and_validate(base_url=srv.url, headers={"Authorization": f"Bearer {admin}"},
                           checks=CHECKS, timeout=30)


@schema.parametrize()
@settings(max_examples=max(1, MAX_EXAMPLES // 3), deadline=None, derandomize=True,
          database=None, suppress_health_check=list(HealthCheck))
def test_api_answers_anonymous_callers_with_documented_errors(
        case: Any, fuzz_server: tuple[RunningServer, str]) -> None:
    """The refusals (401, 404 for what may not be seen) are checked too, with fewer cases."""
    srv, _ = fuzz_server
    case.call_and_validate(base_url=srv.url, checks=CHECKS, timeout=30)

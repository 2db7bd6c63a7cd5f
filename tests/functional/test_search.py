"""Search across readable channels: API and CLI, never showing what the caller may not read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package


@pytest.fixture
def published(testapp: Any, make_channel: Any, admin_headers: dict[str, str],
              pkgdir: Path) -> None:
    make_channel("birds")
    make_channel("snakes", privacy="private")
    make_channel("fish", privacy="authenticated")
    for spec, channels in (
        (PackageSpec("pytorch", "1.13.1", subdir="linux-64", license="BSD-3-Clause"),
         ("birds", "snakes", "fish")),
        (PackageSpec("pytorch", "1.9", subdir="osx-arm64", license="BSD-3-Clause"),
         ("birds",)),
        (PackageSpec("pytorch-lightning", "2.0"), ("birds",)),
        (PackageSpec("numpy", "1.0"), ("birds",)),
    ):
        path = build_package(spec, pkgdir)
        for ch in channels:
            upload_raw(testapp, ch, path, admin_headers)


def _search(testapp: Any, q: str, **headers: str) -> Any:
    return testapp.get("/api/v1/search", {"q": q, "family": "conda"}, headers=headers).json


def test_search_finds_latest_version_by_conda_order(testapp: Any, published: None) -> None:
    body = _search(testapp, "pytorch")
    rows = {(r["channel"], r["name"]): r for r in body["results"]}
    assert set(rows) == {("birds", "pytorch"), ("birds", "pytorch-lightning")}
    torch = rows[("birds", "pytorch")]
    assert torch["version"] == "1.13.1"
    assert torch["platforms"] == ["linux-64"]
    assert torch["license"] == "BSD-3-Clause"
    assert torch["build"] == "0"
    assert body["results"][0]["name"] == "pytorch"  # exact match first


def test_search_never_shows_unreadable_channels(testapp: Any, published: None,
                                               services: Any) -> None:
    anon = {r["channel"] for r in _search(testapp, "pytorch")["results"]}
    assert anon == {"birds"}
    auth = make_token(services, "any", channels=["birds"])
    seen = {r["channel"] for r in _search(testapp, "pytorch",
                                          Authorization=f"Bearer {auth}")["results"]}
    assert seen == {"birds", "fish"}  # authenticated channel, not the private one
    member = make_token(services, "member", channels=["snakes"])
    seen = {r["channel"] for r in _search(testapp, "pytorch",
                                          Authorization=f"Bearer {member}")["results"]}
    assert seen == {"birds", "fish", "snakes"}


def test_search_needs_a_query_and_a_known_family(testapp: Any) -> None:
    testapp.get("/api/v1/search", status=400)
    testapp.get("/api/v1/search?q=x&family=pypi", status=400)


def test_cli_search_prints_the_table(testapp: Any, published: None, monkeypatch: Any) -> None:
    from repoproxy.cli import build_cli
    from repoproxy.cli.http import Client

    monkeypatch.setattr(Client, "request", lambda self, m, p, **kw: testapp.get(
        p, params=kw.get("params") or {}).json)
    out = CliRunner().invoke(build_cli(), ["search", "--family", "conda", "numpy"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith("Channel")
    assert "birds" in out.output
    assert "1 package found." in out.output

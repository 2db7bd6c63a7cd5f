"""The nginx front's static locations (web/front.py), read as nginx reads them: the first
regular-expression location that matches a path serves it. Which paths nginx may answer from
the tree, and with which headers; the e2e tests (tests/e2e/test_front.py) run the same
configuration in a real nginx against repoproxy alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repoproxy.web.front import FrontConfig, render

SHARD = "shards/" + "ab" * 32 + ".msgpack.zst"


@pytest.fixture(scope="module")
def locations() -> list[tuple[re.Pattern[str], str]]:
    conf = render(FrontConfig(root=Path("/srv/repo"), listen="127.0.0.1:8000",
                              readers=["127.0.0.1:8080"]))
    found = re.findall(r'location ~ "([^"]+)" \{\n(.*?)\n        \}', conf, re.S)
    assert len(found) == 6
    return [(re.compile(pattern), body) for pattern, body in found]


def served_by(locations: list[tuple[re.Pattern[str], str]], path: str) -> str | None:
    """The body of the location nginx picks for ``path``, None for repoproxy's ``/``."""
    return next((body for pattern, body in locations if pattern.search(path)), None)


@pytest.mark.parametrize("path", [
    "/pub/noarch/repodata.json", "/pub/linux-64/run_exports.json", "/pub/channeldata.json",
    "/pub/sub/noarch/repodata.json", "/pub/sub/channeldata.json"])
def test_twin_indexes_take_gzip_and_say_vary_as_repoproxy_does(
        locations: list[tuple[re.Pattern[str], str]], path: str) -> None:
    body = served_by(locations, path)
    assert body is not None
    assert "gzip_static on;" in body
    # a fixed header, as repoproxy sends it, even while the twin is being replaced
    assert "add_header Vary Accept-Encoding;" in body
    assert "gzip_vary" not in body  # which would open the .gz on every request
    assert 'add_header Cache-Control "public, max-age=60";' in body


@pytest.mark.parametrize("path", [
    "/pub/noarch/repodata.json.zst", "/pub/noarch/repodata_shards.msgpack.zst",
    "/pub/noarch/run_exports.json.zst", f"/pub/noarch/{SHARD}",
    "/pub/sub/linux-64/repodata.json.zst", f"/pub/sub/linux-64/{SHARD}"])
def test_other_indexes_and_shards_never_look_for_a_gzip_twin(
        locations: list[tuple[re.Pattern[str], str]], path: str) -> None:
    body = served_by(locations, path)
    assert body is not None
    assert "gzip" not in body
    assert "Vary" not in body  # repoproxy sends no Vary for them
    immutable = "shards/" in path
    assert ("immutable" in body) is immutable


@pytest.mark.parametrize("path", [
    "/pub/noarch/pkg-1.0-0.conda", "/pub/linux-64/pkg-1.0-0.tar.bz2",
    "/pub/noarch/.hidden.json", "/pub/noarch/repodata.json.gz", "/pub/noarch/repodata.jsonx",
    "/pub/noarch/shards/abc.msgpack.zst", "/pub/sub/noarch/pkg-1.0-0.conda",
    "/pub/noarch/repodata.json/extra", "/api/v1/channels/pub", "/pub/noarch/",
    "/t/TOKEN/pub/noarch/pkg-1.0-0.conda", "/-/accel/pub/noarch/pkg-1.0-0.conda"])
def test_packages_hidden_sets_and_everything_else_go_to_repoproxy(
        locations: list[tuple[re.Pattern[str], str]], path: str) -> None:
    # package bytes only ever after repoproxy decided (X-Accel-Redirect), never from the tree
    assert served_by(locations, path) is None


def test_every_static_location_serves_through_the_public_view_and_falls_back(
        locations: list[tuple[re.Pattern[str], str]]) -> None:
    for _pattern, body in locations:
        assert re.search(r"^\s*(root|alias) /srv/repo/public[/;]", body, re.M), body
        assert "error_page 404 = @repoproxy;" in body
        assert "limit_except GET" in body

"""Pyramid's cache of quoted URL segments stays bounded under a flood of distinct values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyramid.traversal
import pytest
from pyramid.traversal import PATH_SAFE
from webtest import TestApp

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.web.urlcache import BoundedSegments

HTML = {"Accept": "text/html", "User-Agent": "Mozilla/5.0 Chrome/120.0"}


@pytest.fixture
def small_cache(monkeypatch: pytest.MonkeyPatch, app: Any) -> BoundedSegments:
    """The app's bounded cache, emptied and made small so a short flood overflows it."""
    cache = pyramid.traversal._segment_cache
    assert isinstance(cache, BoundedSegments), "make_app did not bound Pyramid's cache"
    monkeypatch.setattr(cache, "limit", 20)
    cache.clear()
    return cache


def test_listing_more_names_than_the_bound_keeps_the_segment_cache_bounded(
        testapp: TestApp, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path,
        small_cache: BoundedSegments) -> None:
    make_channel("pub")
    for i in range(30):  # more distinct names than the cache keeps
        upload_raw(testapp, "pub", build_package(PackageSpec(f"name{i}", "1.0"),
                                                 pkgdir / str(i)), admin_headers)
    # the channel page links to each package page: one quoted segment per name
    page = testapp.get("/ui/channels/pub/", headers=HTML)
    assert all(f"/ui/channels/pub/packages/name{i}/" in page.text for i in range(30))
    # the listing did go through the cache (it is full), and no further
    assert len(small_cache) == small_cache.limit
    assert ("name29", PATH_SAFE) in small_cache


def test_quoting_is_unchanged_after_eviction(small_cache: BoundedSegments) -> None:
    quote = pyramid.traversal.quote_path_segment
    values = [f"name with space {i}/é" for i in range(3 * small_cache.limit)]
    first = [quote(v) for v in values]
    assert len(small_cache) == small_cache.limit
    # evicted and kept entries quote alike, and as Pyramid quotes them
    assert [quote(v) for v in values] == first
    assert first[0] == "name%20with%20space%200%2F%C3%A9"


def test_the_bounded_cache_drops_its_oldest_entries() -> None:
    cache = BoundedSegments(limit=3)
    for key in "abcde":
        cache[key] = key.upper()
    assert list(cache) == ["c", "d", "e"]

"""The channel file listing (``GET /api/v1/channels/<c>/files``): every file at once (written
as it is read) or a page at a time with a cursor; both give the same files in the same order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

URL = "/api/v1/channels/big/files"


@pytest.fixture
def channel(testapp: Any, make_channel: Any, admin_headers: dict[str, str],
            pkgdir: Path) -> list[str]:
    make_channel("big")
    names = []
    for i in range(7):
        subdir = "linux-64" if i % 3 == 0 else "noarch"
        path = build_package(PackageSpec(f"p{i}", "1.0", subdir=subdir), pkgdir / str(i))
        upload_raw(testapp, "big", path, admin_headers)
        names.append(f"{subdir}/{path.name}")
    return sorted(names)


def test_pages_walk_every_file_once_in_the_order_of_the_whole_listing(
        testapp: Any, channel: list[str]) -> None:
    whole = testapp.get(URL)
    assert whole.content_type == "application/json"
    assert whole.json["next"] is None
    listed = [f"{f['subdir']}/{f['filename']}" for f in whole.json["files"]]
    assert listed == channel
    walked, after, pages = [], None, 0
    while True:
        page = testapp.get(URL, params={"limit": 3, **({"after": after} if after else {})}).json
        pages += 1
        assert len(page["files"]) <= 3
        walked += [f"{f['subdir']}/{f['filename']}" for f in page["files"]]
        after = page["next"]
        if after is None:
            break
        assert after == walked[-1]
    assert (walked, pages) == (channel, 3)
    # the same fields either way (plugins' extras included)
    assert testapp.get(URL, params={"limit": 1}).json["files"][0] == whole.json["files"][0]


def test_subdir_filter_applies_to_pages(testapp: Any, channel: list[str]) -> None:
    page = testapp.get(URL, params={"subdir": "linux-64", "limit": 2}).json
    assert [f["subdir"] for f in page["files"]] == ["linux-64", "linux-64"]
    rest = testapp.get(URL, params={"subdir": "linux-64", "limit": 2,
                                    "after": page["next"]}).json
    assert (len(rest["files"]), rest["next"]) == (1, None)


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "1001"}, {"limit": "x"},
                                   {"limit": "-1"}, {"after": "no-slash"},
                                   {"after": "/noarch"}, {"after": "a" * 500 + "/b"}])
def test_bad_paging_parameters_are_400_with_a_message(testapp: Any, channel: list[str],
                                                      query: dict[str, str]) -> None:
    r = testapp.get(URL, params=query, status=400)
    assert r.json["error"] == "bad-request"
    assert r.json["message"]

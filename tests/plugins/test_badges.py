"""repoproxy_badges: six kinds of flat SVG badges, access by read token, snippets, PNG fit."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from repoproxy_badges import KINDS
from repoproxy_badges.render import box_edges, render, text_width

from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

URL = "/api/channels/{}/badges/{}/{}.svg"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def published(testapp: Any, make_channel: Any, admin_headers: dict[str, str],
              pkgdir: Path) -> list[Path]:
    make_channel("pub")
    make_channel("secret", privacy="private")
    paths = [
        build_package(PackageSpec("tool", "1.9", license="Apache-2.0 <&> \"x\""), pkgdir),
        build_package(PackageSpec("tool", "1.10", subdir="linux-64"), pkgdir),
        build_package(PackageSpec("tool", "1.10", subdir="osx-arm64", build="1"), pkgdir),
    ]
    for p in paths:
        upload_raw(testapp, "pub", p, admin_headers)
        upload_raw(testapp, "secret", p, admin_headers)
    return paths


def _texts(svg: str) -> list[str]:
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own SVG
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_each_kind_renders_for_a_public_package(testapp: Any, published: list[Path]) -> None:
    expected = {"version": ["version", "1.10"], "license": ["license", "MIT"],
                "platforms": ["platforms", "linux-64 | noarch | osx-arm64"],
                "downloads": ["downloads", "0"]}
    for kind in KINDS:
        r = testapp.get(URL.format("pub", "tool", kind))
        assert r.content_type == "image/svg+xml"
        assert "max-age=300" in r.headers["Cache-Control"]
        assert r.headers["ETag"]
        texts = _texts(r.text)
        if kind in expected:
            assert texts == expected[kind]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d",
                        _texts(testapp.get(URL.format("pub", "tool",
                                                      "latest_release_date")).text)[1])
    assert _texts(testapp.get(URL.format("pub", "tool", "relative_release_date")).text)[1] \
        == "just now"


def test_etag_gives_304(testapp: Any, published: list[Path]) -> None:
    etag = testapp.get(URL.format("pub", "tool", "version")).headers["ETag"]
    testapp.get(URL.format("pub", "tool", "version"), headers={"If-None-Match": etag},
                status=304)


def test_xml_escaping() -> None:
    svg = render('a<b>&"c\'', "</text><script>x</script>")
    root = ElementTree.fromstring(svg)  # noqa: S314 - our own SVG
    assert _texts(svg) == ['a<b>&"c\'', "</text><script>x</script>"]
    assert not list(root.iter(f"{SVG}script"))


def test_downloads_badge_changes_after_downloads(testapp: Any, published: list[Path]) -> None:
    before = testapp.get(URL.format("pub", "tool", "downloads"))
    testapp.get(f"/pub/linux-64/{published[1].name}")
    testapp.get(f"/pub/noarch/{published[0].name}")
    after = testapp.get(URL.format("pub", "tool", "downloads"))
    assert _texts(after.text)[1] == "2"
    assert after.headers["ETag"] != before.headers["ETag"]


def test_private_badge_needs_a_read_token_else_looks_missing(
        testapp: Any, published: list[Path], services: Any) -> None:
    missing = testapp.get(URL.format("pub", "nothing", "version"), status=404)
    reader = make_token(services, "reader", channels=["secret"])
    writer = make_token(services, "writer", channels=["secret"], access="write")
    other = make_token(services, "other", channels=["pub"])
    for kind in KINDS:
        url = URL.format("secret", "tool", kind)
        for refused in (url, f"{url}?token={writer}", f"{url}?token={other}",
                        URL.format("nochannel", "tool", kind)):
            r = testapp.get(refused, status=404)
            assert (r.body, r.content_type) == (missing.body, missing.content_type)
            assert "WWW-Authenticate" not in r.headers
        ok = testapp.get(f"{url}?token={reader}")
        ElementTree.fromstring(ok.text)  # noqa: S314 - our own SVG
        assert "private" in ok.headers["Cache-Control"]


def test_details_give_snippets_for_every_badge(testapp: Any, published: list[Path],
                                               services: Any) -> None:
    badges = testapp.get("/api/channels/pub/artifacts/conda/tool").json["badges"]
    assert set(badges) == set(KINDS)
    v = badges["version"]
    assert v["markdown"] == f"![tool version]({v['url']})"
    assert v["html"] == f'<img src="{v["url"]}" alt="tool version">'
    assert v["rst"] == f".. image:: {v['url']}\n   :alt: tool version"
    assert "?token" not in v["url"]
    testapp.get(v["url"].replace("http://localhost", ""))
    reader = make_token(services, "reader", channels=["secret"])
    private = testapp.get("/api/channels/secret/artifacts/conda/tool",
                          headers={"Authorization": f"Bearer {reader}"}).json["badges"]
    assert private["version"]["url"].endswith("?token=<READ_TOKEN>")


def _white_columns(png: bytes, y0: int, y1: int) -> list[int]:
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    cols = []
    for x in range(img.width):
        if any(min(img.getpixel((x, y))) > 150 for y in range(y0, y1)):  # type: ignore[arg-type]
            cols.append(x)
    return cols


@pytest.mark.parametrize(("label", "message"), [
    ("version", "1.10"), ("license", "Apache-2.0 OR MIT"),
    ("platforms", "linux-64 | linux-aarch64 | noarch | osx-arm64 | win-64"),
    ("downloads", "1234567"), ("latest release date", "2026-11-24"),
    ("latest release", "11 months ago"), ("WWWWWWWW", "mmmmmmmmmmmm"),
])
def test_png_text_stays_inside_its_box(label: str, message: str) -> None:
    import cairosvg

    scale = 4
    png = cairosvg.svg2png(bytestring=render(label, message).encode(), scale=scale)
    lw, total = box_edges(label, message)
    cols = _white_columns(png, 2 * scale, 18 * scale)
    left = [c for c in cols if c < lw * scale]
    right = [c for c in cols if c >= lw * scale]
    assert left
    assert right
    # each text lies within its own box with at least 2 px of padding on both sides
    assert min(left) >= 2 * scale
    assert max(left) <= (lw - 2) * scale
    assert min(right) >= (lw + 2) * scale
    assert max(right) <= (total - 2) * scale
    # and is not squeezed: the drawn text spans most of its measured width
    assert (max(left) - min(left)) >= 0.7 * text_width(label) * scale
    assert (max(right) - min(right)) >= 0.7 * text_width(message) * scale

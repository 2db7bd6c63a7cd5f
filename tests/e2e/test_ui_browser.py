"""End to end in a real browser: Debian's headless chromium, driven by Playwright, against a
real ``repoproxy serve``. Signs in, browses to a package, opens every tab, uploads a package
by drag-and-drop, sees it appear, copies a badge snippet, signs out. Screenshots of the main
pages land in ``test-artifacts/ui/`` (or ``$TEST_ARTIFACTS/ui``)."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.testing.server import RunningServer

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
PASSWORD = "a long browser password"
ROOT = Path(__file__).resolve().parents[2]
TABS = ("Overview", "Files", "Dependencies", "Readme", "CVEs", "Badges", "Downloads")


@pytest.fixture
def artifacts() -> Path:
    base = Path(os.environ.get("TEST_ARTIFACTS") or ROOT / "test-artifacts")
    path = base / "ui"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def browser() -> Iterator[Any]:
    if shutil.which(CHROMIUM) is None:  # pragma: no cover - .ci/run installs it with apt
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def site(tmp_path: Path, server_factory: Callable[..., RunningServer]) -> RunningServer:
    """A server root with a public channel owned by alice and one package in it."""
    from repoproxy.domain import channels, members, packages, users
    from repoproxy.domain.core import load_core

    root = tmp_path / "browser-root"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPOPROXY_")}
    core = load_core({"repoproxy.root": str(root)}, env)
    try:
        channels.create_channel(core, "web", "Packages for the browser test", "public")
        users.add_user(core, "alice", PASSWORD)
        members.add_member(core, "web", "alice", "owner")
        pkgs = tmp_path / "pkgs"
        pkgs.mkdir()
        for spec in (PackageSpec("widget", "1.0", about={"description": "# Widget\n\nHello."}),
                     PackageSpec("widget", "1.2", subdir="linux-64", depends=["python"])):
            packages.upload_file(core, "web", build_package(spec, pkgs))
    finally:
        core.close()
    return server_factory(root)


def drop_file(page: Any, selector: str, path: Path) -> None:
    """Drop a file on an element as a person dragging it from their file manager would."""
    data = base64.b64encode(path.read_bytes()).decode()
    transfer = page.evaluate_handle(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: "application/octet-stream"}));
            return dt;
        }""", [path.name, data])
    page.dispatch_event(selector, "dragenter", {"dataTransfer": transfer})
    page.dispatch_event(selector, "drop", {"dataTransfer": transfer})


def test_sign_in_browse_upload_copy_and_sign_out(browser: Any, site: RunningServer,
                                                 tmp_path: Path, artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        # the server's root, opened in a browser, is the UI
        page.goto(site.url + "/")
        assert page.url.endswith("/ui/")
        page.get_by_role("link", name="Sign in").click()
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/ui/")
        assert page.get_by_test_id("signed-in-as").inner_text() == "alice"
        page.screenshot(path=str(artifacts / "home.png"), full_page=True)

        page.get_by_role("link", name="web", exact=True).click()
        page.wait_for_url("**/ui/channels/web/")
        page.screenshot(path=str(artifacts / "channel.png"), full_page=True)
        page.locator("#packages").get_by_role("link", name="widget").click()
        page.wait_for_url("**/packages/widget/")
        assert page.get_by_test_id("latest-version").inner_text() == "1.2"
        for tab in TABS:
            page.locator(".tabs").get_by_role("link", name=tab, exact=True).click()
            page.wait_for_selector(f"#panel-{tab.lower()}")
            page.screenshot(path=str(artifacts / f"package-{tab.lower()}.png"), full_page=True)

        # badges: copy the Markdown snippet of the version badge
        page.locator(".tabs").get_by_role("link", name="Badges").click()
        expected = page.locator("#badge-version-markdown").inner_text()
        page.locator("button.copy[data-copy=badge-version-markdown]").click()
        page.wait_for_function("document.body.getAttribute('data-last-copied') !== null")
        assert page.evaluate("navigator.clipboard.readText()") == expected
        assert expected.startswith("![widget version](")

        # upload by drag-and-drop on the channel page, with progress, then see it listed
        page.goto(site.url + "/ui/channels/web/")
        new = build_package(PackageSpec("dropped", "3.0"), tmp_path)
        drop_file(page, "#dropzone", new)
        page.wait_for_selector("#upload-form[data-upload-done]")
        assert page.get_attribute("#upload-form", "data-upload-done") == "ok"
        assert "uploaded to noarch" in page.locator("#upload-list").inner_text()
        page.screenshot(path=str(artifacts / "upload.png"), full_page=True)
        page.wait_for_selector("#packages >> text=dropped")  # the page reloads after success
        # a refused upload shows its reason
        bad = tmp_path / "broken-1.0-0.conda"
        bad.write_bytes(b"this is not a package")
        drop_file(page, "#dropzone", bad)
        page.wait_for_selector("#upload-form[data-upload-done=error]")
        assert "refused" in page.locator("#upload-list").inner_text()

        # narrow screen: the layout still reads (a phone)
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(site.url + "/ui/channels/web/packages/widget/files")
        page.screenshot(path=str(artifacts / "package-files-phone.png"), full_page=True)

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url("**/ui/")
        assert page.get_by_role("link", name="Sign in").is_visible()
    finally:
        context.close()

"""View predicates of the UI: "is this a person's browser", "is this a UI page"."""

from __future__ import annotations

from typing import Any

#: words in the User-Agent of package managers and scripts: never redirected to pages
CLIENT_WORDS = ("conda", "mamba", "rattler", "pixi", "pip/", "python", "curl", "wget",
                "go-http", "uv/", "libcurl")


def is_browser(request: Any) -> bool:
    """A person's browser: it asks for HTML by name and is no known package manager.

    conda (requests) and rattler (reqwest) send ``Accept: */*`` or nothing, so they never
    match; only a client that lists ``text/html`` explicitly does.
    """
    accept = request.headers.get("Accept", "")
    if "text/html" not in accept:
        return False
    agent = (request.user_agent or "").lower()
    return not any(word in agent for word in CLIENT_WORDS)


class BrowserPredicate:
    def __init__(self, value: bool, config: Any) -> None:
        self.value = bool(value)

    def text(self) -> str:
        return f"browser = {self.value}"

    phash = text

    def __call__(self, context: Any, request: Any) -> bool:
        return is_browser(request) == self.value


class UiPathPredicate:
    """For exception views: the failing request was for a UI page (answer with HTML)."""

    def __init__(self, value: bool, config: Any) -> None:
        self.value = bool(value)

    def text(self) -> str:
        return f"ui_page = {self.value}"

    phash = text

    def __call__(self, context: Any, request: Any) -> bool:
        path = request.path_info or ""
        return (path == "/ui" or path.startswith("/ui/")) == self.value


class NamesSubdirPredicate:
    """The route's ``{filename}`` is a subdir name (``/<channel>/linux-64``), not a file."""

    def __init__(self, value: bool, config: Any) -> None:
        self.value = bool(value)

    def text(self) -> str:
        return f"names_subdir = {self.value}"

    phash = text

    def __call__(self, context: Any, request: Any) -> bool:
        from repoproxy.names import is_subdir

        return is_subdir(str((request.matchdict or {}).get("filename", ""))) == self.value

"""What pages show, formatted: sizes, dates, readmes, and the how-to-use snippets."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from markupsafe import Markup

from repoproxy.models import Channel, Privacy

TOKEN_PLACEHOLDER = "<YOUR_TOKEN>"  # noqa: S105 - a placeholder shown to people


def human_size(size: int | None) -> str:
    value = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop returns


def when(value: int | str | None) -> str:
    """A timestamp in ms (catalog times) or an ISO string (accounts), as a UTC date-time."""
    if not value:
        return "-"
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value / 1000, UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


@functools.lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    # CommonMark with raw HTML off: tags in a readme are shown as text, never rendered;
    # markdown-it refuses javascript:, vbscript:, file: and data: link targets
    return MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def render_readme(text: str, source: str | None) -> Markup:
    """A package's readme as safe HTML: Markdown for a description, plain text otherwise."""
    if not text:
        return Markup("")
    if source == "description":
        return Markup(_markdown().render(text))  # noqa: S704 - raw HTML is escaped by the parser
    return Markup("<p>{}</p>").format(text)


def server_url(request: Any) -> str:
    """This server's public URL (``repoproxy.base_url`` when set), without a trailing /."""
    base = str(request.services.settings["repoproxy.base_url"] or "")
    return (base or request.application_url).rstrip("/")


def channel_url(request: Any, channel: Channel) -> str:
    return f"{server_url(request)}/{channel.name}"


def token_url(request: Any, channel: Channel) -> str:
    """The channel URL with the token in conda's ``/t/<token>/`` path segment."""
    parts = urlsplit(server_url(request))
    return urlunsplit(parts._replace(path=f"{parts.path}/t/{TOKEN_PLACEHOLDER}/{channel.name}"))


def usage_snippets(request: Any, channel: Channel, example: str = "<package>"
                   ) -> list[dict[str, str]]:
    """Ready-to-copy lines for conda, micromamba, pixi and rattler; for a channel that needs
    credentials, where the token goes."""
    url, server = channel_url(request, channel), server_url(request)
    private = channel.privacy != Privacy.PUBLIC
    conda_url = token_url(request, channel) if private else url
    return [
        {"tool": "conda", "title": "conda",
         "code": (f"conda install --channel {conda_url} {example}\n"
                  f"# or keep it: conda config --add channels {conda_url}"),
         "note": ("conda sends no bearer token: the token goes in the URL's /t/<token>/ "
                  "segment." if private else "")},
        {"tool": "micromamba", "title": "micromamba / mamba",
         "code": ((f"micromamba auth login {server} --bearer {TOKEN_PLACEHOLDER}\n"
                   if private else "") + f"micromamba install --channel {url} {example}"),
         "note": "the token is stored in ~/.mamba/auth/authentication.json." if private else ""},
        {"tool": "pixi", "title": "pixi",
         "code": ((f"pixi auth login {server} --token {TOKEN_PLACEHOLDER}\n"
                   if private else "") + f"pixi project channel add {url}\n"
                  f"pixi add {example}"),
         "note": "pixi keeps the token in your system keyring." if private else ""},
        {"tool": "rattler", "title": "rattler (py-rattler, rattler-build)",
         "code": ((f"rattler-build auth login {server} --token {TOKEN_PLACEHOLDER}\n"
                   if private else "")
                  + f"rattler-build build --channel {url} --recipe recipe.yaml\n"
                  f"# py-rattler: await rattler.solve(channels=[\"{url}\"], "
                  f"specs=[\"{example}\"])"),
         "note": ("rattler reads the token from its authentication store (or "
                  "RATTLER_AUTH_FILE)." if private else "")},
    ]


def upload_snippets(request: Any, channel: Channel) -> list[dict[str, str]]:
    server = server_url(request)
    return [
        {"tool": "rattler-build", "title": "rattler-build",
         "code": (f"rattler-build upload prefix --url {server} --channel {channel.name} "
                  f"--api-key {TOKEN_PLACEHOLDER} mypkg-1.0-0.conda"), "note": ""},
        {"tool": "curl", "title": "curl",
         "code": (f"curl -H 'Authorization: Bearer {TOKEN_PLACEHOLDER}' "
                  f"-H 'X-File-Name: mypkg-1.0-0.conda' --data-binary @mypkg-1.0-0.conda "
                  f"{server}/api/v1/upload/{channel.name}"), "note": ""},
    ]


def page_number(raw: Any) -> int:
    try:
        return max(1, min(int(raw), 10**6))
    except (TypeError, ValueError):
        return 1


def paginate(items: list[Any], page: int, per_page: int) -> tuple[list[Any], int, int]:
    """(the page's items, the page number clamped to the pages there are, the page count)."""
    pages = max(1, -(-len(items) // per_page))
    page = min(page, pages)
    return items[(page - 1) * per_page: page * per_page], page, pages

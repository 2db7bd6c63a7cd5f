"""repoproxy_badges: SVG badges per package (version, license, platforms, downloads, latest
release date, relative release date), and ready-to-paste snippets in the details API.

A badge of a non-public channel needs a read token at the end of its URL (``?token=...``).
A token that could do more than read (write, manage, admin) is refused there: a badge URL is
meant to be pasted into public pages. Every refusal looks exactly like a missing package.
"""

from __future__ import annotations

import html
from typing import Any

from repoproxy import hookimpl

__version__ = "0.1.0"

KINDS = ("version", "license", "platforms", "downloads", "latest_release_date",
         "relative_release_date")


@hookimpl
def repoproxy_configure(config: Any) -> None:
    config.include("repoproxy_badges.views")


@hookimpl
def repoproxy_package_extra(request: Any, channel: Any, record: Any) -> dict[str, Any]:
    from repoproxy.models import Privacy
    from repoproxy.web.resources import channel_url

    suffix = "" if channel.privacy == Privacy.PUBLIC else "?token=<READ_TOKEN>"
    badges = {}
    for kind in KINDS:
        url = channel_url(request, "badges.badge", channel=channel.name, name=record.name,
                          kind=kind) + suffix
        alt = f"{record.name} {kind.replace('_', ' ')}"
        badges[kind] = {
            "url": url,
            "markdown": f"![{alt}]({url})",
            "html": f'<img src="{html.escape(url)}" alt="{html.escape(alt)}">',
            "rst": f".. image:: {url}\n   :alt: {alt}",
        }
    return {"badges": badges}

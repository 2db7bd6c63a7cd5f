# mypy: disable-error-code="empty-body"
"""The hook the mirror plugin adds (``repoproxy_addhooks``): one call per upstream access."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

hookspec = pluggy.HookspecMarker("repoproxy")


@hookspec
def repoproxy_mirror_upstream(services: Core, mirror: str, channel: str, path: str,
                              status: str) -> None:
    """Event: a mirror answered from its cache or went to its upstream.

    Called on every access of a proxied file (passive mode) and every upstream fetch of an
    active run, after the outcome is known. Keep it cheap: it may run on the request path.
    Failures are logged and isolated.

    :param services: the shared services.
    :param mirror: the mirror's name.
    :param channel: the channel the mirror feeds.
    :param path: ``<subdir>/<file>`` relative to the upstream channel (no credentials).
    :param status: ``hit`` (served from cache, fresh), ``miss`` (fetched from the upstream),
        ``stale`` (a stale cache served: refresh under way or upstream down) or ``error``
        (the upstream failed).
    """

# mypy: disable-error-code="empty-body"
"""Hooks the metrics plugin adds (``repoproxy_addhooks``): other plugins add their own series."""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("repoproxy")


@hookspec
def repoproxy_metrics_collectors(registry: Any) -> None:
    """Register extra Prometheus collectors.

    Called once, when the metrics plugin builds its registry at application start.

    :param registry: the ``prometheus_client.CollectorRegistry`` the plugin serves at
        ``/-/metrics``; pass it as ``registry=`` to new metrics or call ``registry.register``.
    """

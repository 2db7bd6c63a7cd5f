"""repoproxy_metrics: Prometheus metrics at ``/-/metrics`` (requests, downloads, uploads, builds).

Request series are labelled by the matched route name (``"none"`` when no route matched), never
by the raw path, so a flood of random URLs adds no series. With ``PROMETHEUS_MULTIPROC_DIR`` set,
prometheus_client's multiprocess mode aggregates the series of every worker process.
prometheus_client is imported on first use so ``repoproxy --help`` stays fast.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from repoproxy import hookimpl

__version__ = "0.1.0"


def _metrics() -> ModuleType:
    from . import metrics

    return metrics


@hookimpl
def repoproxy_addhooks(pluginmanager: Any) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def repoproxy_settings_defaults() -> dict[str, Any]:
    return {"repoproxy_metrics.enabled": True, "repoproxy_metrics.allow_loopback": True}


@hookimpl
def repoproxy_configure(config: Any) -> None:
    config.include("repoproxy_metrics.views")


@hookimpl
def repoproxy_file_served(request: Any, channel: Any, subdir: str, filename: str) -> None:
    _metrics().DOWNLOADS.labels(channel=channel.name).inc()


@hookimpl
def repoproxy_package_added(services: Any, channel: Any, record: Any, path: Any) -> None:
    _metrics().UPLOADS.labels(channel=channel.name).inc()


@hookimpl
def repoproxy_repodata_written(services: Any, channel: Any, subdir: str, path: Any) -> None:
    # the hook carries no duration: count builds
    _metrics().INDEX_BUILDS.labels(channel=channel.name).inc()

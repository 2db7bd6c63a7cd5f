"""The plugin's metric objects and the request tween that feeds them."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

# metrics live in the default registry so multiprocess mode (which writes files from every
# process) and the plain mode share one code path; the served registry is built per scrape
REQUESTS = Counter("repoproxy_http_requests_total", "HTTP requests by route and status",
                   ["route", "status"])
LATENCY = Histogram("repoproxy_http_request_duration_seconds",
                    "HTTP request latency by route and status", ["route", "status"])
AUTH_FAILURES = Counter("repoproxy_auth_failures_total", "Responses with status 401 by route",
                        ["route"])
DOWNLOADS = Counter("repoproxy_downloads_total", "Package file downloads by channel",
                    ["channel"])
UPLOADS = Counter("repoproxy_uploads_total", "Packages added by channel", ["channel"])
INDEX_BUILDS = Counter("repoproxy_index_builds_total", "Subdir repodata rebuilds by channel",
                       ["channel"])

# durations of the write side, without a channel label (buckets x channels would grow fast)
INGEST_SECONDS = Histogram("repoproxy_ingest_duration_seconds",
                           "One package file: from receiving it to commit and index rebuild",
                           buckets=(.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300))
INDEX_BUILD_SECONDS = Histogram("repoproxy_index_build_duration_seconds",
                                "One subdir's repodata files written",
                                buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
TIMED = {"ingest": INGEST_SECONDS, "index_build": INDEX_BUILD_SECONDS}

_extra = CollectorRegistry(auto_describe=True)


def extra_registry() -> CollectorRegistry:
    """Where other plugins' collectors live (``repoproxy_metrics_collectors``)."""
    return _extra


def exposition() -> bytes:
    """The text exposition of every series, aggregated over processes when in multiprocess mode."""
    from prometheus_client import REGISTRY

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry) + generate_latest(_extra)
    return generate_latest(REGISTRY) + generate_latest(_extra)


def request_observer() -> Callable[[str, int, float], None]:
    """``observe(route, status, seconds)`` (``repoproxy_request_observers``): count and time
    each request by matched route name (``none`` if unmatched) and status."""
    # (route, status) -> the labelled children: ``labels()`` costs a lock and a keyword
    # check per call, on every request. Bounded: route names and statuses are finite
    children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def observe(route: str, status: int, seconds: float) -> None:
        pair = children.get((route, status))
        if pair is None:
            label = str(status)
            pair = children[(route, status)] = (REQUESTS.labels(route=route, status=label),
                                                LATENCY.labels(route=route, status=label))
        pair[0].inc()
        pair[1].observe(seconds)
        if status == 401:
            AUTH_FAILURES.labels(route=route).inc()

    return observe

"""repoproxy_metrics: Prometheus metrics at ``/-/metrics`` (requests, downloads, uploads, builds).

Request series are labelled by the matched route name (``"none"`` when no route matched), never
by the raw path, so a flood of random URLs adds no series. With ``PROMETHEUS_MULTIPROC_DIR`` set,
prometheus_client's multiprocess mode aggregates the series of every worker process.
prometheus_client is imported on first use so ``repoproxy --help`` stays fast.

``repoproxy serve --workers N`` turns multiprocess mode on by itself when
``PROMETHEUS_MULTIPROC_DIR`` is not set: a fresh directory under the root's ``tmp/``, set
before prometheus_client is first imported (``repoproxy_serve_processes``), removed when the
supervisor exits; a dead worker's live series are dropped (``repoproxy_worker_exited``).
"""

from __future__ import annotations

import os
import shutil
import sys
from types import ModuleType
from typing import Any

from repoproxy import hookimpl

__version__ = "0.1.0"


def _metrics() -> ModuleType:
    from . import metrics

    return metrics


def _kept() -> ModuleType | None:
    """The metrics for a count made outside a request, or None in a process where no one can
    read it: one that built no app (the app's views load the metrics: a CLI command such as
    ``repoproxy import``) and shares no multiprocess directory. Loading prometheus_client
    there only to count into nothing cost a bulk import ~45 ms of its start."""
    module = sys.modules.get(f"{__name__}.metrics")
    if module is None and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    return _metrics()


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
def repoproxy_request_observers(services: Any) -> Any:
    from pyramid.settings import asbool

    # every request, refusals included, by route name and status (the core calls this from
    # its access log tween and from the server's lean path)
    if not asbool(services.settings.get("repoproxy_metrics.enabled", True)):
        return None
    return [_metrics().request_observer()]


@hookimpl
def repoproxy_file_served(request: Any, channel: Any, subdir: str, filename: str) -> None:
    _metrics().DOWNLOADS.labels(channel=channel.name).inc()


@hookimpl
def repoproxy_package_added(services: Any, channel: Any, record: Any, path: Any) -> None:
    if (metrics := _kept()) is not None:
        metrics.UPLOADS.labels(channel=channel.name).inc()


@hookimpl
def repoproxy_repodata_written(services: Any, channel: Any, subdir: str, path: Any) -> None:
    # the hook carries no duration: count builds
    if (metrics := _kept()) is not None:
        metrics.INDEX_BUILDS.labels(channel=channel.name).inc()


@hookimpl
def repoproxy_operation_timed(services: Any, operation: str, channel: str,
                              seconds: float) -> None:
    metrics = _kept()
    histogram = metrics.TIMED.get(operation) if metrics is not None else None
    if histogram is not None:
        histogram.observe(seconds)


@hookimpl
def repoproxy_serve_processes(services: Any, workers: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return  # the operator's directory (they clean it between runs)
    import atexit

    directory = services.store.tmp_dir / f"prometheus-{os.getpid()}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    # read by prometheus_client when it is first imported: the app is built after this
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    pid = os.getpid()
    # the supervisor only (forked workers inherit atexit but leave through os._exit)
    def _remove() -> None:
        if os.getpid() == pid:
            shutil.rmtree(directory, ignore_errors=True)

    atexit.register(_remove)


@hookimpl
def repoproxy_worker_exited(services: Any, pid: int) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)

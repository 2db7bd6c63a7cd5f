"""Run the app under waitress with background workers; recover from crashes at start-up."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from .plugins import collect
from .services import Services

log = logging.getLogger(__name__)


def recover(services: Services) -> None:
    """Bring every channel back to a state where repodata matches files (after a crash).

    Leftover temporary files are removed; files renamed into place whose commit never happened
    are indexed; rows whose file vanished are dropped; unbuilt generations are built.
    """
    removed = services.store.clean_tmp()
    if removed:
        log.info("removed %d temporary files left by an interrupted write", removed)
    catalog = services.catalog()
    for channel in catalog.list_channels():
        subdirs = set(catalog.subdirs(channel.name))
        directory = services.store.channel_dir(channel.name)
        if directory.is_dir():
            subdirs |= {p.name for p in directory.iterdir() if p.is_dir() and p.name != "shards"}
        for subdir in sorted(subdirs):
            try:
                stats = services.ingestor.reconcile(channel.name, subdir)
            except Exception:
                log.exception("recovery of %s/%s failed", channel.name, subdir)
                continue
            if any(stats.values()):
                log.info("recovered %s/%s: %s", channel.name, subdir, stats)
            services.indexer.build(channel.name, subdir)
        services.indexer.build_channeldata(channel.name)


def serve(services: Services, app: Any, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then stop workers and exit cleanly."""
    from waitress.server import create_server

    settings = services.settings
    server = create_server(
        app,
        host=host,
        port=port,
        threads=settings["repoproxy.threads"],
        connection_limit=settings["repoproxy.connection_limit"],
        backlog=2048,
        # waitress refuses larger bodies itself (413) before they reach the app
        max_request_body_size=settings["repoproxy.max_upload_size"] + 1024 * 1024,
        channel_timeout=300,
        ident="repoproxy",
        clear_untrusted_proxy_headers=True,
    )
    workers = []
    for worker in collect(services.pm.hook.repoproxy_background_workers(services=services)):
        try:
            worker.start()
            workers.append(worker)
        except Exception:
            log.exception("background worker %r failed to start", worker)

    stopping = threading.Event()

    def _stop(signum: int, frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("signal %d: shutting down", signum)
            server.close()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("serving on http://%s:%s", *server.getsockname()[:2])
    try:
        server.run()
    except (OSError, ValueError):
        if not stopping.is_set():
            raise  # closed by the signal handler: the loop ends with a select on a closed fd
    finally:
        for worker in reversed(workers):
            try:
                worker.stop()
            except Exception:
                log.exception("background worker %r failed to stop", worker)
        services.close()
    log.info("stopped")

"""Run the app under waitress with the plugins' background workers."""

from __future__ import annotations

import logging
import signal
from typing import Any

from repoproxy.domain.core import Core
from repoproxy.errors import ConfigError
from repoproxy.plugins import collect

log = logging.getLogger(__name__)


def serve(services: Core, app: Any, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT, then stop workers and exit cleanly."""
    from waitress.server import create_server

    settings = services.settings
    try:
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
    except (OSError, ValueError) as e:  # address in use, unknown host: one line, no traceback
        raise ConfigError(f"cannot listen on {host}:{port}: "
                          f"{getattr(e, 'strerror', None) or e}") from None
    workers = []
    for worker in collect(services.pm.hook.repoproxy_background_workers(services=services)):
        try:
            worker.start()
            workers.append(worker)
        except Exception:
            log.exception("background worker %r failed to start", worker)

    def _stop(signum: int, frame: Any) -> None:
        log.info("signal %d: shutting down", signum)
        # waitress's run() turns SystemExit into a shutdown of its worker threads; closing the
        # socket alone would leave the loop polling its wake-up pipe forever
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("serving on http://%s:%s", *server.getsockname()[:2])
    try:
        server.run()
    finally:
        server.close()
        for worker in reversed(workers):
            try:
                worker.stop()
            except Exception:
                log.exception("background worker %r failed to stop", worker)
        services.close()
    log.info("stopped")

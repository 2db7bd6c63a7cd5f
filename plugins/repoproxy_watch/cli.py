"""``repoproxy watch``: the watch worker alone, in the foreground, or its status."""

from __future__ import annotations

import json
import logging
import signal
from pathlib import Path
from typing import Any

import click

from repoproxy.cli.common import config_option, open_services, root_option, setup_logging
from repoproxy.errors import RepoproxyError

log = logging.getLogger(__name__)


@click.command("watch")
@root_option
@config_option
@click.option("--status", "show_status", is_flag=True,
              help="Print the watch folder's status as JSON and exit (works offline).")
@click.option("--once", is_flag=True,
              help="Ingest what is in the folder now, once it has settled, then exit.")
@click.option("--timeout", type=float, default=None,
              help="With --once: give up after this many seconds (exit code 1).")
def watch(root: Path | None, config: Path | None, show_status: bool, once: bool,
          timeout: float | None) -> None:
    """Ingest packages dropped into the watch folder, until SIGTERM/SIGINT.

    `repoproxy serve` runs the same worker in the background; run this instead where the
    server does not run, or beside it as a standby (one worker processes a folder at a time).
    """
    from .config import WatchConfig
    from .state import status, worker_running
    from .worker import WatchWorker

    setup_logging(logging.WARNING if show_status else logging.INFO, ini=config)
    services = open_services(root, config)
    try:
        cfg = WatchConfig.from_settings(services.settings)
        if show_status:
            click.echo(json.dumps(status(services, cfg), indent=2))
            return
        worker = WatchWorker(services, cfg)

        def _stop(signum: int, frame: Any) -> None:
            log.info("signal %d: stopping", signum)
            worker.request_stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        finished = worker.run(until_idle=once, timeout=timeout)
        if once:
            report = status(services, cfg)
            click.echo(f"processed {report['processed']}, rejected {report['rejected']}, "
                       f"pending {report['pending']} (totals for {cfg.root})")
            if not finished:
                if worker_running(cfg):
                    raise click.ClickException(
                        f"another worker (repoproxy serve?) processes {cfg.root}")
                raise click.ClickException("timed out with files still pending")
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None
    finally:
        services.close()

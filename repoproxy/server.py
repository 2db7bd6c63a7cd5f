"""Run the app under waitress with background workers; recover from crashes at start-up."""

from __future__ import annotations

import logging
import os
import signal
from contextlib import suppress
from pathlib import Path
from typing import Any

from .names import is_subdir
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
        removed = _remove_partial_writes(services, channel.name, directory, sorted(subdirs))
        if removed:
            log.info("removed %d files of interrupted writes in %s", removed, channel.name)
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


def _remove_partial_writes(services: Services, channel: str, directory: Path,
                           subdirs: list[str]) -> int:
    """Remove what a crash left in a channel's tree: ``.tmp-*`` files of an interrupted
    :func:`~repoproxy.store.atomic_write` and ``.bak-<pid>-*`` hard links of an interrupted
    forced replacement (the file they back up is always still in place)."""
    count = 0

    def sweep(d: Path) -> None:
        nonlocal count
        if not d.is_dir():
            return
        for p in d.iterdir():
            if p.name.startswith(".tmp-") or (p.name.startswith(".bak-") and _stale_backup(p)):
                with suppress(OSError):
                    p.unlink()
                    count += 1

    sweep(directory)  # channeldata.json's twins
    for subdir in subdirs:
        if not is_subdir(subdir):
            continue  # not ours: reconcile reports it
        sub = services.store.subdir_dir(channel, subdir)
        with services.indexer._lock(channel, subdir):  # no build of this subdir is writing
            sweep(sub)
            sweep(sub / "shards")
    return count


def _stale_backup(path: Path) -> bool:
    """A ``.bak-<pid>-`` file whose writer is gone (a live other process may still need it)."""
    pid = path.name.split("-")[1]
    if not pid.isdigit() or int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass  # alive, owned by someone else
    return False


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

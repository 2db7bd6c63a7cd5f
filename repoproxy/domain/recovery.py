"""Start-up recovery: bring every channel back to a state where repodata matches the files."""

from __future__ import annotations

import logging
import os
from contextlib import suppress
from pathlib import Path

from repoproxy.domain.artifacts import remove_orphan_blobs
from repoproxy.domain.core import Core
from repoproxy.errors import RepoproxyError
from repoproxy.names import check_channel_name, is_subdir
from repoproxy.pipeline.processes import alive

log = logging.getLogger(__name__)


def recover(services: Core) -> None:
    """Bring every channel back to a state where repodata matches files (after a crash).

    Leftover temporary files are removed; files renamed into place whose commit never happened
    are indexed; rows whose file vanished are dropped; unbuilt generations are built.
    """
    removed = services.store.clean_tmp()
    if removed:
        log.info("removed %d temporary files left by an interrupted write", removed)
    catalog = services.catalog()
    for channel in catalog.list_channels():
        try:
            check_channel_name(channel.name)
            _recover_channel(services, channel.name)
        except Exception as e:
            # one channel the server cannot handle (a name no current rule allows, a broken
            # subdir) is left alone and reported; every other channel is still served
            log.error("recovery skipped channel %r: %s", channel.name, e,
                      exc_info=not isinstance(e, RepoproxyError))


def recover_apart(services: Core) -> None:
    """:func:`recover` in a forked child process, waited for (``repoproxy serve``).

    Recovery reads every record of every channel and may rebuild indexes: with 50,000 files
    ~100 MB at its peak, which the allocator of a serving process would keep for its whole
    life (measured: 107 MB idle after recovery in the process, 65 MB without). A child gives
    all of it back when it exits. Nothing of recovery is kept in memory but the indexer's
    caches, which the first build refills. The catalog connections are closed first: a
    SQLite connection must not cross a fork.
    """
    services.close()
    pid = os.fork()
    if pid == 0:  # the child: recover, then leave without running the parent's cleanup
        code = 1
        try:
            recover(services)
            code = 0
        except BaseException:
            log.exception("recovery failed")
        finally:
            services.close()
            logging.shutdown()  # flush the child's log lines
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RecoveryFailed("start-up recovery failed (see the log above)")


class RecoveryFailed(RepoproxyError):
    status = 500
    code = "recovery-failed"


def _recover_channel(services: Core, channel: str) -> None:
    catalog = services.catalog()
    subdirs = set(catalog.subdirs(channel))
    directory = services.store.channel_dir(channel)
    # a subchannel's tree lies inside its parent's (channels/C/SUB): not a subdir of C
    subchannels = {c.name.partition("/")[2] for c in catalog.subchannels(channel)}
    if directory.is_dir():
        # dot-directories are not subdirs (.artifacts: generic artifacts' blobs)
        subdirs |= {p.name for p in directory.iterdir()
                    if p.is_dir() and p.name != "shards" and not p.name.startswith(".")
                    and p.name not in subchannels}
    bad = sorted(s for s in subdirs if not is_subdir(s))
    if bad:
        log.error("recovery skipped subdirs %s of channel %r: not valid subdir names",
                  ", ".join(map(repr, bad)), channel)
    good = sorted(subdirs - set(bad))
    removed = _remove_partial_writes(services, channel, directory, good)
    if removed:
        log.info("removed %d files of interrupted writes in %s", removed, channel)
    for subdir in good:
        try:
            stats = services.ingestor.reconcile(channel, subdir)
            if any(stats.values()):
                log.info("recovered %s/%s: %s", channel, subdir, stats)
            services.indexer.build(channel, subdir)
        except Exception:
            log.exception("recovery of %s/%s failed", channel, subdir)
    services.indexer.build_channeldata(channel)
    orphans = remove_orphan_blobs(services, channel)
    if orphans:
        log.info("removed %d unreferenced artifact files in %s", orphans, channel)


def _remove_partial_writes(services: Core, channel: str, directory: Path,
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
    return not alive(int(pid))

"""The public view: ``<root>/public/<channel>`` is a symlink to ``../channels/<channel>`` for
exactly the channels that are public, so that a static front (the nginx front of
``repoproxy nginx-conf``) can serve their index files and shards straight from the tree and
fall back to repoproxy for everything else.

Safety rests on the order of operations, not on timing (domain/channels.py):

- a channel leaves the view *before* the transaction that makes it non-public (or removes it)
  commits, and joins it only *after* the transaction that makes it public committed; a crash
  in between leaves a public channel out of the view (served slower, by repoproxy), never a
  private one in it;
- every change runs under one file lock (``public/.lock``), so two processes changing the
  same channel's privacy cannot interleave a stale "publish" after a newer "make private";
- ``repoproxy serve`` re-derives the whole view from the catalog at start (:meth:`sync`).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from repoproxy.errors import InvalidName
from repoproxy.names import check_channel_name

LOCK = ".lock"


class PublicView:
    def __init__(self, root: Path) -> None:
        self.dir = Path(root) / "public"

    def link(self, channel: str) -> Path | None:
        """The channel's place in the view; None for a name no channel can have, and for a
        subchannel ``C/SUB``: its files lie under ``channels/C/SUB/`` and its privacy is always
        C's, so C's link already covers it, exactly as long as C is public."""
        if "/" in channel:
            return None
        try:
            return self.dir / check_channel_name(channel)
        except InvalidName:
            return None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Serialise view changes across threads and processes of one root."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def publish(self, channel: str) -> None:
        """Add the channel (idempotent; atomic: the link appears whole or not at all)."""
        link = self.link(channel)
        if link is None:
            return
        target = Path("..") / "channels" / channel
        with suppress(OSError):
            if link.readlink() == target:
                return
        tmp = self.dir / f".{channel}.{os.getpid()}.tmp"
        with suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(target)
        os.replace(tmp, link)

    def unpublish(self, channel: str) -> None:
        """Take the channel out (idempotent). Raises if it cannot: the caller must not then
        make the channel private."""
        link = self.link(channel)
        if link is not None:
            with suppress(FileNotFoundError):
                link.unlink()

    def published(self) -> set[str]:
        if not self.dir.is_dir():
            return set()
        return {p.name for p in self.dir.iterdir() if p.is_symlink()}

    def sync(self, public: Iterable[str]) -> None:
        """Make the view hold exactly ``public`` (call under :meth:`locked`)."""
        wanted = set(public)
        for name in self.published() - wanted:
            with suppress(FileNotFoundError):
                (self.dir / name).unlink()
        for name in sorted(wanted):
            self.publish(name)

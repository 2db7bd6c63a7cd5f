"""The public view: ``<root>/public/<channel>`` is a symlink to ``../channels/<channel>`` (and
``<root>/public/<channel>+<sub>`` one to ``../channels/<channel>/<sub>``) for exactly the
channels and subchannels that are public, so that a static front (the nginx front of
``repoproxy nginx-conf``) can serve their index files and shards straight from the tree and
fall back to repoproxy for everything else.

Safety rests on the order of operations, not on timing (domain/channels.py):

- a channel leaves the view *before* the transaction that makes it non-public (or removes it)
  commits, and joins it only *after* the transaction that makes it public committed; a crash
  in between leaves a public channel out of the view (served slower, by repoproxy), never a
  private one in it;
- every change runs under one file lock (``public/.lock``), so two processes changing the
  same channel's privacy cannot interleave a stale "publish" after a newer "make private";
- a subchannel's privacy is its parent's: a change of the parent's privacy moves the
  subchannels' links with the parent's, in the same order;
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
        """The channel's place in the view; None for a name no channel can have.

        A subchannel ``C/SUB`` has a link of its own, ``C+SUB`` ('+' is in no channel name),
        to ``channels/C/SUB``: C's link leads to the same files, but the front serves
        ``/C/SUB/...`` only through ``C+SUB``, so that a subchannel leaves the view before its
        removal commits (its tree is moved away only after), as a channel does.
        """
        try:
            check_channel_name(channel)
        except InvalidName:
            return None
        return self.dir / channel.replace("/", "+")

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
        target = Path("..") / "channels" / Path(*channel.split("/"))
        with suppress(OSError):
            if link.readlink() == target:
                return
        tmp = self.dir / f".{link.name}.{os.getpid()}.tmp"
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
        """Make the view hold exactly the channels (and subchannels) ``public`` (call under
        :meth:`locked`)."""
        wanted = {link.name: name for name in public if (link := self.link(name)) is not None}
        for name in self.published() - set(wanted):
            with suppress(FileNotFoundError):
                (self.dir / name).unlink()
        for name in sorted(wanted.values()):
            self.publish(name)

"""The passive proxy's locks: single-flight across threads and processes.

Lock files are ``flock``-ed (:func:`file_lock`, :func:`try_lock`): such a lock belongs to the
open file, so two threads of one process exclude each other as two processes do, and it
goes with the process that dies holding it.

A package's first fetch is locked by :func:`package_lock`: on Linux, an open file
description (OFD) lock on one byte of its subdir's ``pkgs/.fetch.lock``, at an offset taken
from the file's name. One lock file per subdir, made once: a lock file per package cost each
first fetch a file creation before its upstream request (0.3-1.1 ms on the bench's disk).
OFD locks, like ``flock``, belong to the open file (classic ``fcntl`` record locks belong
to the process, so its threads would not exclude each other) and are released when it is
closed, by a crash too. Two names share a byte only if 62 bits of their hashes do: they
would then wait for each other, never fetch the same file twice. Where OFD locks are
missing (macOS), a lock file per package, ``flock``-ed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import struct
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: the subdir's package lock file, under its ``pkgs/``
FETCH_LOCK = ".fetch.lock"
#: ``struct flock`` of the 64-bit Linux ABIs (x86-64, arm64, ...): l_type, l_whence,
#: l_start, l_len, l_pid (0: OFD locks require it), padded to its 32 bytes
_FLOCK = "hhqqi4x"
_OFD = sys.platform == "linux" and hasattr(fcntl, "F_OFD_SETLK") and sys.maxsize > 2**32
_HELD = (BlockingIOError, PermissionError)  # EAGAIN or EACCES: another open file holds it


@contextmanager
def file_lock(path: Path, *, blocking: bool) -> Iterator[bool]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def try_lock(path: Path) -> Callable[[], None] | None:
    """The lock file taken without waiting, and its release; None when it is held (by any
    thread or process: flock locks belong to the open file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+b")  # noqa: SIM115 - closed by the release
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    return _once(f.close)  # closing the file releases its lock


def _once(close: Callable[[], None]) -> Callable[[], None]:
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            close()
    return release


def name_offset(filename: str) -> int:
    """The byte of a subdir's lock file that stands for ``filename``: 62 bits of its hash
    (a non-negative ``off_t``)."""
    return int.from_bytes(hashlib.blake2b(filename.encode(), digest_size=8).digest()) >> 2


def _open(path: Path) -> int:
    flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:  # the subdir's first package
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, flags, 0o644)


def range_lock(path: Path, start: int, length: int, *,
               blocking: bool) -> Callable[[], None] | None:
    """An OFD write lock on ``length`` bytes of ``path`` from ``start`` (0: to the end and
    beyond, the whole file), taken on a file opened for it, and its release (closing that
    file); None when another open file holds any of those bytes (not ``blocking``)."""
    fd = _open(path)
    request = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, start, length, 0)
    try:
        fcntl.fcntl(fd, fcntl.F_OFD_SETLKW if blocking else fcntl.F_OFD_SETLK, request)
    except _HELD:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return _once(lambda: os.close(fd))


def package_lock(pkgs: Path, filename: str, *, blocking: bool) -> Callable[[], None] | None:
    """The lock of ``filename``'s first fetch into ``pkgs`` and its release; None when it
    is held (only when not ``blocking``)."""
    if _OFD:
        return range_lock(pkgs / FETCH_LOCK, name_offset(filename), 1, blocking=blocking)
    path = pkgs / ".locks" / f"{filename}.lock"
    if not blocking:
        return try_lock(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "a+b")  # noqa: SIM115 - closed by the release
    try:
        fcntl.flock(f, fcntl.LOCK_EX)
    except BaseException:
        f.close()
        raise
    return _once(f.close)


@contextmanager
def holding(pkgs: Path, filename: str) -> Iterator[None]:
    """``filename``'s lock held (waiting for it) for the block."""
    release = package_lock(pkgs, filename, blocking=True)
    assert release is not None  # a blocking lock is taken or raises
    try:
        yield
    finally:
        release()

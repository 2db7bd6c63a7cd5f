"""JSON index files rewritten by patching the file written last (repodata.json and
run_exports.json of a big subdir), without holding the subdir in Python objects.

Such a file is ``pieces[0]``, the members of section 0, ``pieces[1]``, the members of section 1,
..., ``pieces[-1]``: each section is the inside of one JSON object, its members
``"key":value`` sorted by key and joined by commas. A :class:`Layout` notes where each member
lies in the file; it is all that is kept between builds (a key and two integers per member,
no member text). A publish that changes a few keys copies the unchanged runs of members
from the previous file (in the kernel where it can: ``copy_file_range``) and writes only the
changed members, while the .zst twin is compressed from the same plan in a second thread
(zstd releases the GIL): the cost of a change is one pass over the file's bytes, with no
parsing, no encoding and no whole copy of the file in memory.
"""

from __future__ import annotations

import errno
import gzip
import os
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import zstandard

from repoproxy.storage.pools import ProcessPool
from repoproxy.storage.store import Staging, free_later, set_aside

#: bytes read (or buffered) at a time: big enough for few system calls, small enough that
#: no step holds a big file in memory
CHUNK = 1 << 20

#: a piece of a planned file: new bytes, or (offset, length) of bytes of the previous file
Segment = bytes | tuple[int, int]

#: the .zst of a planned file is compressed here while the calling thread writes the file
_ZST_THREAD = ProcessPool(1, "zst-twin")


@dataclass
class Section:
    """Where the members of one JSON object of the file lie: keys sorted, with each member's
    offset and length in the file."""

    keys: list[str] = field(default_factory=list)
    starts: array[int] = field(default_factory=lambda: array("q"))
    lengths: array[int] = field(default_factory=lambda: array("q"))

    def add(self, key: str, start: int, length: int) -> None:
        self.keys.append(key)
        self.starts.append(start)
        self.lengths.append(length)

    def keys_with_prefix(self, prefix: str) -> list[str]:
        i = bisect_left(self.keys, prefix)
        out = []
        while i < len(self.keys) and self.keys[i].startswith(prefix):
            out.append(self.keys[i])
            i += 1
        return out


@dataclass
class Layout:
    """The members of every section of one file, and which file that is."""

    sections: list[Section]
    #: (inode, size, mtime ns) of the file once in place: a layout describes that file only
    ident: tuple[int, int, int] = (0, 0, 0)

    def __len__(self) -> int:
        return sum(len(s.keys) for s in self.sections)


def identity(fd: int) -> tuple[int, int, int]:
    st = os.fstat(fd)
    return st.st_ino, st.st_size, st.st_mtime_ns


class WholeWriter:
    """Writes a file from all its members, section after section, keys in order (the caller
    streams them, e.g. from the catalog), noting the layout."""

    def __init__(self, f: IO[bytes], pieces: Sequence[bytes]) -> None:
        self._f, self._pieces = f, list(pieces)
        self._buf = bytearray()
        self._pos = 0
        self.layout = Layout([])
        self.next_section()

    def next_section(self) -> None:
        self._write(self._pieces[len(self.layout.sections)])
        self.layout.sections.append(Section())

    def member(self, key: str, data: bytes) -> None:
        section = self.layout.sections[-1]
        if section.keys:
            self._write(b",")
        section.add(key, self._pos, len(data))
        self._write(data)

    def close(self) -> Layout:
        """Write the closing piece and flush; the file stays open (the caller's)."""
        if len(self.layout.sections) != len(self._pieces) - 1:
            raise ValueError("a file needs one piece more than it has sections")
        self._write(self._pieces[-1])
        self._f.write(self._buf)
        self._f.flush()
        self._buf.clear()
        return self.layout

    def _write(self, data: bytes) -> None:
        self._buf += data
        self._pos += len(data)
        if len(self._buf) >= CHUNK:
            self._f.write(self._buf)
            self._buf.clear()


class _Planner:
    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.pos = 0

    def emit(self, segment: Segment, size: int) -> None:
        self.segments.append(segment)
        self.pos += size

    def new(self, out: Section, key: str, data: bytes) -> None:
        if out.keys:
            self.emit(b",", 1)
        out.add(key, self.pos, len(data))
        self.emit(data, len(data))

    def keep(self, section: Section, out: Section, i: int, j: int) -> None:
        """The old members i..j-1: one run of the old file's bytes."""
        if out.keys:
            self.emit(b",", 1)
        start = section.starts[i]
        end = section.starts[j - 1] + section.lengths[j - 1]
        delta = self.pos - start
        out.keys.extend(section.keys[i:j])
        starts = section.starts[i:j]
        # the one O(n) step in Python of a patch (a few ms at 50,000 members)
        out.starts.extend(starts if delta == 0 else array("q", map(delta.__add__, starts)))
        out.lengths.extend(section.lengths[i:j])
        self.emit((start, end - start), end - start)


def plan(old: Layout, pieces: Sequence[bytes],
         changes: Sequence[Mapping[str, bytes | None]]) -> tuple[list[Segment], Layout, int]:
    """The segments of the new file: the old layout with, per section, the members in
    ``changes`` set (bytes) or removed (None); with the new layout and the new size."""
    if not len(old.sections) == len(changes) == len(pieces) - 1:
        raise ValueError("one change set per section, one piece more than sections")
    planner = _Planner()
    new = Layout([])
    for k, (section, change) in enumerate(zip(old.sections, changes, strict=True)):
        planner.emit(pieces[k], len(pieces[k]))
        out = Section()
        i, n = 0, len(section.keys)
        for key in sorted(change):
            j = bisect_left(section.keys, key, i)
            if j > i:
                planner.keep(section, out, i, j)
            i = j + 1 if j < n and section.keys[j] == key else j
            data = change[key]
            if data is not None:
                planner.new(out, key, data)
        if i < n:
            planner.keep(section, out, i, n)
        new.sections.append(out)
    planner.emit(pieces[-1], len(pieces[-1]))
    return planner.segments, new, planner.pos


def _chunks(fd: int, segments: Iterable[Segment]) -> Iterable[bytes]:
    for segment in segments:
        if isinstance(segment, bytes):
            yield segment
            continue
        offset, size = segment
        while size > 0:
            data = os.pread(fd, min(size, CHUNK), offset)
            if not data:
                raise OSError(f"the previous file ended at {offset}, short of its layout")
            offset += len(data)
            size -= len(data)
            yield data


def _write_segments(f: IO[bytes], old_fd: int, segments: Sequence[Segment]) -> None:
    f.flush()
    out = f.fileno()
    for segment in segments:
        if isinstance(segment, bytes):
            f.write(segment)
            f.flush()
            continue
        offset, size = segment
        try:
            if not hasattr(os, "copy_file_range"):  # not Linux
                raise OSError(errno.ENOSYS, "no copy_file_range")
            while size > 0:  # in the kernel, no copy through Python
                done = os.copy_file_range(old_fd, out, size, offset)
                if done == 0:
                    raise OSError(f"the previous file ended at {offset}, short of its layout")
                offset += done
                size -= done
        except OSError as e:
            if e.errno is None:
                raise
            # a filesystem without copy_file_range between these files: through user space
            for data in _chunks(old_fd, [(offset, size)]):
                f.write(data)
            f.flush()


def write_planned(f: IO[bytes], zst: IO[bytes] | None, old_fd: int,
                  segments: Sequence[Segment], size: int, level: int) -> None:
    """Write the planned file to ``f`` and, in a second thread meanwhile, its .zst to ``zst``
    (with the content size in the frame header, as one-shot decoders want)."""
    pending = (_ZST_THREAD.get().submit(_compress, zst, _chunks(old_fd, segments), size, level)
               if zst is not None else None)
    try:
        _write_segments(f, old_fd, segments)
    finally:
        if pending is not None:
            pending.result()


def compress_file(src_fd: int, zst: IO[bytes], level: int) -> None:
    """The .zst of a file written whole, read back in chunks."""
    size = os.fstat(src_fd).st_size
    _compress(zst, _chunks(src_fd, [(0, size)]), size, level)


#: gzip twins are written after the files they compress (off the visible path); level 1 is
#: about twice as fast as 6 for ~12% more bytes
GZIP_LEVEL = 1


def set_aside_twin(path: Path) -> None:
    """The stale gzip twin of ``path`` out of the way before ``path`` is replaced: the file
    is then served plain until its new twin is in place, never older."""
    free_later([a for a in [set_aside(path.with_name(path.name + ".gz"), move=True)]
                if a is not None])


def stage_twin(src_fd: int, path: Path) -> Staging:
    """The gzip twin of ``path``, compressed from ``src_fd`` (read in chunks, never whole in
    memory; zlib releases the GIL, so it may run in a thread), staged."""
    staging = Staging()
    try:
        with staging.open(path.with_name(path.name + ".gz")) as out:
            gzip_file(src_fd, out, GZIP_LEVEL)
    except BaseException:
        staging.discard()
        raise
    return staging


def gzip_file(src_fd: int, out: IO[bytes], level: int) -> None:
    """The gzip twin of a file, read in chunks (no name, no time in the header)."""
    size = os.fstat(src_fd).st_size
    with gzip.GzipFile(filename="", mode="wb", compresslevel=level, fileobj=out,
                       mtime=0) as gz:
        for data in _chunks(src_fd, [(0, size)]):
            gz.write(data)
    out.flush()


def _compress(out: IO[bytes], chunks: Iterable[bytes], size: int, level: int) -> None:
    compressor = zstandard.ZstdCompressor(level=level)
    with compressor.stream_writer(out, size=size, closefd=False) as w:
        for data in chunks:
            w.write(data)
    out.flush()

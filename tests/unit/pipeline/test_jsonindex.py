"""A patched JSON index file is byte for byte the file written whole from the same members,
whatever the changes (added, replaced, removed members, at the ends or in the middle, whole
sections emptied), and its .zst holds the same bytes."""

from __future__ import annotations

import errno
import json
import os
import random
from pathlib import Path

import pytest
import zstandard

from repoproxy.pipeline.jsonindex import (
    Layout,
    WholeWriter,
    compress_file,
    gzip_file,
    plan,
    write_planned,
)

PIECES = [b'{"info":{},"a":{', b'},"b":{', b'},"tail":1}']


def _member(key: str, value: object) -> bytes:
    return f"{json.dumps(key)}:{json.dumps(value)}".encode()


def _whole(path: Path, sections: list[dict[str, object]]) -> Layout:
    with path.open("wb") as f:
        writer = WholeWriter(f, PIECES)
        for k, section in enumerate(sections):
            if k:
                writer.next_section()
            for key in sorted(section):
                writer.member(key, _member(key, section[key]))
        return writer.close()


def test_patched_files_equal_whole_ones(tmp_path: Path) -> None:
    rng = random.Random(12)
    sections: list[dict[str, object]] = [
        {f"k{rng.randrange(10**6):07d}": {"v": i} for i in range(300)},
        {f"c{i:05d}": [i] * (i % 7) for i in range(200)},
    ]
    layout = _whole(tmp_path / "f0.json", sections)
    assert json.loads((tmp_path / "f0.json").read_bytes())["a"] == sections[0]
    previous = tmp_path / "f0.json"
    for step in range(40):
        changes: list[dict[str, bytes | None]] = [{}, {}]
        for k, section in enumerate(sections):
            for _ in range(rng.choice([0, 1, 3, 20])):
                if section and rng.random() < 0.4:  # remove one
                    key = rng.choice(sorted(section))
                    del section[key]
                    changes[k][key] = None
                else:  # add or replace one (at the ends too)
                    key = rng.choice([f"{'kc'[k]}{rng.randrange(10**6):07d}", "", "~~~"])
                    section[key] = {"step": step}
                    changes[k][key] = _member(key, section[key])
        if step == 30:  # a whole section emptied
            changes[1].update(dict.fromkeys(sections[1]))
            sections[1] = {}
        segments, new_layout, size = plan(layout, PIECES, changes)
        out, zst = tmp_path / f"f{step + 1}.json", tmp_path / f"f{step + 1}.json.zst"
        fd = os.open(previous, os.O_RDONLY)
        try:
            with out.open("wb") as f, zst.open("wb") as z:
                write_planned(f, z, fd, segments, size, level=1)
        finally:
            os.close(fd)
        _whole(tmp_path / "whole.json", sections)
        assert out.read_bytes() == (tmp_path / "whole.json").read_bytes()
        assert size == out.stat().st_size
        assert zstandard.ZstdDecompressor().decompress(zst.read_bytes()) == out.read_bytes()
        assert len(new_layout) == sum(len(s) for s in sections)
        previous.unlink()
        previous, layout = out, new_layout


def test_compressed_twins_of_a_file(tmp_path: Path) -> None:
    import gzip

    src = tmp_path / "f.json"
    src.write_bytes(b'{"x":' + b"1" * 3_000_000 + b"}")
    fd = os.open(src, os.O_RDONLY)
    try:
        with (tmp_path / "f.zst").open("wb") as z, (tmp_path / "f.gz").open("wb") as g:
            compress_file(fd, z, level=1)
            gzip_file(fd, g, level=1)
    finally:
        os.close(fd)
    # one-shot decoders need the content size in the frame header
    assert zstandard.ZstdDecompressor().decompress((tmp_path / "f.zst").read_bytes()) == \
        src.read_bytes()
    assert gzip.decompress((tmp_path / "f.gz").read_bytes()) == src.read_bytes()


def test_a_filesystem_without_copy_file_range_gets_the_same_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "cross-device")

    monkeypatch.setattr(os, "copy_file_range", refuse, raising=False)
    sections: list[dict[str, object]] = [{f"k{i:04d}": i for i in range(2000)}, {"c": 1}]
    layout = _whole(tmp_path / "old.json", sections)
    changes: list[dict[str, bytes | None]] = [{"k0500": None, "k1000x": _member("k1000x", 7)},
                                              {}]
    del sections[0]["k0500"]
    sections[0]["k1000x"] = 7
    segments, _, size = plan(layout, PIECES, changes)
    fd = os.open(tmp_path / "old.json", os.O_RDONLY)
    try:
        with (tmp_path / "new.json").open("wb") as f:
            write_planned(f, None, fd, segments, size, level=1)
    finally:
        os.close(fd)
    _whole(tmp_path / "whole.json", sections)
    assert (tmp_path / "new.json").read_bytes() == (tmp_path / "whole.json").read_bytes()

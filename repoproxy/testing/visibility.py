"""What a client sees of a subdir: the files named by repodata.json, by repodata.json.zst and
by the shard index (through its shards). Shared by the consistency test and bench/ingest.py.

``fetch(name)`` returns the bytes of a file of the subdir (``repodata.json``, ``shards/<h>...``)
or None when it is absent; it may read over HTTP or from the disk.

Reading order matters: the indexer writes the shards, then the shard index, then
repodata.json.zst, then repodata.json, and files only ever join during an upload burst. So a
reader that reads repodata.json first, the .zst next and the shard index last sees
``json <= zst <= shards`` in every poll; anything else is a view that went back in time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import msgpack
import zstandard

Fetch = Callable[[str], bytes | None]


def _unzst(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def shard_digests(index: bytes) -> dict[str, str]:
    """A shard index's (``repodata_shards.msgpack.zst``) package names and their shards'
    sha256 in hex, as the shard URLs spell them."""
    return {name: bytes(digest).hex()
            for name, digest in msgpack.unpackb(_unzst(index))["shards"].items()}


def repodata_files(data: bytes | None) -> set[str]:
    if data is None:
        return set()
    doc = json.loads(data)
    return set(doc.get("packages", {})) | set(doc.get("packages.conda", {}))


@dataclass
class View:
    """One poll: the file names each index names."""

    json: set[str]
    zst: set[str]
    shards: set[str]

    def agree(self) -> bool:
        return self.json == self.zst == self.shards

    def ordered(self) -> bool:
        return self.json <= self.zst <= self.shards


@dataclass
class Reader:
    fetch: Fetch
    #: shards are content-addressed and immutable: each is fetched once
    _shards: dict[bytes, set[str]] = field(default_factory=dict)

    def shard_files(self) -> set[str]:
        raw = self.fetch("repodata_shards.msgpack.zst")
        if raw is None:
            return set()
        index = msgpack.unpackb(_unzst(raw))
        out: set[str] = set()
        for digest in index["shards"].values():
            if digest not in self._shards:
                data = self.fetch(f"shards/{digest.hex()}.msgpack.zst")
                if data is None:  # an index naming a missing shard: reported as a file
                    return out | {f"<missing shard {digest.hex()}>"}
                shard = msgpack.unpackb(_unzst(data))
                self._shards[digest] = set(shard["packages"]) | set(shard["packages.conda"])
            out |= self._shards[digest]
        return out

    def name_files(self, name: str) -> set[str]:
        """The files the shard index names for one package name (through that name's shard
        only: what a client resolving ``name`` reads)."""
        raw = self.fetch("repodata_shards.msgpack.zst")
        if raw is None:
            return set()
        digest = msgpack.unpackb(_unzst(raw))["shards"].get(name)
        if digest is None:
            return set()
        if digest not in self._shards:
            data = self.fetch(f"shards/{digest.hex()}.msgpack.zst")
            if data is None:
                return {f"<missing shard {digest.hex()}>"}
            shard = msgpack.unpackb(_unzst(data))
            self._shards[digest] = set(shard["packages"]) | set(shard["packages.conda"])
        return self._shards[digest]

    def view(self) -> View:
        plain = repodata_files(self.fetch("repodata.json"))
        zst = self.fetch("repodata.json.zst")
        return View(plain, repodata_files(_unzst(zst) if zst else None), self.shard_files())

"""Property-based fuzzing of ``read_metadata`` and ``prepare_file``/``check_metadata``: random
bytes, truncated and mutated real packages, random index.json values and hostile member names
either pass every consistency check or are refused with a RepoproxyError; never another
exception, never a hang (hypothesis's deadline), never a leftover temporary file.

A bounded, seeded number of cases here; ``python bench/fuzz.py --cases N`` runs longer.
The fuzzers live in :mod:`repoproxy.testing.fuzz`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from repoproxy.testing.fuzz import FUZZERS, Fuzzer, ingest, real_packages, run

CASES = 200


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", sorted(FUZZERS))
def test_fuzz_reader_and_ingest_accept_or_refuse_cleanly(name: str, tmp_path: Path) -> None:
    outcomes = run(FUZZERS[name], tmp_path / "work", CASES)
    # hypothesis ran cases (it may stop early once the space is exhausted) and only the two
    # allowed endings were seen
    assert sum(outcomes.values()) >= 20, outcomes
    assert set(outcomes) <= {"accepted", "refused"}, outcomes
    if name in ("random_bytes", "truncated"):
        assert outcomes["accepted"] == 0, outcomes
    if name in ("index_json", "hostile_members"):
        # the generators reach both sides: valid inputs pass, broken ones are refused
        assert outcomes["accepted"] > 0, outcomes
        assert outcomes["refused"] > 0, outcomes


def test_the_untouched_real_packages_are_accepted(tmp_path: Path) -> None:
    """The baseline the mutations start from: every real package passes, whole."""
    for filename, data in real_packages():
        work = tmp_path / filename
        (work / "tmp").mkdir(parents=True)
        outcome, prepared = ingest(data, filename, work)
        assert outcome == "accepted", prepared


def test_the_checks_catch_a_reader_that_lets_an_exception_through(tmp_path: Path) -> None:
    """The fuzz harness can fail: an exception other than RepoproxyError gets out."""

    def broken(case: Any, work: Path) -> str:
        raise ValueError("not a RepoproxyError")

    with pytest.raises(ValueError, match="not a RepoproxyError"):
        run(Fuzzer(FUZZERS["truncated"].strategy, broken), tmp_path / "work", 5)


def test_a_conda_whose_info_member_fails_its_crc_is_refused_cleanly(tmp_path: Path) -> None:
    """Found by the ``mutated`` fuzzer: zipfile raised inside libarchive's read callback,
    where ctypes swallowed the exception and returned garbage: the process crashed."""
    import io
    import zipfile

    from repoproxy.errors import InvalidPackage
    from repoproxy.pipeline.archive import read_metadata

    filename, data = next(p for p in real_packages() if p[0].endswith(".conda"))
    info = next(i for i in zipfile.ZipFile(io.BytesIO(data)).infolist()
                if i.filename.startswith("info-"))
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    broken = bytearray(data)
    broken[start + info.compress_size - 1] ^= 0xFF  # the member's last byte: CRC now wrong
    path = tmp_path / filename
    path.write_bytes(bytes(broken))
    with pytest.raises(InvalidPackage, match=r"corrupt \.conda archive: Bad CRC-32"):
        read_metadata(path, filename)


def _patch_central_entry(data: bytes, name: str, offset: int, value: bytes) -> bytes:
    """Overwrite bytes of the central directory header of zip entry ``name``."""
    out = bytearray(data)
    at = data.find(b"PK\x01\x02")
    while at != -1:
        length = int.from_bytes(data[at + 28:at + 30], "little")
        if data[at + 46:at + 46 + length] == name.encode():
            out[at + offset:at + offset + len(value)] = value
            return bytes(out)
        at = data.find(b"PK\x01\x02", at + 1)
    raise AssertionError(f"no central directory entry {name!r}")


@pytest.mark.parametrize("damage", ["version-6.4", "encrypted", "bad-utf8-name"])
def test_zip_damage_that_zipfile_reports_oddly_is_refused(damage: str, tmp_path: Path) -> None:
    """Found by the ``mutated`` fuzzer: zipfile raises NotImplementedError, RuntimeError or
    UnicodeDecodeError, not only BadZipFile; each was a 500 on upload."""
    from repoproxy.errors import InvalidPackage
    from repoproxy.pipeline.archive import read_metadata

    filename, data = next(p for p in real_packages() if p[0].endswith(".conda"))
    info_name = "info-" + filename.removesuffix(".conda") + ".tar.zst"
    if damage == "version-6.4":  # "version needed to extract": 64 = 6.4
        data = _patch_central_entry(data, info_name, 6, (64).to_bytes(2, "little"))
    elif damage == "encrypted":  # general purpose flag bit 0
        data = _patch_central_entry(data, info_name, 8, (1).to_bytes(2, "little"))
    else:  # names flagged UTF-8 (bit 11) with a byte that is not
        data = _patch_central_entry(data, "metadata.json", 8, (0x800).to_bytes(2, "little"))
        data = _patch_central_entry(data, "metadata.json", 46, b"\xff")
    path = tmp_path / filename
    path.write_bytes(data)
    with pytest.raises(InvalidPackage, match=r"\.conda archive"):
        read_metadata(path, filename)


@pytest.mark.parametrize("ext", [".conda", ".tar.bz2"])
def test_a_hard_link_out_of_the_archive_is_refused(ext: str, tmp_path: Path) -> None:
    """Found by the ``hostile_members`` fuzzer: a hard link's target was read relative to the
    link's folder (as a symlink's is), so 'info/a' -> 'info/../../evil' passed."""
    from repoproxy.errors import InvalidPackage
    from repoproxy.pipeline.archive import read_metadata
    from repoproxy.testing.fuzz import Member, archive_bytes
    from repoproxy.testing.packages import PackageSpec

    index = json.dumps(PackageSpec("fuzz", "1.0", "0").index()).encode()
    items = [Member("info/index.json", data=index),
             Member("info/a", "hardlink", target="info/../../evil")]
    path = tmp_path / ("fuzz-1.0-0" + ext)
    path.write_bytes(archive_bytes(items, ext, []))
    with pytest.raises(InvalidPackage, match="links outside the archive"):
        read_metadata(path, path.name)
    # the same link inside the archive is fine
    items[1] = Member("info/a", "hardlink", target="info/index.json")
    path.write_bytes(archive_bytes(items, ext, []))
    assert read_metadata(path, path.name).index["name"] == "fuzz"

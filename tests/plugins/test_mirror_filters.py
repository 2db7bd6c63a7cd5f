"""The include/exclude/only truth table of docs/mirrors.md, cell by cell, read from the docs
(so the documented table and the code cannot drift), then the same cells through real
MatchSpecs and records, and the seed's example."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest
from repoproxy_mirror.filters import MirrorFilter, decide
from repoproxy_mirror.model import Mirror

DOC = Path(__file__).resolve().parents[2] / "docs" / "mirrors.md"
WORD = {"—": None, "yes": True, "no": False}


def _table() -> list[tuple[bool | None, bool | None, bool | None, bool]]:
    text = DOC.read_text()
    block = re.search(r"<!-- truth-table.*?-->(.*?)<!-- /truth-table -->", text, re.S)
    assert block is not None
    rows = []
    for line in block.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] in WORD:
            only, exclude, include, kept = (WORD[c] for c in cells)
            rows.append((only, exclude, include, bool(kept)))
    return rows


TABLE = _table()


def test_the_table_has_every_cell_once() -> None:
    cells = [(o, e, i) for o, e, i, _ in TABLE]
    assert sorted(cells, key=repr) == sorted(itertools.product(*[[None, True, False]] * 3),
                                             key=repr)


@pytest.mark.parametrize(("only", "exclude", "include", "kept"), TABLE)
def test_decide_follows_the_documented_table(only: bool | None, exclude: bool | None,
                                             include: bool | None, kept: bool) -> None:
    assert decide(only, exclude, include) is kept


# a spec that matches the record, one that does not, per list
MATCH, MISS = "lua >=5.4", "lua <5"
RECORD = {"name": "lua", "version": "5.4.6", "build": "h0_1", "build_number": 1,
          "timestamp": 1_685_577_600_000, "license": "MIT", "license_family": "MIT"}


def _mirror(**kw: Any) -> Mirror:
    return Mirror(id="x", name="m", channel="c", mode="active", source="http://u/c", **kw)


@pytest.mark.parametrize(("only", "exclude", "include", "kept"), TABLE)
def test_real_matchspecs_follow_the_table(only: bool | None, exclude: bool | None,
                                          include: bool | None, kept: bool) -> None:
    def specs(hit: bool | None) -> list[str]:
        return [] if hit is None else [MATCH if hit else MISS]

    filt = MirrorFilter(_mirror(only_specs=specs(only), exclude_specs=specs(exclude),
                                include_specs=specs(include)))
    assert filt.keep(RECORD, "osx-64") is kept


def test_the_seeds_example() -> None:
    # --subdirs "noarch, osx-64, osx-arm64" --only_spec lua --only_spec ncurses
    # --only_spec readline
    filt = MirrorFilter(_mirror(subdirs=["noarch", "osx-64", "osx-arm64"],
                                only_specs=["lua", "ncurses", "readline"]))
    assert filt.wants_subdir("osx-arm64")
    assert not filt.wants_subdir("linux-64")
    repodata = {"packages": {"lua-5.4.6-h0_1.tar.bz2": RECORD},
                "packages.conda": {
                    "ncurses-6.4-h0_0.conda": {"name": "ncurses", "version": "6.4",
                                               "build": "h0_0"},
                    "python-3.12.0-h0_0.conda": {"name": "python", "version": "3.12.0",
                                                 "build": "h0_0"}}}
    assert sorted(filt.select(repodata, "osx-64")) == ["lua-5.4.6-h0_1.tar.bz2",
                                                      "ncurses-6.4-h0_0.conda"]


@pytest.mark.parametrize(("licenses", "kept"), [
    (["mit"], True), (["-mit"], False), (["apache"], False), (["-gpl3", "mit"], True),
    (["-gpl3"], True),
])
def test_licenses(licenses: list[str], kept: bool) -> None:
    assert MirrorFilter(_mirror(licenses=licenses)).keep(RECORD, "noarch") is kept


@pytest.mark.parametrize(("date_from", "date_to", "kept"), [
    ("2023-06-01", "2023-06-30", True), ("2023-06-02", None, False),
    (None, "2023-05-31", False), ("2023-01-01", "2023-06-01", True),
])
def test_dates(date_from: str | None, date_to: str | None, kept: bool) -> None:
    filt = MirrorFilter(_mirror(date_from=date_from, date_to=date_to))
    assert filt.keep(RECORD, "noarch") is kept
    assert filt.keep({k: v for k, v in RECORD.items() if k != "timestamp"}, "noarch") is False

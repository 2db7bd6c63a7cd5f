"""Parity: our repodata.json records equal py-rattler's indexer's, field by field.

Documented differences, and nothing else:

- ``indexed_timestamp``: both set it when indexing, so the values differ.
- ``arch`` and ``platform``: rattler keeps them from index.json; we drop them, with the other
  legacy keys, as conda-index does (conda-protocol.md section 3). Clients derive both from
  ``subdir``.
- ``run_exports``: rattler copies info/run_exports.json into each record; we serve run exports
  in ``run_exports.json`` (CEP-12), as conda-index does.
- top level: rattler writes ``"v3": {}`` and no ``"removed"``; we write ``"removed": []``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from repoproxy.pipeline.bulk import find_packages, import_packages
from repoproxy.testing.packages import PackageSpec, build_package

SPECS = [
    PackageSpec("alpha", "1.0"),
    PackageSpec("alpha", "1.1", build="py_1", build_number=1, depends=["python >=3.8"],
                constrains=["beta <2"], license="BSD-3-Clause", license_family="BSD"),
    PackageSpec("beta", "2.0.0rc1", subdir="linux-64", depends=["libc >=2.17", "alpha"],
                run_exports={"weak": ["beta >=2.0,<3"]}, purls=["pkg:pypi/beta@2.0.0rc1"]),
    PackageSpec("gamma-tools", "0.1.post3", subdir="linux-64", license=None,
                extra_index={"track_features": "gammafeat", "features": ""}),
    PackageSpec("delta_x", "10!1.2.3", subdir="osx-arm64", timestamp=1_600_000_000_000),
]

#: keys rattler's records may carry that ours leave out on purpose (see the module docstring)
DOCUMENTED = frozenset({"arch", "platform", "run_exports"})

RATTLER_INDEX = """
import asyncio, os, sys
import rattler.index
asyncio.run(rattler.index.index_fs(sys.argv[1], write_shards=False))
sys.stdout.flush()
os._exit(0)
"""


def _rattler_index(directory: Path) -> None:
    # py-rattler 0.28 may crash at interpreter exit after its work: run it in a subprocess
    subprocess.run([sys.executable, "-c", RATTLER_INDEX, str(directory)], check=True,
                   timeout=300)


@pytest.mark.parametrize("fmt", ["conda", "tar.bz2"])
def test_records_equal_rattler_index(services: Any, tmp_path: Path, fmt: str) -> None:
    from repoproxy.domain.channels import create_channel

    reference = tmp_path / "reference"
    for spec in SPECS:
        (reference / spec.subdir).mkdir(parents=True, exist_ok=True)
        build_package(spec, reference / spec.subdir, fmt)
    (reference / "noarch").mkdir(exist_ok=True)
    ours_src = tmp_path / "ours"
    shutil.copytree(reference, ours_src)
    _rattler_index(reference)

    create_channel(services, "parity")
    result = import_packages(services.ingestor, "parity", find_packages(ours_src), workers=1)
    assert not result.failed, result.failed
    assert len(result.added) == len(SPECS)

    compared = 0
    for subdir in sorted({s.subdir for s in SPECS} | {"noarch"}):
        theirs = json.loads((reference / subdir / "repodata.json").read_text())
        ours_path = services.store.subdir_dir("parity", subdir) / "repodata.json"
        ours = json.loads(ours_path.read_text())
        assert ours["info"] == theirs["info"]
        for key in ("packages", "packages.conda"):
            assert set(ours[key]) == set(theirs[key])
            for fn, rec in theirs[key].items():
                mine = dict(ours[key][fn])
                assert isinstance(mine.pop("indexed_timestamp"), int)
                extra = set(rec) - set(mine) - {"indexed_timestamp"}
                assert extra <= DOCUMENTED, (fn, extra)
                rec = {k: v for k, v in rec.items() if k not in DOCUMENTED | {"indexed_timestamp"}}
                assert mine == rec, fn
                compared += 1
    assert compared == len(SPECS)

"""SBOM licenses are valid SPDX: ids spelled as SPDX spells them, expressions kept, free text
as a named license (cyclonedx-python-lib's license factory decides, not a hand-written rule).

A conda ``license`` of ``mit`` used to become the SPDX expression ``mit``, which no SPDX
tool accepts; it is the id ``MIT``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from repoproxy_sbom.build import validate

from repoproxy.testing.fixtures import upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

#: conda license text -> what the SBOM carries
LICENSES = {
    "MIT": {"license": {"id": "MIT"}},
    "mit": {"license": {"id": "MIT"}},
    "apache-2.0": {"license": {"id": "Apache-2.0"}},
    "Apache-2.0": {"license": {"id": "Apache-2.0"}},
    "bsd-3-clause": {"license": {"id": "BSD-3-Clause"}},
    "MIT OR Apache-2.0": {"expression": "MIT OR Apache-2.0"},
    "GPL-3.0-only WITH GCC-exception-3.1": {"expression": "GPL-3.0-only WITH GCC-exception-3.1"},
    "BSD 3-Clause": {"license": {"name": "BSD 3-Clause"}},
    "Public Domain": {"license": {"name": "Public Domain"}},
    "Proprietary, see LICENSE.txt": {"license": {"name": "Proprietary, see LICENSE.txt"}},
}


@pytest.fixture
def lic(testapp: Any, make_channel: Any, admin_headers: dict[str, str],
        pkgdir: Path) -> dict[str, Path]:
    make_channel("lic")
    out = {}
    for i, text in enumerate(LICENSES):
        path = build_package(PackageSpec(f"lic{i}", "1.0", license=text), pkgdir)
        upload_raw(testapp, "lic", path, admin_headers)
        out[text] = path
    return out


@pytest.mark.parametrize("text", list(LICENSES))
def test_file_sbom_license_is_valid_spdx(testapp: Any, lic: dict[str, Path], text: str) -> None:
    r = testapp.get(f"/api/channels/lic/sbom/noarch/{lic[text].name}")
    validate(r.text)
    licenses = r.json["metadata"]["component"]["licenses"]
    assert [{k: v for k, v in entry.items() if k != "acknowledgement"}
            for entry in licenses] == [LICENSES[text]]


def test_subdir_sbom_licenses_are_valid_spdx(testapp: Any, lic: dict[str, Path]) -> None:
    r = testapp.get("/api/channels/lic/sbom/noarch")
    validate(r.text)
    by_name = {c["name"]: c["licenses"] for c in r.json["components"]}
    for i, text in enumerate(LICENSES):
        assert by_name[f"lic{i}"] == [LICENSES[text]], text

"""License families of seed 002 and the table that maps a package's license to one.

The table is documented in docs/policies.md; keep both in step. A package's license is its
``license`` field (SPDX expression or free text) or, when that is missing, its
``license_family``. Matching is case-insensitive; the first row whose pattern matches wins, so
the more specific families (AGPL, LGPL, GPL2, GPL3) come before GPL.
"""

from __future__ import annotations

import re

FAMILIES: tuple[str, ...] = (
    "AGPL", "GPL", "GPL2", "GPL3", "LGPL", "BSD", "MIT", "APACHE", "PSF", "Public-Domain",
    "Proprietary", "MOZILLA", "OTHER", "None", "CC",
)

#: (family, regular expression searched in the lower-cased license text), first match wins
TABLE: tuple[tuple[str, str], ...] = (
    ("AGPL", r"\bagpl|affero"),
    ("LGPL", r"\blgpl|lesser general public|library general public"),
    ("GPL3", r"\bgpl[- ]?v?3|gnu general public license v?3|general public license,? version 3"),
    ("GPL2", r"\bgpl[- ]?v?2|gnu general public license v?2|general public license,? version 2"),
    ("GPL", r"\bgpl\b|gnu general public license"),
    ("BSD", r"\bbsd\b|bsd-\d|0bsd"),
    ("MIT", r"\bmit\b|\bexpat\b"),
    ("APACHE", r"\bapache"),
    ("PSF", r"\bpsf\b|python software foundation|python-2\.0"),
    ("Public-Domain", r"public[- _]?domain|\bunlicense\b|\bcc0\b"),
    ("MOZILLA", r"\bmpl\b|mpl-\d|mozilla"),
    ("CC", r"\bcc-by|creative commons|\bcc-"),
    ("Proprietary", r"proprietary|commercial|licenseref-proprietary|all rights reserved"),
)
_COMPILED = tuple((family, re.compile(pattern)) for family, pattern in TABLE)
_CANONICAL = {f.lower(): f for f in FAMILIES}
_CANONICAL["public_domain"] = "Public-Domain"  # the mirror filters' spelling


def canonical_family(value: str) -> str:
    """A family name as the user typed it -> its canonical spelling; ValueError if unknown."""
    key = value.strip().lower()
    if key not in _CANONICAL:
        raise ValueError(f"unknown license family {value!r}; use one of {', '.join(FAMILIES)}")
    return _CANONICAL[key]


def license_family(license: str | None, license_family: str | None = None) -> str:
    """The family of a package: ``None`` when it declares no license, ``OTHER`` when the text
    matches no row of :data:`TABLE`."""
    for text in (license, license_family):
        if not text or not str(text).strip():
            continue
        lowered = str(text).lower()
        if lowered.strip() in ("none", "unknown", "noassertion"):
            return "None"
        for family, pattern in _COMPILED:
            if pattern.search(lowered):
                return family
        return "OTHER"
    return "None"

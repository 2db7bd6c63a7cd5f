"""repoproxy_cve: CVE data from files (OSV records, curated lists), matched to package files.

The hook implementations live in :mod:`repoproxy_cve.plugin`; they are re-exported here because
the entry point names this package.
"""

from .plugin import (
    repoproxy_configure,
    repoproxy_cve_facts,
    repoproxy_migrations,
    repoproxy_package_extra,
    repoproxy_register_commands,
)

__version__ = "0.1.0"
__all__ = [
    "repoproxy_configure",
    "repoproxy_cve_facts",
    "repoproxy_migrations",
    "repoproxy_package_extra",
    "repoproxy_register_commands",
]

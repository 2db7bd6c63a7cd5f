"""repoproxy_policy: channel policies (seed 002's filters) that hide packages at serve time.

The hook implementations live in :mod:`repoproxy_policy.plugin`; they are re-exported here
because the entry point names this package.
"""

from .plugin import (
    repoproxy_addhooks,
    repoproxy_channel_removed,
    repoproxy_configure,
    repoproxy_cve_data_changed,
    repoproxy_excluded_files,
    repoproxy_migrations,
    repoproxy_policy_judge,
    repoproxy_register_commands,
    repoproxy_validate_package,
)

__version__ = "0.1.0"
__all__ = [
    "repoproxy_addhooks",
    "repoproxy_channel_removed",
    "repoproxy_configure",
    "repoproxy_cve_data_changed",
    "repoproxy_excluded_files",
    "repoproxy_migrations",
    "repoproxy_policy_judge",
    "repoproxy_register_commands",
    "repoproxy_validate_package",
]

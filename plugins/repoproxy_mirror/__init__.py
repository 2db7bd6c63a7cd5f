"""repoproxy_mirror: active copies and pull-through proxies of upstream conda channels.

The hook implementations live in :mod:`repoproxy_mirror.plugin`; they are re-exported here
because the entry point names this package. See docs/mirrors.md.
"""

from .plugin import (
    repoproxy_addhooks,
    repoproxy_background_workers,
    repoproxy_channel_extra,
    repoproxy_channel_file,
    repoproxy_channel_file_claims,
    repoproxy_channel_file_lean,
    repoproxy_channel_page_sections,
    repoproxy_channel_removed,
    repoproxy_configure,
    repoproxy_migrations,
    repoproxy_register_commands,
    repoproxy_removed_files,
    repoproxy_settings_defaults,
)

__version__ = "0.1.0"
__all__ = [
    "repoproxy_addhooks",
    "repoproxy_background_workers",
    "repoproxy_channel_extra",
    "repoproxy_channel_file",
    "repoproxy_channel_file_claims",
    "repoproxy_channel_file_lean",
    "repoproxy_channel_page_sections",
    "repoproxy_channel_removed",
    "repoproxy_configure",
    "repoproxy_migrations",
    "repoproxy_register_commands",
    "repoproxy_removed_files",
    "repoproxy_settings_defaults",
]

"""repoproxy_watch: drop packages into a watched folder and they appear in the channel.

The package is the plugin: the hook implementations live in :mod:`repoproxy_watch.plugin`
and are re-exported here, where the ``repoproxy`` entry point names the plugin.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .plugin import (  # after __version__: importing the hooks needs nothing from it
    repoproxy_background_workers,
    repoproxy_channel_removed,
    repoproxy_configure,
    repoproxy_migrations,
    repoproxy_register_commands,
    repoproxy_settings_defaults,
)

__all__ = [
    "__version__",
    "repoproxy_background_workers",
    "repoproxy_channel_removed",
    "repoproxy_configure",
    "repoproxy_migrations",
    "repoproxy_register_commands",
    "repoproxy_settings_defaults",
]

"""repoproxy: a self-hosted conda package server.

This module is the plugin API: plugins decorate their hook implementations with
:data:`hookimpl`.
"""

from __future__ import annotations

import pluggy

__version__ = "0.1.0"

#: Marker for hook implementations: ``@hookimpl def repoproxy_configure(config): ...``
hookimpl = pluggy.HookimplMarker("repoproxy")

__all__ = ["__version__", "hookimpl"]

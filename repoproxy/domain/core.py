"""The core of one server root: the runtime plus the pipeline, shared by the web app, the CLI,
background workers and plugins.

``Core`` is what hooks receive as ``services`` (the argument keeps that name for plugins written
against earlier releases; ``Services`` is an alias of ``Core`` for one release).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from repoproxy.pipeline.ingest import Ingestor
from repoproxy.pipeline.repodata import Indexer
from repoproxy.plugins import PluginManager, collect, get_plugin_manager
from repoproxy.settings import Settings, build_settings, raw_settings
from repoproxy.storage.migrations import apply_all
from repoproxy.storage.runtime import Runtime

log = logging.getLogger(__name__)


class Core(Runtime):
    def __init__(self, settings: Settings, pm: PluginManager) -> None:
        super().__init__(settings, pm)

    @cached_property
    def indexer(self) -> Indexer:
        return Indexer(self)

    @cached_property
    def ingestor(self) -> Ingestor:
        return Ingestor(self, self.indexer)

    def init(self) -> Core:
        """Create the root, the catalog (migrations) and the secret if they are missing."""
        self.store.init()
        apply_all(self.db(), collect(self.pm.hook.repoproxy_migrations()))
        self.store.secret()
        return self


#: the name hooks and plugins of earlier releases use; kept for one release
Services = Core


def load_core(
    given: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Core:
    """Settings (embedded defaults <- given <- environment), plugins, then the core."""
    raw = raw_settings(given, environ)
    pm = get_plugin_manager(raw)
    settings = build_settings(raw, collect(pm.hook.repoproxy_settings_defaults()))
    return Core(settings, pm).init()



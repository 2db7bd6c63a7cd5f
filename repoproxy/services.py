"""The services of one server root, shared by the web app, the CLI and background workers."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import cached_property
from typing import Any

import pluggy
from sqlite_utils import Database

from .catalog import Catalog
from .db import ConnectionPool
from .migrations import apply_all
from .plugins import collect, get_plugin_manager
from .settings import Settings, build_settings, raw_settings
from .store import Store

log = logging.getLogger(__name__)


class Services:
    def __init__(self, settings: Settings, pm: pluggy.PluginManager) -> None:
        self.settings = settings
        self.pm = pm
        self.store = Store(settings.root)
        self.pool = ConnectionPool(self.store.catalog_path)

    def db(self) -> Database:
        return self.pool.get()

    def catalog(self) -> Catalog:
        return Catalog(self.pool.get())

    @cached_property
    def ingestor(self) -> Any:
        from .ingest import Ingestor

        return Ingestor(self)

    @cached_property
    def indexer(self) -> Any:
        from .repodata import Indexer

        return Indexer(self)

    def init(self) -> Services:
        """Create the root, the catalog (migrations) and the secret if they are missing."""
        self.store.init()
        apply_all(self.db(), collect(self.pm.hook.repoproxy_migrations()))
        self.store.secret()
        return self

    def close(self) -> None:
        self.pool.close()


def load_services(
    given: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Services:
    """Settings (embedded defaults <- given <- environment), plugins, then services."""
    raw = raw_settings(given, environ)
    pm = get_plugin_manager(raw)
    settings = build_settings(raw, collect(pm.hook.repoproxy_settings_defaults()))
    return Services(settings, pm).init()

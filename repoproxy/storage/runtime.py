"""The runtime of one server root: settings, plugin manager, file tree and catalog connections.

The pipeline (ingest, index writers) works on this; the application layer's
:class:`repoproxy.domain.core.Core` extends it with the operations. Plugins that need state of
their own for one root keep it through :meth:`Runtime.plugin_state`, never as attributes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlite_utils import Database

from repoproxy.models import Channel
from repoproxy.plugins import PluginManager
from repoproxy.settings import Settings
from repoproxy.storage.catalog import Catalog
from repoproxy.storage.db import ConnectionPool
from repoproxy.storage.generation import StampReader, bump, stamp_path
from repoproxy.storage.store import Store

T = TypeVar("T")


class Runtime:
    def __init__(self, settings: Settings, pm: PluginManager) -> None:
        self.settings = settings
        self.pm = pm
        self.store = Store(settings.root)
        self.pool = ConnectionPool(self.store.catalog_path)
        self._plugin_state: dict[str, Any] = {}
        self._state_lock = threading.Lock()
        self.generation_path = stamp_path(self.store.catalog_path)
        self._stamp = StampReader(self.generation_path)  # read on every request
        self._channels: tuple[int, Mapping[str, Channel]] | None = None
        self._channels_lock = threading.Lock()

    def generation(self) -> int:
        """The access generation (``storage/generation.py``): read from memory shared with
        the stamp file, no system call, no query."""
        return self._stamp.read()

    def access_changed(self) -> None:
        """Move the access generation on: every process drops what it decided from the old
        one (channel and token snapshots, the lean path's plans) on its next request. The
        catalog's writes of channels, members, users and tokens do it after commit; a plugin
        does it when something it answers per channel changed (``repoproxy_mirror``'s passive
        channels, see the ``repoproxy_channel_file_claims`` hook)."""
        bump(self.generation_path)

    def channel_map(self) -> Mapping[str, Channel]:
        """Every channel by name, from an in-memory snapshot reloaded when the generation moved
        (a change by any process is seen on the next call). The hot path's channel lookup."""
        return self.channel_snapshot()[1]

    def channel_snapshot(self) -> tuple[int, Mapping[str, Channel]]:
        """(the generation it was loaded under, :meth:`channel_map`)."""
        snapshot = self._channels
        if snapshot is not None and snapshot[0] == self.generation():
            return snapshot
        with self._channels_lock:
            # the stamp is read before the query: a change committed meanwhile leaves the
            # snapshot older-stamped than the file, so the next call reloads again
            stamp = self.generation()
            if self._channels is None or self._channels[0] != stamp:
                channels = {c.name: c for c in self.catalog().list_channels()}
                self._channels = (stamp, channels)
            return self._channels

    def db(self) -> Database:
        """This thread's connection to the catalog."""
        return self.pool.get()

    def catalog(self) -> Catalog:
        return Catalog(self.pool.get())

    def plugin_state(self, key: str, factory: Callable[[], T]) -> T:
        """The object a plugin keeps for this root under ``key``, made once by ``factory``."""
        with self._state_lock:
            if key not in self._plugin_state:
                self._plugin_state[key] = factory()
            value: T = self._plugin_state[key]
            return value

    def close(self) -> None:
        self.pool.close()

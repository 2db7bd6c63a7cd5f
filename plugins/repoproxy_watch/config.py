"""The watch folder's settings (``repoproxy_watch.*``), parsed once into a frozen value."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repoproxy.errors import ConfigError

PREFIX = "repoproxy_watch."

#: Every key with its default; the default's type says how ini/env strings are parsed.
DEFAULTS: dict[str, Any] = {
    PREFIX + "enabled": True,  # run the worker inside `repoproxy serve`
    PREFIX + "root": "",  # empty: <repoproxy.root>/watch
    PREFIX + "quiet_seconds": 2.0,
    PREFIX + "poll_interval": 1.0,
    PREFIX + "processed_dir": "",  # empty: delete files once they are in the channel
    PREFIX + "duplicates": "reject",
    PREFIX + "create_channels": False,
    PREFIX + "create_privacy": "private",
    PREFIX + "workers": 0,  # 0: one process per core
    PREFIX + "batch_size": 200,
    PREFIX + "batch_wait": 5.0,
    PREFIX + "max_attempts": 3,
}

DUPLICATES = ("reject", "replace")
PRIVACIES = ("public", "authenticated", "private")


@dataclass(frozen=True)
class WatchConfig:
    root: Path
    quiet_seconds: float
    poll_interval: float
    processed_dir: Path | None
    duplicates: str
    create_channels: bool
    create_privacy: str
    workers: int
    batch_size: int
    batch_wait: float
    max_attempts: int
    enabled: bool = True

    @property
    def rejected_dir(self) -> Path:
        return self.root / ".rejected"

    @property
    def lock_path(self) -> Path:
        return self.root / ".lock"

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> WatchConfig:
        """Parse and check the settings; a bad value raises :class:`ConfigError` naming it."""
        values = {k: settings.get(k, v) for k, v in DEFAULTS.items()}
        server_root = Path(settings["repoproxy.root"]).expanduser().resolve()
        raw_root = str(values[PREFIX + "root"] or "").strip()
        root = Path(raw_root).expanduser().resolve() if raw_root else server_root / "watch"
        raw_processed = str(values[PREFIX + "processed_dir"] or "").strip()
        processed = None
        if raw_processed:
            processed = Path(raw_processed).expanduser()
            processed = (processed if processed.is_absolute() else root / processed).resolve()
            if processed == root:
                raise ConfigError(f"{PREFIX}processed_dir: must not be the watch root itself")
        duplicates = str(values[PREFIX + "duplicates"]).strip().lower()
        if duplicates not in DUPLICATES:
            raise ConfigError(f"{PREFIX}duplicates: {duplicates!r} is not one of "
                              f"{', '.join(DUPLICATES)}")
        privacy = str(values[PREFIX + "create_privacy"]).strip().lower()
        if privacy not in PRIVACIES:
            raise ConfigError(f"{PREFIX}create_privacy: {privacy!r} is not one of "
                              f"{', '.join(PRIVACIES)}")
        for key in ("quiet_seconds", "poll_interval", "batch_wait"):
            if float(values[PREFIX + key]) < 0:
                raise ConfigError(f"{PREFIX}{key}: must not be negative")
        if int(values[PREFIX + "batch_size"]) < 1:
            raise ConfigError(f"{PREFIX}batch_size: must be at least 1")
        workers = int(values[PREFIX + "workers"]) or int(settings.get("repoproxy.workers") or 0)
        return cls(
            root=root,
            quiet_seconds=float(values[PREFIX + "quiet_seconds"]),
            poll_interval=max(0.05, float(values[PREFIX + "poll_interval"])),
            processed_dir=processed,
            duplicates=duplicates,
            create_channels=bool(values[PREFIX + "create_channels"]),
            create_privacy=privacy,
            workers=workers or os.cpu_count() or 1,
            batch_size=int(values[PREFIX + "batch_size"]),
            batch_wait=float(values[PREFIX + "batch_wait"]),
            max_attempts=max(1, int(values[PREFIX + "max_attempts"])),
            enabled=bool(values[PREFIX + "enabled"]),
        )

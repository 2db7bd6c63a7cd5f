"""The upstream ``removed`` lists an active mirror carries into its channel's repodata.json.

Apart from :mod:`repoproxy_mirror.active`: every index build of every channel asks for them
(``repoproxy_removed_files``), and the run's module imports the upstream client, asyncio and
rattler's gateway, which a bulk import or a server's start would otherwise pay for.
"""

from __future__ import annotations

import json
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from .service import mirror_dir

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

    from .model import Mirror


def removed_path(core: Core, mirror: Mirror, subdir: str) -> Path:
    return mirror_dir(core) / "removed" / mirror.channel / f"{mirror.id}.{subdir}.json"


def removed_files(core: Core, channel: str, subdir: str) -> set[str]:
    """The upstream ``removed`` lists the channel's active mirrors carry for a subdir."""
    out: set[str] = set()
    for path in (mirror_dir(core) / "removed" / channel).glob(f"*.{subdir}.json"):
        with suppress(FileNotFoundError, ValueError):
            out.update(str(fn) for fn in json.loads(path.read_bytes()))
    return out

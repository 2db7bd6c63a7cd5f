"""The mirror operations, once, for the CLI and the API: create, update, show, list, stop,
restart, delete, run now. Each writes its audit row in its own transaction.

State machine: ``created`` -> ``pending`` (a run is wanted) -> ``running`` -> ``completed`` |
``failed`` | ``stopped``; ``stop`` turns ``running`` into ``stopping`` (the run sees it between
files and ends as ``stopped``) and anything else into ``stopped``; ``restart`` makes a stopped
mirror ``pending`` again. Scheduled (cron) runs skip stopped mirrors.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from repoproxy.domain.audit import CLI, Actor, audit
from repoproxy.storage.catalog import utcnow
from repoproxy.storage.store import atomic_write

from . import own_policy
from .model import Mirror, check_closure, check_dates, check_name, parse

if TYPE_CHECKING:
    from sqlite_utils import Database

    from repoproxy.domain.core import Core

    from .store import MirrorStore

PLUGIN = "repoproxy_mirror"


def mirror_store(core: Core) -> MirrorStore:
    from .store import MirrorStore

    return MirrorStore(core.db())


def mirror_dir(core: Core) -> Any:
    return core.store.root / "mirror"


def _publish_passive(core: Core) -> None:
    """The passive mirrors by channel, in one small file the request path reads by mtime."""
    # the whole definition: the request path then needs no catalog query (no secret in it)
    data = {m.channel: m.as_json() for m in mirror_store(core).list() if m.mode == "passive"}
    atomic_write(mirror_dir(core) / "passive.json", json.dumps(data, sort_keys=True).encode())
    # which channels the proxy answers changed: the server's lean path asks its claim again
    # (repoproxy_channel_file_claims) under the new generation, in every process
    core.access_changed()


def _audit(actor: Actor, action: str, mirror: Mirror, **details: Any) -> Any:
    def write(db: Database) -> None:
        audit(db, actor, action, mirror.channel, mirror.name, **details)
    return write


def create(core: Core, name: str, channel: str, body: dict[str, Any], *, actor: Actor = CLI,
           run_now: bool = False) -> dict[str, Any]:
    check_name(name)
    ch = core.catalog().require_channel(channel)
    fields = parse(body, creating=True)
    now = utcnow()
    mirror = Mirror(id=str(uuid.uuid4()), name=name, channel=channel, created=now, updated=now,
                    **fields)
    check_dates(mirror.date_from, mirror.date_to)
    check_closure(mirror)
    own_policy.check(core, mirror, ch)
    if run_now and mirror.mode == "active":
        mirror.state = "pending"
    mirror_store(core).insert(mirror, _audit(actor, "mirror.create", mirror, mode=mirror.mode,
                                             source=mirror.source))
    _publish_passive(core)
    return mirror.as_json()


def update(core: Core, name: str, channel: str, body: dict[str, Any], *, actor: Actor = CLI,
           run_now: bool = False) -> dict[str, Any]:
    store = mirror_store(core)
    mirror = store.get(name, channel)
    fields = parse(body, creating=False)
    for key, value in fields.items():
        setattr(mirror, key, value)
    check_dates(mirror.date_from, mirror.date_to)
    check_closure(mirror)
    own_policy.check(core, mirror, core.catalog().require_channel(mirror.channel))
    mirror.updated = utcnow()
    if run_now and mirror.mode == "active" and mirror.state not in ("running", "stopping"):
        mirror.state = "pending"
    store.save(mirror, _audit(actor, "mirror.update", mirror, fields=sorted(fields)))
    _publish_passive(core)
    if mirror.mode == "passive":
        from .passive import invalidate

        invalidate(core, mirror)  # new filters apply at the next request
    return mirror.as_json()


def show(core: Core, name: str, channel: str | None = None) -> dict[str, Any]:
    return mirror_store(core).get(name, channel).as_json()


def list_mirrors(core: Core, channel: str | None = None) -> list[dict[str, Any]]:
    if channel is not None:
        core.catalog().require_channel(channel)
    return [m.as_json() for m in mirror_store(core).list(channel)]


def stop(core: Core, name: str, *, actor: Actor = CLI) -> dict[str, Any]:
    store = mirror_store(core)
    mirror = store.get(name)
    if not store.set_state_if(mirror.id, "stopping", ("running",)):
        store.set_state_if(mirror.id, "stopped", ("created", "pending", "completed", "failed",
                                                   "stopped"))
    store.set_fields(mirror.id, updated=utcnow())
    with_audit(core, actor, "mirror.stop", mirror)
    return store.get(name).as_json()


def restart(core: Core, name: str, *, actor: Actor = CLI) -> dict[str, Any]:
    store = mirror_store(core)
    mirror = store.get(name)
    if mirror.mode == "active":
        store.set_state_if(mirror.id, "pending", ("stopped", "stopping", "failed", "completed",
                                                  "created"))
    else:
        store.set_state_if(mirror.id, "created", ("stopped", "stopping", "failed"))
    store.set_fields(mirror.id, updated=utcnow())
    with_audit(core, actor, "mirror.restart", mirror)
    return store.get(name).as_json()


def run_now(core: Core, name: str, channel: str | None = None, *,
            actor: Actor = CLI) -> dict[str, Any]:
    """Ask for a run (the server's worker picks it up); passive mirrors have no runs."""
    store = mirror_store(core)
    mirror = store.get(name, channel)
    if mirror.mode == "active":
        store.set_state_if(mirror.id, "pending", ("created", "completed", "failed", "stopped"))
    return store.get(name).as_json()


def delete(core: Core, name: str, channel: str, *, actor: Actor = CLI) -> dict[str, Any]:
    """Forget a mirror. Files an active mirror put into the channel stay (they are the
    channel's now); a passive mirror's cache is removed."""
    store = mirror_store(core)
    mirror = store.get(name, channel)
    store.delete(mirror, _audit(actor, "mirror.delete", mirror))
    _publish_passive(core)
    _forget_removed(core, mirror)
    from .passive import drop_cache

    drop_cache(core, mirror)
    return {"deleted": mirror.name, "channel": mirror.channel}


def _forget_removed(core: Core, mirror: Mirror) -> None:
    """The upstream ``removed`` lists this mirror carried leave the channel's indexes."""
    from repoproxy.storage.catalog import Catalog
    from repoproxy.storage.db import write_transaction

    files = list((mirror_dir(core) / "removed" / mirror.channel).glob(f"{mirror.id}.*.json"))
    subdirs = [p.name.removeprefix(f"{mirror.id}.").removesuffix(".json") for p in files]
    for path in files:
        path.unlink(missing_ok=True)
    if subdirs and core.catalog().get_channel(mirror.channel) is not None:
        db = core.db()
        with write_transaction(db):
            for subdir in subdirs:
                Catalog(db).touch_subdir(mirror.channel, subdir)
        for subdir in subdirs:
            core.indexer.build(mirror.channel, subdir)


def with_audit(core: Core, actor: Actor, action: str, mirror: Mirror) -> None:
    from repoproxy.storage.db import write_transaction

    db = core.db()
    with write_transaction(db):
        _audit(actor, action, mirror)(db)


def channel_removed(core: Core, channel: str) -> None:
    store = mirror_store(core)
    for mirror in store.list(channel):
        store.delete(mirror, _audit(PLUGIN, "mirror.delete", mirror, reason="channel removed"))
        _forget_removed(core, mirror)
        from .passive import drop_cache

        drop_cache(core, mirror)
    _publish_passive(core)

"""Policy operations shared by the API and the CLI: change (with its audit row, in the
change's own transaction), then re-apply where it matters."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from repoproxy.domain.audit import CLI, Actor, audit
from repoproxy.errors import NotFound

from .model import FILTERS, PolicyError
from .service import decide, policy_store, reapply

if TYPE_CHECKING:
    from sqlite_utils import Database

    from repoproxy.domain.core import Core


def _split_body(body: dict[str, Any]) -> tuple[str | None, str | None, str | None,
                                                dict[str, Any]]:
    body = {k.replace("-", "_"): v for k, v in body.items()}
    name, description = body.pop("name", None), body.pop("description", None)
    channel = body.pop("channel_name", None)
    for key, value in (("name", name), ("description", description), ("channel_name", channel)):
        if value is not None and not isinstance(value, str):  # (a list here was a 500)
            raise PolicyError(f"{key} must be a string")
    unknown = set(body) - set(FILTERS)
    if unknown:
        raise PolicyError(f"unknown field(s): {', '.join(sorted(unknown))}")
    return name, description, channel, body


def _require_channel(services: Core, name: str) -> None:
    if services.catalog().get_channel(name) is None:
        raise NotFound(f"channel {name!r} not found")


def _audit(actor: Actor, action: str, channel: str | None = None,
           **details: Any) -> Callable[[Database, int], None]:
    """The audit callback the store runs inside the change's transaction."""
    def write(db: Database, policy_id: int) -> None:
        audit(db, actor, action, channel, str(policy_id), **details)
    return write


def create(services: Core, body: dict[str, Any], *, actor: Actor = CLI) -> dict[str, Any]:
    name, description, channel, filters = _split_body(body)
    if not name or not isinstance(name, str):
        raise PolicyError("a policy needs a name")
    if channel:
        _require_channel(services, channel)
    store = policy_store(services)
    policy = store.create(name, str(description or ""), filters, channel=channel,
                          audit=_audit(actor, "policy.create", channel, name=name))
    if channel:
        reapply(services, [channel])
    return store.get(policy.id).as_json()


def edit(services: Core, ref: int | str, body: dict[str, Any], *,
         actor: Actor = CLI) -> dict[str, Any]:
    name, description, channel, changes = _split_body(body)
    if channel:
        _require_channel(services, channel)
    store = policy_store(services)
    old = store.get(ref)
    policy = store.update(old, name=name or None, description=description, changes=changes,
                          channel=channel,
                          audit=_audit(actor, "policy.edit", channel,
                                       fields=sorted(k for k in body if k != "channel_name")))
    reapply(services, sorted(set(policy.channels) | set(old.channels)))
    return policy.as_json()


def delete(services: Core, ref: int | str, *, actor: Actor = CLI) -> dict[str, Any]:
    store = policy_store(services)
    policy = store.get(ref)
    store.delete(policy, audit=_audit(actor, "policy.delete", None, name=policy.name,
                                      channels=policy.channels))
    reapply(services, policy.channels)
    return {"deleted": policy.id, "channels": policy.channels}


def assign(services: Core, ref: int | str, channel: str, *,
           actor: Actor = CLI) -> dict[str, Any]:
    _require_channel(services, channel)
    store = policy_store(services)
    policy = store.get(ref)
    store.assign(policy, channel, audit=_audit(actor, "policy.assign", channel))
    rebuilt = reapply(services, [channel])
    return {"policy": policy.id, "assigned": channel, "rebuilt": rebuilt.get(channel, [])}


def unassign(services: Core, ref: int | str, channel: str, *,
             actor: Actor = CLI) -> dict[str, Any]:
    store = policy_store(services)
    policy = store.get(ref)
    if not store.unassign(policy, channel, audit=_audit(actor, "policy.unassign", channel)):
        raise NotFound(f"policy {policy.id} is not assigned to channel {channel!r}")
    rebuilt = reapply(services, [channel])
    return {"policy": policy.id, "unassigned": channel, "rebuilt": rebuilt.get(channel, [])}


def explain(services: Core, channel: str, filename: str) -> dict[str, Any]:
    """Which rules of the channel's policy hide ``filename`` (any subdir, or ``subdir/file``)."""
    ch = services.catalog().get_channel(channel)
    if ch is None:
        raise NotFound(f"channel {channel!r} not found")
    subdir, _, fn = filename.rpartition("/")
    files = [r for r in services.catalog().packages(channel)
             if r.filename == fn and (not subdir or r.subdir == subdir)]
    if not files:
        raise NotFound(f"{filename} is not in channel {channel!r}")
    policy = policy_store(services).for_channel(channel)
    reasons = decide(services, policy, ch) if policy else {}
    return {
        "channel": channel,
        "policy": policy.as_json() if policy else None,
        "files": [{"subdir": r.subdir, "filename": r.filename,
                   "hidden": bool(reasons.get((r.subdir, r.filename))),
                   "reasons": reasons.get((r.subdir, r.filename), [])} for r in files],
    }

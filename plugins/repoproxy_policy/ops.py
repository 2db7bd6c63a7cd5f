"""Policy operations shared by the API and the CLI: change, then re-apply where it matters."""

from __future__ import annotations

from typing import Any

from repoproxy.errors import NotFound

from .model import FILTERS, PolicyError
from .service import decide, policy_store, reapply


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


def _require_channel(services: Any, name: str) -> None:
    if services.catalog().get_channel(name) is None:
        raise NotFound(f"channel {name!r} not found")


def create(services: Any, body: dict[str, Any]) -> dict[str, Any]:
    name, description, channel, filters = _split_body(body)
    if not name or not isinstance(name, str):
        raise PolicyError("a policy needs a name")
    if channel:
        _require_channel(services, channel)
    store = policy_store(services)
    policy = store.create(name, str(description or ""), filters)
    if channel:
        store.assign(policy, channel)
        reapply(services, [channel])
    return store.get(policy.id).as_json()


def edit(services: Any, ref: int | str, body: dict[str, Any]) -> dict[str, Any]:
    name, description, channel, changes = _split_body(body)
    store = policy_store(services)
    policy = store.update(store.get(ref), name=name or None, description=description,
                          changes=changes)
    if channel:
        _require_channel(services, channel)
        store.assign(policy, channel)
    policy = store.get(policy.id)
    reapply(services, policy.channels)
    return policy.as_json()


def delete(services: Any, ref: int | str) -> dict[str, Any]:
    store = policy_store(services)
    policy = store.get(ref)
    store.delete(policy)
    reapply(services, policy.channels)
    return {"deleted": policy.id, "channels": policy.channels}


def assign(services: Any, ref: int | str, channel: str) -> dict[str, Any]:
    _require_channel(services, channel)
    store = policy_store(services)
    policy = store.get(ref)
    store.assign(policy, channel)
    rebuilt = reapply(services, [channel])
    return {"policy": policy.id, "assigned": channel, "rebuilt": rebuilt.get(channel, [])}


def unassign(services: Any, ref: int | str, channel: str) -> dict[str, Any]:
    store = policy_store(services)
    policy = store.get(ref)
    if not store.unassign(policy, channel):
        raise NotFound(f"policy {policy.id} is not assigned to channel {channel!r}")
    rebuilt = reapply(services, [channel])
    return {"policy": policy.id, "unassigned": channel, "rebuilt": rebuilt.get(channel, [])}


def explain(services: Any, channel: str, filename: str) -> dict[str, Any]:
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

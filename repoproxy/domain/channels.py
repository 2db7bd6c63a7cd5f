"""Channel operations: create, update (privacy, description), remove; subchannels.

A subchannel ``C/SUB`` is a channel row of its own (its own files, repodata and shards, served
at ``/C/SUB/<subdir>/...``) whose access follows its parent's: its privacy is kept equal to
the parent's, grants on ``C`` cover it, and it goes when ``C`` goes.

Each runs one write transaction that also writes its audit row, then rebuilds what changed and
fires the channel's event hook after commit.

Removing a channel removes everything the core keeps for it, so that a channel created later
under the same name starts empty and inherits no access: its files, catalog rows and members,
and its place in service tokens. A token that named the channel loses it; a token whose only
channel it was is revoked (its channel list would otherwise become empty, and an empty list
means something else: a personal token). Plugins remove their own data in
``repoproxy_channel_removed``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from repoproxy.domain.audit import CLI, Actor, audit
from repoproxy.errors import ChannelExists, Forbidden, InvalidName, NotFound, RepoproxyError
from repoproxy.models import Access, Channel, Identity, Privacy, new_incarnation
from repoproxy.names import check_channel_name, split_channel
from repoproxy.plugins import notify
from repoproxy.storage.accounts import Accounts
from repoproxy.storage.catalog import Catalog, utcnow
from repoproxy.storage.db import write_transaction

if TYPE_CHECKING:
    from repoproxy.domain.core import Core


def parse_privacy(value: object) -> Privacy:
    try:
        return Privacy(str(value))
    except ValueError:
        raise InvalidName(
            f"invalid privacy {value!r}: use public, authenticated or private") from None


def create_channel(core: Core, name: str, description: str = "", privacy: str | None = None,
                   *, actor: Actor = CLI) -> Channel:
    """Create a channel and materialise its empty noarch index.

    Admins and local callers create channels; a user (or a user's token) creates one and
    becomes its first owner. Any other identity is refused. ``privacy`` defaults to public.
    """
    check_channel_name(name)
    if "/" in name:
        return create_subchannel(core, name, description, actor=actor, privacy=privacy)
    priv = parse_privacy(privacy or "public")
    channel = Channel(name=name, description=description, privacy=priv, created=utcnow(),
                      incarnation=new_incarnation())
    db = core.db()
    with _view_change(core, name, public=priv == Privacy.PUBLIC), write_transaction(db):
        accounts = Accounts(db)
        owner = None
        if isinstance(actor, Identity) and not actor.is_admin:
            if actor.kind not in ("user", "token") or accounts.get_user(actor.name) is None:
                raise Forbidden("this needs an admin token")
            owner = actor.name
        catalog = Catalog(db)
        if catalog.get_channel(name) is not None:
            raise ChannelExists(f"channel {name!r} already exists")
        catalog.insert_channel(channel)
        if owner is not None:
            accounts.add_member(name, owner, "owner")
        audit(db, actor, "channel.create", name, None, privacy=str(priv))
    core.indexer.build(name, "noarch")
    core.indexer.build_channeldata(name)
    notify(core.pm, "repoproxy_channel_created", services=core, channel=channel)
    return channel


def _may_manage(actor: Actor, channel: str) -> bool:
    if not isinstance(actor, Identity) or actor.is_admin:
        return True
    level = actor.access(channel)
    return level is not None and level.rank >= Access.MANAGE.rank


def _may_read(actor: Actor, channel: Channel) -> bool:
    if not isinstance(actor, Identity) or channel.privacy == Privacy.PUBLIC:
        return True
    if channel.privacy == Privacy.AUTHENTICATED and actor.kind != "anonymous":
        return True
    return actor.access(channel.name) is not None


def create_subchannel(core: Core, name: str, description: str = "", *,
                      actor: Actor = CLI, privacy: str | None = None) -> Channel:
    """Create ``C/SUB`` under an existing channel ``C``: who manages ``C`` may.

    Its privacy is the parent's (access follows the parent): a ``privacy`` asked for that is
    not the parent's is refused, rather than silently ignored. A parent the caller may not
    manage answers like an absent one, so the call tells nothing about hidden channels.
    """
    check_channel_name(name)
    wanted = parse_privacy(privacy) if privacy is not None else None
    parent_name, _ = split_channel(name)
    db = core.db()
    # into the public view after the commit when the parent is public (nginx serves it)
    with _view_change(core, name, public=True), write_transaction(db):
        catalog = Catalog(db)
        parent = catalog.get_channel(parent_name)
        if parent is None or not _may_read(actor, parent):
            raise NotFound("channel not found")
        if not _may_manage(actor, parent_name):
            raise Forbidden(f"you may not manage channel {parent_name!r}")
        if catalog.get_channel(name) is not None:
            raise ChannelExists(f"subchannel {name!r} already exists")
        if wanted is not None and wanted != parent.privacy:
            raise RepoproxyError(
                f"a subchannel's privacy follows its parent channel: {parent_name!r} is "
                f"{parent.privacy}, so {name!r} cannot be {wanted}")
        channel = Channel(name=name, description=description, privacy=parent.privacy,
                          created=utcnow(), incarnation=new_incarnation())
        catalog.insert_channel(channel)
        audit(db, actor, "subchannel.create", parent_name, name)
    core.indexer.build(name, "noarch")
    core.indexer.build_channeldata(name)
    notify(core.pm, "repoproxy_channel_created", services=core, channel=channel)
    return channel


def list_subchannels(core: Core, parent: str) -> list[Channel]:
    catalog = core.catalog()
    catalog.require_channel(parent)
    return catalog.subchannels(parent)


def update_channel(core: Core, name: str, *, actor: Actor = CLI, privacy: str | None = None,
                   description: str | None = None) -> Channel:
    """Change a channel's privacy and/or description (one audit row either way)."""
    fields: dict[str, object] = {}
    if privacy is not None:
        fields["privacy"] = parse_privacy(privacy)
    if description is not None:
        fields["description"] = str(description)
    if not fields:
        raise RepoproxyError("nothing to change: give privacy and/or description")
    if "privacy" in fields and "/" in name:
        raise RepoproxyError("a subchannel's privacy follows its parent channel: change the "
                             "parent's")
    db = core.db()
    public = fields.get("privacy", Privacy.PUBLIC) == Privacy.PUBLIC
    with _view_change(core, name, public=public), write_transaction(db):
        catalog = Catalog(db)
        old = catalog.require_channel(name)
        catalog.update_channel(name, **fields)
        if "privacy" in fields:
            catalog.set_subchannels_privacy(name, str(fields["privacy"]))
        if "privacy" in fields and fields["privacy"] != old.privacy:
            audit(db, actor, "channel.privacy", name, None, old=str(old.privacy),
                  new=str(fields["privacy"]),
                  **({"description": fields["description"]} if "description" in fields else {}))
        else:
            audit(db, actor, "channel.update", name, None,
                  **{k: str(v) for k, v in fields.items()})
        channel = catalog.require_channel(name)
    if channel.description != old.description:
        core.indexer.build_channeldata(name)  # channeldata.json carries the description
    return channel


def remove_channel(core: Core, name: str, *, actor: Actor = CLI) -> Channel:
    """Remove a channel (and its subchannels) with files, catalog rows, members and token
    grants."""
    db = core.db()
    with _view_change(core, name, public=False), write_transaction(db):
        catalog = Catalog(db)
        channel = catalog.require_channel(name)
        subchannels = catalog.subchannels(name) if "/" not in name else []
        files, revoked, narrowed = 0, [], []
        for ch in [channel, *subchannels]:
            files += len(list(catalog.packages(ch.name)))
            catalog.delete_channel(ch.name)  # packages, subdirs, shards, members
            gone, fewer = _forget_in_tokens(catalog, ch.name)
            revoked += gone
            narrowed += fewer
        extra = {"subchannels": [c.name for c in subchannels]} if subchannels else {}
        audit(db, actor, "channel.delete", name, None, files=files, revoked_tokens=revoked,
              narrowed_tokens=narrowed, **extra)
    directory = core.store.channel_dir(name)
    if directory.exists():
        # out of the served tree in one rename, then deleted at leisure
        trash = core.store.tmp_dir / f".removed-{os.getpid()}-{name.replace('/', '+')}"
        shutil.rmtree(trash, ignore_errors=True)
        trash.parent.mkdir(parents=True, exist_ok=True)
        os.replace(directory, trash)
        shutil.rmtree(trash, ignore_errors=True)
    for ch in [*subchannels, channel]:
        notify(core.pm, "repoproxy_channel_removed", services=core, channel=ch)
    return channel


@contextmanager
def _view_change(core: Core, name: str, *, public: bool) -> Iterator[None]:
    """Around a transaction that may change whether ``name`` is public: keep the public view
    (storage/public.py) from ever showing a channel that is not public. Out of the view
    before a commit that may make it non-public; back in only from the committed row. A
    channel's subchannels share its privacy: their links move with it."""
    view = core.store.public
    with view.locked():
        before = _with_subchannels(core, name)
        if not public:
            for each in before:
                view.unpublish(each)
        try:
            yield
        finally:
            catalog = core.catalog()
            for each in sorted(before | _with_subchannels(core, name)):
                channel = catalog.get_channel(each)
                if channel is not None and channel.privacy == Privacy.PUBLIC:
                    view.publish(each)
                else:
                    view.unpublish(each)


def _with_subchannels(core: Core, name: str) -> set[str]:
    if "/" in name:
        return {name}
    return {name, *(c.name for c in core.catalog().subchannels(name))}


def sync_public_view(core: Core) -> None:
    """Re-derive the whole public view from the catalog (``repoproxy serve`` at start)."""
    view = core.store.public
    with view.locked():
        view.sync(ch.name for ch in core.catalog().list_channels()
                  if ch.privacy == Privacy.PUBLIC)


def _forget_in_tokens(catalog: Catalog, name: str) -> tuple[list[str], list[str]]:
    """Take ``name`` out of every token's channel list; revoke tokens left with none."""
    revoked, narrowed = [], []
    for row in catalog.tokens_of_channel(name):
        if row["revoked"]:
            continue
        rest = [c for c in json.loads(row["channels"] or "[]") if c != name]
        if rest:
            catalog.update_token(row["id"], channels=json.dumps(rest))
            narrowed.append(row["id"])
        else:
            catalog.update_token(row["id"], revoked=1)
            revoked.append(row["id"])
    return revoked, narrowed

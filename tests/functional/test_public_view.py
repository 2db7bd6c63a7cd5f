"""The public view (storage/public.py) follows privacy in the safe order, and validators
change whenever a file is replaced (the nginx front relies on both)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from repoproxy.domain.channels import (
    create_channel,
    remove_channel,
    sync_public_view,
    update_channel,
)
from repoproxy.errors import NotFound
from repoproxy.storage.store import atomic_write
from repoproxy.web.files import stat_etag


def linked(services: Any) -> set[str]:
    return services.store.public.published()


def test_view_holds_exactly_the_public_channels(services: Any) -> None:
    create_channel(services, "open")
    create_channel(services, "closed", privacy="private")
    create_channel(services, "members", privacy="authenticated")
    assert linked(services) == {"open"}
    link = services.store.public.dir / "open"
    assert (link / "noarch" / "repodata.json").is_file()  # leads into the channel's tree
    assert link.readlink() == Path("../channels/open")

    update_channel(services, "open", privacy="private")
    assert linked(services) == set()
    update_channel(services, "closed", privacy="public")
    update_channel(services, "closed", description="still public")
    assert linked(services) == {"closed"}
    remove_channel(services, "closed")
    assert linked(services) == set()


def test_a_failed_change_leaves_the_view_as_the_catalog_says(services: Any) -> None:
    create_channel(services, "open")
    with pytest.raises(NotFound):
        update_channel(services, "absent", privacy="public")
    assert linked(services) == {"open"}
    assert not (services.store.public.dir / "absent").exists()


def test_sync_repairs_a_view_out_of_step(services: Any) -> None:
    create_channel(services, "open")
    create_channel(services, "closed", privacy="private")
    view = services.store.public
    view.unpublish("open")
    view.publish("closed")  # as if a crash or a hand edit left it wrong
    sync_public_view(services)
    assert linked(services) == {"open"}


def test_a_replacement_never_repeats_the_validator(tmp_path: Path) -> None:
    path = tmp_path / "repodata.json"
    atomic_write(path, b"same size A")
    first = stat_etag(path.stat())
    for _ in range(3):  # same size, same second: the stamp still moves on
        atomic_write(path, b"same size B")
        second = stat_etag(path.stat())
        assert second != first
        first = second


def test_a_subchannel_has_its_own_link_that_follows_its_parent(services: Any) -> None:
    """A subchannel's privacy is its parent's: its link (``C+SUB``) comes and goes with the
    parent's, leaves before its own removal commits, and sync rebuilds it."""
    create_channel(services, "main")
    create_channel(services, "main/rc")
    create_channel(services, "shut", privacy="private")
    create_channel(services, "shut/rc")
    view = services.store.public
    assert linked(services) == {"main", "main+rc"}
    assert (view.dir / "main+rc").readlink() == Path("../channels/main/rc")
    assert (view.dir / "main+rc" / "noarch" / "repodata.json").is_file()
    view.unpublish("main/rc")  # as if a crash left it out
    sync_public_view(services)
    assert linked(services) == {"main", "main+rc"}
    update_channel(services, "main", privacy="private")
    assert linked(services) == set()
    update_channel(services, "shut", privacy="public")
    assert linked(services) == {"shut", "shut+rc"}
    update_channel(services, "main", privacy="public")
    remove_channel(services, "main/rc")
    assert linked(services) == {"main", "shut", "shut+rc"}
    remove_channel(services, "shut")  # its subchannel goes with it, the view stays clean
    assert linked(services) == {"main"}

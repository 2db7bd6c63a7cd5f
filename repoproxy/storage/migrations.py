"""The core's schema, as a sqlite-utils ``Migrations`` set named ``repoproxy``.

Plugins bring their own sets through the ``repoproxy_migrations`` hook. Never edit a released
migration: add a new one.
"""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database, Migrations

migrations = Migrations("repoproxy")


@migrations()
def m001_core(db: Database) -> None:
    db.table("channels").create(
        {"name": str, "description": str, "privacy": str, "created": str}, pk="name"
    )
    db.table("packages").create(
        {
            "channel": str,
            "subdir": str,
            "filename": str,
            "name": str,
            "version": str,
            "build": str,
            "build_number": int,
            "size": int,
            "sha256": str,
            "md5": str,
            "indexed_timestamp": int,
            "record": str,
            "about": str,
            "run_exports": str,
            "uploader": str,
            "uploaded_at": str,
            "file_ino": int,
            "file_mtime_ns": int,
        },
        pk=("channel", "subdir", "filename"),
        foreign_keys=[("channel", "channels", "name")],
    )
    db.table("packages").create_index(["channel", "name"])
    # generation: bumped by every change of the subdir; built: the generation last materialised
    db.table("subdirs").create(
        {"channel": str, "subdir": str, "generation": int, "built": int},
        pk=("channel", "subdir"),
        foreign_keys=[("channel", "channels", "name")],
        defaults={"generation": 0, "built": -1},
    )
    db.table("dirty_names").create(
        {"id": int, "channel": str, "subdir": str, "name": str},
        pk="id",
    )
    db.table("shards").create(
        {"channel": str, "subdir": str, "name": str, "sha256": str},
        pk=("channel", "subdir", "name"),
    )
    db.table("superseded_shards").create(
        {"channel": str, "subdir": str, "sha256": str, "superseded_at": float},
        pk=("channel", "subdir", "sha256"),
    )
    db.table("tokens").create(
        {
            "id": str,
            "name": str,
            "hash": str,
            "owner": str,
            "role": str,
            "channels": str,
            "access": str,
            "created": str,
            "expires": str,
            "last_used": str,
            "revoked": int,
        },
        pk="id",
        defaults={"revoked": 0},
    )


def apply_all(db: Database, extra_sets: list[Any]) -> None:
    migrations.apply(db)
    for extra in extra_sets:
        extra.apply(db)


@migrations()
def m002_access(db: Database) -> None:
    db.table("users").create(
        {"name": str, "password_hash": str, "role": str, "created": str}, pk="name"
    )
    db.table("members").create(
        {"channel": str, "user": str, "role": str, "added": str},
        pk=("channel", "user"),
        foreign_keys=[("channel", "channels", "name"), ("user", "users", "name")],
    )
    db.table("audit").create(
        {"id": int, "at": str, "actor": str, "action": str, "channel": str, "target": str,
         "details": str},
        pk="id",
    )
    db.table("audit").create_index(["at"])


@migrations()
def m003_artifacts(db: Database) -> None:
    # generic artifacts (family "gra": any file, notebooks included) stored beside a channel's
    # conda packages but never indexed into its repodata; bytes live in a content-addressed
    # blob (<channel>/.artifacts/<sha256>) so that a forced replacement is one row update
    db.table("artifacts").create(
        {"channel": str, "name": str, "version": str, "filename": str, "kind": str,
         "size": int, "sha256": str, "md5": str, "description": str, "uploader": str,
         "uploaded_at": str},
        pk=("channel", "name", "version", "filename"),
        foreign_keys=[("channel", "channels", "name")],
    )
    db.table("artifacts").create_index(["channel", "sha256"])
    # a channel's last change (`channel show`): the newest audit row of the channel
    db.table("audit").create_index(["channel", "at"])


@migrations()
def m004_channel_incarnation(db: Database) -> None:
    # a random value per channel row: a channel removed and created again under the same name
    # within a second (``created``'s grain) must not meet the caches of the earlier one
    db.table("channels").add_column("incarnation", str)
    db.execute("UPDATE channels SET incarnation = lower(hex(randomblob(8)))")

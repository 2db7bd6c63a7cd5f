"""Plain data passed between layers and to hooks. No I/O here."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class Privacy(StrEnum):
    PUBLIC = "public"  # anyone reads
    AUTHENTICATED = "authenticated"  # any valid identity reads ("soft-lock")
    PRIVATE = "private"  # members and scoped tokens only ("lock")


class Access(StrEnum):
    """What a token or membership grants on a channel, each level including the previous."""

    READ = "read"
    WRITE = "write"
    MANAGE = "manage"

    @property
    def rank(self) -> int:
        return ("read", "write", "manage").index(self.value)


def new_incarnation() -> str:
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Channel:
    name: str
    description: str = ""
    privacy: Privacy = Privacy.PUBLIC
    created: str = ""
    #: random, made when the channel is created (:func:`new_incarnation`) and stored with its
    #: row: tells a channel from an earlier one of the same name (caches key on it; ``created``
    #: has a one-second grain). Not part of the API. Empty in the placeholder an access check
    #: builds for an absent channel, which must cost what a real one costs (no urandom read).
    incarnation: str = field(default="", compare=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "privacy": str(self.privacy),
            "created": self.created,
        }


@dataclass(frozen=True)
class PackageMetadata:
    """What ingest read from an archive's info part."""

    index: dict[str, Any]
    about: dict[str, Any] = field(default_factory=dict)
    run_exports: dict[str, Any] | None = None
    info_members: tuple[str, ...] = ()


@dataclass(frozen=True)
class PackageRecord:
    """One package file of a channel, as the catalog knows it."""

    channel: str
    subdir: str
    filename: str
    name: str
    version: str
    build: str
    build_number: int
    size: int
    sha256: str
    md5: str
    indexed_timestamp: int
    record: dict[str, Any]  # the repodata.json record, exactly as served
    about: dict[str, Any] = field(default_factory=dict)
    run_exports: dict[str, Any] | None = None
    uploader: str | None = None
    uploaded_at: str = ""

    @property
    def path(self) -> str:
        return f"{self.channel}/{self.subdir}/{self.filename}"


@dataclass(frozen=True)
class Rejection:
    """A plugin's reason to refuse a package; every rejection is reported at once."""

    plugin: str
    reason: str


@dataclass(frozen=True)
class Identity:
    """Who is calling. ``grants`` maps channel name (or ``"*"``) to an access level."""

    name: str
    kind: str  # "token" | "user" | "anonymous" | a plugin's own word
    role: str = "user"  # "admin" | "user"
    grants: dict[str, Access] = field(default_factory=dict)
    token_id: str | None = None
    expires: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def access(self, channel: str) -> Access | None:
        if self.is_admin:
            return Access.MANAGE
        # a subchannel's access follows its parent: a grant on "C" covers "C/SUB"
        parent = channel.partition("/")[0]
        return (self.grants.get(channel) or self.grants.get(parent)
                or self.grants.get("*"))


class Credentials(NamedTuple):
    """What a request presented. A named tuple, not a frozen dataclass: one is made for every
    request with credentials, and a frozen dataclass's ``__init__`` cost five times as much."""

    token: str | None = None  # bearer, /t/ path, X-API-Key or Basic password
    username: str | None = None
    password: str | None = None
    source: str = ""

    @property
    def empty(self) -> bool:
        return self.token is None and self.username is None


@dataclass(frozen=True)
class PageSection:
    """A section a plugin adds to a channel's web page (``repoproxy_channel_page_sections``):
    plain data, a heading and a table, so a plugin needs no template and the page stays
    escaped, accessible and styled like the rest."""

    id: str  # the section's HTML id (letters, digits, '-')
    title: str
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str, ...], ...] = ()
    intro: str = ""  # one paragraph above the table
    empty: str = ""  # shown instead of the table when there is no row


@dataclass(frozen=True)
class LeanFile:
    """A claimed channel's file the server may answer in front of the application
    (``repoproxy_channel_file_lean``), exactly as ``web/files.file_response`` would."""

    path: str  # the file to answer (absent: the application answers after all)
    etag: str | None = None  # the ETag given to file_response (None: the file's stamp)
    #: called once the server answered it (200 or 304), on the request's thread: what the
    #: plugin's own answer records (a cache hit told to a status hook); not called when the
    #: request went to the application after all
    answered: Callable[[], None] | None = None


"""The read model: what one caller may see, with access and policy-hidden files applied once.

Every read path (the package details API, file and package lists, search, badges, SBOMs,
download counts, CVE views, the CLI's offline reads) asks a :class:`ReadModel` instead of the
catalog. It applies two rules, in one place:

- **access**: a channel the caller may not read answers exactly like an absent one
  (:class:`~repoproxy.errors.NotFound` with the same words), and never appears in a list;
- **policy**: a file the channel's policy hides from its repodata (``repoproxy_excluded_files``,
  materialised by the indexer as the subdir's hidden set) is absent from every answer, so no
  view shows a version that clients cannot install.

The web layer builds one per request (``request.reads``) whose predicate asks the security
policy; offline callers (the CLI with ``--root``, workers) use :meth:`ReadModel.unrestricted`.
No web framework here.

Methods take a channel by name (checked with the predicate) or a :class:`Channel` the caller
already admitted (a route's resource whose read permission the security policy granted, or
one returned by :meth:`ReadModel.channel`).
"""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from repoproxy.errors import NotFound
from repoproxy.models import Channel, PackageRecord, Privacy

if TYPE_CHECKING:
    from repoproxy.domain.core import Core

ChannelRef = Channel | str
FileRow = tuple[str, str, str, str, int, int]
#: package summaries kept between requests, over all channels (some 400 bytes each: a channel
#: of 50,000 names fits twice); a channel with more names than this is summarised per request
SUMMARIES_KEPT = 100_000
#: files read per query by :meth:`ReadModel.walk_packages`
WALK_BATCH = 500


def channel_not_found() -> NotFound:
    # the same words whatever the name: a hidden channel and an absent one answer alike
    return NotFound("channel not found")


@functools.lru_cache(maxsize=65536)
def version_key(version: str) -> Any:
    """A sort key in conda's version order (py-rattler's ``Version``); remembered, as pages
    sort the same thousands of versions on every request."""
    from rattler import Version

    try:
        return (1, Version(version))
    except Exception:  # an unparsable version sorts below every valid one
        return (0, version)


def newest_key(rec: PackageRecord) -> Any:
    return (version_key(rec.version), rec.build_number, rec.indexed_timestamp)


def latest(records: Iterable[PackageRecord]) -> PackageRecord:
    """The newest file: conda version order, then build number, then indexing time."""
    return max(records, key=newest_key)


@dataclass(frozen=True)
class Dependency:
    """One ``depends`` entry, parsed as conda parses it (py-rattler's ``MatchSpec``)."""

    name: str
    spec: str  # version and build constraints, "" when any version will do
    raw: str
    channel: str | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "spec": self.spec, "raw": self.raw}
        if self.channel:
            out["channel"] = self.channel
        return out


@functools.lru_cache(maxsize=16384)
def parse_dependency(raw: str) -> Dependency:
    """``conda-forge::numpy >=1.2``, ``numpy[version='>=1.2']``, ``python 3.11.* *_cpython``...

    A string MatchSpec refuses (a package built by a foreign tool) is still shown: its first
    word as the name, the rest as the constraint, so the dependency does not vanish.
    """
    from rattler import MatchSpec

    try:
        ms = MatchSpec(raw)
    except Exception:
        name, _, rest = raw.strip().partition(" ")
        return Dependency(name=name, spec=rest.strip(), raw=raw)
    name = ms.name.normalized if ms.name is not None else raw.strip()
    spec = " ".join(str(part) for part in (ms.version, ms.build) if part is not None)
    channel = ms.channel.name if ms.channel is not None else None
    return Dependency(name=name, spec=spec, raw=raw, channel=channel)


@dataclass(frozen=True)
class Package:
    """The visible files of one package name in one channel (never empty)."""

    channel: Channel
    name: str
    records: tuple[PackageRecord, ...]

    @property
    def newest(self) -> PackageRecord:
        return latest(self.records)

    @property
    def versions(self) -> list[str]:
        return sorted({r.version for r in self.records}, key=version_key, reverse=True)

    @property
    def platforms(self) -> list[str]:
        return sorted({r.subdir for r in self.records})

    @property
    def latest_release(self) -> int:
        return max(r.indexed_timestamp for r in self.records)


@dataclass(frozen=True, slots=True)
class PackageSummary:
    """One package name of a channel as a listing shows it (no file metadata decoded)."""

    name: str
    latest_version: str
    platforms: tuple[str, ...]
    file_count: int
    latest_release: int
    newest: tuple[str, str]  # (subdir, filename) of the newest file


@dataclass(frozen=True)
class ChannelOverview:
    channel: Channel
    package_count: int
    file_count: int
    last_update: int  # the newest visible file's indexing time (ms), 0 when empty


def _summarise(rows: Iterable[FileRow]) -> tuple[PackageSummary, ...]:
    """One summary per name of ``rows``, which come ordered by name: one name's files are in
    memory at a time, never the channel's."""
    out = []
    for name, grouped in itertools.groupby(rows, key=lambda r: r[2]):
        group = list(grouped)
        # conda's version order; the build number breaks ties
        newest = max(group, key=lambda r: (version_key(r[3]), r[4], r[5]))
        out.append(PackageSummary(name=name, latest_version=newest[3],
                                  platforms=tuple(sorted({r[0] for r in group})),
                                  file_count=len(group),
                                  latest_release=max(r[5] for r in group),
                                  newest=(newest[0], newest[1])))
    return tuple(out)


class ListingCache:
    """Channels' package summaries kept between requests, keyed by the channel's identity,
    its subdirs' generations and their hidden sets: any added or removed file or change of
    policy changes the key, so a stale listing is never served. At most
    :data:`SUMMARIES_KEPT` summaries in all, the oldest listing going first."""

    def __init__(self, budget: int = SUMMARIES_KEPT) -> None:
        self._lock = threading.Lock()
        self._budget = budget
        self._kept: dict[Any, tuple[PackageSummary, ...]] = {}

    def get(self, key: Any) -> tuple[PackageSummary, ...] | None:
        with self._lock:
            return self._kept.get(key)

    def put(self, key: Any, value: tuple[PackageSummary, ...]) -> None:
        if len(value) > self._budget:
            return  # summarised again per request rather than pushing every other one out
        with self._lock:
            self._kept.pop(key, None)
            held = sum(map(len, self._kept.values()))
            while self._kept and held + len(value) > self._budget:
                held -= len(self._kept.pop(next(iter(self._kept))))  # the oldest goes first
            self._kept[key] = value

    def size(self) -> int:
        """Summaries held (for tests)."""
        with self._lock:
            return sum(map(len, self._kept.values()))


class ReadModel:
    def __init__(self, core: Core, may_read: Callable[[Channel], bool]) -> None:
        self.core = core
        self.may_read = may_read
        self._catalog: Any = None
        self._hidden: dict[tuple[str, str], frozenset[str]] = {}
        self._summaries: dict[str, tuple[PackageSummary, ...]] = {}
        self._keys: dict[str, tuple[Any, ...]] = {}
        self._packages: dict[tuple[str, str], Package] = {}

    @classmethod
    def unrestricted(cls, core: Core) -> ReadModel:
        """What an administrator sees: every channel (policy-hidden files stay hidden)."""
        return cls(core, lambda channel: True)

    @property
    def catalog(self) -> Any:
        if self._catalog is None:  # one connection lookup per read model, on first use
            self._catalog = self.core.catalog()
        return self._catalog

    # --- channels ---------------------------------------------------------------------------
    def channels(self) -> list[Channel]:
        return [ch for ch in self.catalog.list_channels() if self.may_read(ch)]

    def channel(self, ref: ChannelRef) -> Channel:
        """The channel if the caller may read it; else NotFound, exactly as if absent."""
        if isinstance(ref, Channel):
            return ref
        channel = self.catalog.find_channel(ref)
        # both checks always run, so a hidden channel costs what an absent one costs
        readable = self.may_read(channel or Channel(name=ref, privacy=Privacy.PRIVATE))
        if channel is None or not readable:
            raise channel_not_found()
        return channel

    def subdirs(self, ref: ChannelRef) -> list[str]:
        return list(self.catalog.subdirs(self.channel(ref).name))

    def subdir_counts(self, ref: ChannelRef) -> dict[str, int]:
        """Visible package files per subdir (every subdir the channel has, 0 included)."""
        channel = self.channel(ref)
        counts = self.catalog.file_counts(channel.name)
        # the hidden set is a subset of the subdir's catalog files: the indexer computes it
        # from them, under the subdir's lock, after every change
        return {sd: max(0, counts.get(sd, 0) - len(self.hidden(channel.name, sd)))
                for sd in self.catalog.subdirs(channel.name)}

    def package_summaries(self, ref: ChannelRef) -> list[PackageSummary]:
        """Every package name with a visible file, by name, from the catalog's light columns:
        a listing of thousands of files decodes no JSON (and is computed once per change of
        the channel's files or hidden sets, then kept)."""
        return list(self._package_summaries(self.channel(ref)))

    def _package_summaries(self, channel: Channel) -> tuple[PackageSummary, ...]:
        if channel.name not in self._summaries:
            generations = self._listing_key(channel)
            hidden = {sd: self.hidden(channel.name, sd) for sd, _ in generations[2]}
            key = (generations, tuple(hidden.values()))
            cache = self.core.plugin_state("repoproxy.reads.listings", ListingCache)
            found = cache.get(key)
            if found is None:
                # streamed by name from SQLite: a channel's rows are never all in memory
                found = _summarise(row for row in self.catalog.file_summaries(channel.name)
                                   if row[1] not in hidden.get(row[0], ()))
                cache.put(key, found)
            self._summaries[channel.name] = found
        return self._summaries[channel.name]

    def summaries(self, ref: ChannelRef, listed: Iterable[PackageSummary]) -> dict[str, str]:
        """name -> the newest file's one-line summary, for the packages a page lists."""
        channel = self.channel(ref)
        listed = list(listed)
        abouts = self.catalog.abouts(channel.name, [p.newest for p in listed])
        return {p.name: str(abouts.get(p.newest, {}).get("summary") or "") for p in listed}

    def overview(self, ref: ChannelRef) -> ChannelOverview:
        """Package and file counts and the last update of a channel the caller may read."""
        channel = self.channel(ref)
        listed = self._package_summaries(channel)
        return ChannelOverview(channel=channel, package_count=len(listed),
                               file_count=sum(p.file_count for p in listed),
                               last_update=max((p.latest_release for p in listed), default=0))

    def package_names(self, ref: ChannelRef) -> set[str]:
        """The names of the channel's packages that have a visible file."""
        return {p.name for p in self._package_summaries(self.channel(ref))}

    def _listing_key(self, channel: Channel) -> tuple[Any, ...]:
        if channel.name not in self._keys:
            self._keys[channel.name] = (channel.name, channel.incarnation,
                                        self.catalog.generations(channel.name))
        return self._keys[channel.name]

    # --- policy-hidden files ----------------------------------------------------------------
    def hidden(self, channel: str, subdir: str) -> frozenset[str]:
        """The subdir's policy-hidden files: the very set its served repodata leaves out."""
        key = (channel, subdir)
        if key not in self._hidden:
            self._hidden[key] = self.core.indexer.hidden(channel, subdir)
        return self._hidden[key]

    def visible(self, rec: PackageRecord) -> bool:
        return rec.filename not in self.hidden(rec.channel, rec.subdir)

    def hidden_paths(self, ref: ChannelRef) -> set[tuple[str, str]]:
        """(subdir, filename) of every hidden file of the channel."""
        channel = self.channel(ref)
        return {(sd, fn) for sd in self.catalog.subdirs(channel.name)
                for fn in self.hidden(channel.name, sd)}

    # --- packages and files -----------------------------------------------------------------
    def packages(self, ref: ChannelRef, name: str | None = None,
                 subdir: str | None = None) -> list[PackageRecord]:
        """Visible files of the channel (ordered by subdir, filename)."""
        channel = self.channel(ref)
        return [r for r in self.catalog.packages(channel.name, subdir=subdir, name=name)
                if self.visible(r)]

    def walk_packages(self, ref: ChannelRef, subdir: str | None = None,
                      after: tuple[str, str] | None = None) -> Iterator[PackageRecord]:
        """Visible files of the channel after ``after`` = (subdir, filename), in that order,
        read :data:`WALK_BATCH` at a time: memory stays bounded whatever the channel's size,
        and no read transaction stays open between batches. Access is checked now, not
        when the walk starts."""
        channel = self.channel(ref)

        def walk(after: tuple[str, str] | None) -> Iterator[PackageRecord]:
            while True:
                batch = self.catalog.packages_after(channel.name, subdir, after, WALK_BATCH)
                yield from (r for r in batch if self.visible(r))
                if len(batch) < WALK_BATCH:
                    return
                after = (batch[-1].subdir, batch[-1].filename)

        return walk(after)

    def package(self, ref: ChannelRef, name: str) -> Package:
        channel = self.channel(ref)
        key = (channel.name, name)
        if key not in self._packages:  # a page asks several questions about one package
            records = self.packages(channel, name=name)
            if not records:
                raise NotFound(f"package {name!r} not found in channel {channel.name!r}")
            self._packages[key] = Package(channel=channel, name=name, records=tuple(records))
        return self._packages[key]

    def package_listing(self, ref: ChannelRef) -> Iterator[tuple[PackageSummary, str, str]]:
        """Every package name with a visible file, by name, with its newest file's license
        (from its record) and summary: from the cached summaries plus two columns of the
        newest files, read :data:`WALK_BATCH` names at a time as the caller goes, so a channel
        of any size never has all its records, nor all its listing's facts, in memory. Access
        is checked now, not when the walk starts."""
        admitted = self.channel(ref)
        listed, channel = self._package_summaries(admitted), admitted.name

        def walk() -> Iterator[tuple[PackageSummary, str, str]]:
            for start in range(0, len(listed), WALK_BATCH):
                batch = listed[start:start + WALK_BATCH]
                facts = self.catalog.listing_facts(channel, [p.newest for p in batch])
                yield from ((p, *facts.get(p.newest, ("", ""))) for p in batch)

        return walk()

    def files(self, ref: ChannelRef, name: str, **wanted: str | None) -> list[PackageRecord]:
        """The package's visible files, newest first; ``wanted`` filters on subdir, version,
        build or filename (an empty value filters nothing)."""
        records = list(self.package(ref, name).records)
        for key, value in wanted.items():
            if key not in ("subdir", "version", "build", "filename"):
                raise ValueError(f"cannot filter files on {key!r}")
            if value:
                records = [r for r in records if getattr(r, key) == value]
        records.sort(key=lambda r: (version_key(r.version), r.build_number, r.subdir,
                                    r.filename), reverse=True)
        return records

    def file(self, ref: ChannelRef, subdir: str, filename: str) -> PackageRecord:
        """One visible file; a hidden one is as absent as a file never uploaded."""
        channel = self.channel(ref)
        rec = self.catalog.get_package(channel.name, subdir, filename)
        if rec is None or not self.visible(rec):
            raise NotFound(f"{filename} not found")
        return rec

    def readme(self, ref: ChannelRef, name: str) -> tuple[str, str | None]:
        """(text, where it came from: "description", "summary" or None) of the newest file."""
        about = self.package(ref, name).newest.about
        text = about.get("description") or about.get("summary") or ""
        return text, ("description" if about.get("description") else
                      ("summary" if text else None))

    # --- dependencies -----------------------------------------------------------------------
    def dependencies(self, ref: ChannelRef, name: str, version: str | None = None
                     ) -> tuple[str, list[dict[str, Any]]]:
        """(the version, its dependencies with the subdirs that declare each)."""
        package = self.package(ref, name)
        version = version or package.newest.version
        chosen = [r for r in package.records if r.version == version]
        if not chosen:
            raise NotFound(f"version {version!r} not found")
        deps: dict[str, dict[str, Any]] = {}
        for rec in chosen:
            for raw in rec.record.get("depends") or []:
                entry = deps.setdefault(raw, {**parse_dependency(raw).as_json(), "subdirs": []})
                entry["subdirs"].append(rec.subdir)
        return version, sorted(deps.values(), key=lambda d: d["raw"])

    def dependents(self, ref: ChannelRef, name: str) -> list[dict[str, Any]]:
        """Visible packages of the channel whose dependencies name ``name``, newest first."""
        package = self.package(ref, name)
        channel = package.channel.name
        wanted = name.lower()  # MatchSpec names are normalised to lower case
        found: dict[str, set[str]] = {}
        # SQL narrows to the dependency strings containing the name; MatchSpec (remembered per
        # distinct string) decides which really name it
        for subdir, filename, dependent, version, raw in self.catalog.dependency_mentions(
                channel, wanted):
            if (parse_dependency(raw).name == wanted
                    and filename not in self.hidden(channel, subdir)):
                found.setdefault(dependent, set()).add(version)
        return [{"name": n, "versions": sorted(v, key=version_key, reverse=True)}
                for n, v in sorted(found.items())]

    # --- search -------------------------------------------------------------------------------
    def search(self, q: str, family: str = "conda") -> list[dict[str, Any]]:
        """Packages whose name contains ``q`` (case-insensitive) in every readable channel.

        Only readable channels are ever queried, and only visible files count: a version a
        policy hides is never a hit.
        """
        q = q.strip().lower()
        results = []
        for channel in self.channels():
            hidden = {sd: self.hidden(channel.name, sd) for sd in self.catalog.subdirs(
                channel.name)}
            by_name: dict[str, list[tuple[str, str, str, str, str, str | None]]] = {}
            for row in self.catalog.search_packages(channel.name, q):
                if row[1] not in hidden.get(row[0], ()):
                    by_name.setdefault(row[2], []).append(row)
            for name, rows in sorted(by_name.items()):
                newest = max(rows, key=lambda r: version_key(r[3]))
                results.append({
                    "channel": channel.name, "name": name, "version": newest[3],
                    "family": family, "build": newest[4],
                    "license": newest[5] or "",
                    "platforms": sorted({r[0] for r in rows if r[3] == newest[3]}),
                    "exact": name.lower() == q,
                })
        results.sort(key=lambda r: (not r["exact"], r["name"], r["channel"]))
        return results

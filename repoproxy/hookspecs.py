# mypy: disable-error-code="empty-body"
"""Every hook of the repoproxy core, grouped by phase. The docstrings are the contract.

Hooks are always called with keyword arguments. An implementation may accept any subset of
the arguments a hook declares (pluggy passes only those it names), so a hook grows by adding
arguments, never by renaming them. See docs/plugin_hooks.md for examples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click
    from pyramid.config import Configurator
    from pyramid.request import Request

    from repoproxy.domain.core import Core
    from repoproxy.models import (
        Channel,
        Identity,
        LeanFile,
        PackageMetadata,
        PackageRecord,
        PageSection,
        Rejection,
    )

hookspec = pluggy.HookspecMarker("repoproxy")

# --- start-up -----------------------------------------------------------------------------


@hookspec(historic=True)
def repoproxy_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    """Let a plugin add hookspecs of its own.

    Called once when the plugin is registered (historic: late registrations are called too).

    :param pluginmanager: the repoproxy plugin manager; call ``pluginmanager.add_hookspecs``.
    """


@hookspec
def repoproxy_settings_defaults() -> dict[str, Any]:
    """Declare a plugin's settings with their defaults.

    Called while settings are built, before anything else uses them. Keys are
    ``<plugin name>.<key>``; the default's type says how ini and environment strings are parsed
    (bool, int, float, Path, tuple for lists, str). Unknown keys under a known prefix are warned
    about.

    :return: a mapping of key to default value. All results are merged.
    """


@hookspec
def repoproxy_configure(config: Configurator) -> None:
    """Add routes, views, tweens or request methods to the Pyramid application.

    Called once from :func:`repoproxy.app.main` after the core routes exist, so core routes
    win on equal patterns. Use ``config.include`` for a plugin's own ``includeme``.

    :param config: the Pyramid Configurator; ``config.registry.services`` holds the services.
    """


@hookspec
def repoproxy_register_commands(cli: click.Group) -> None:
    """Add click commands to the ``repoproxy`` command line.

    Called when the CLI starts, with plugins loaded from the embedded defaults and the
    ``REPOPROXY_*`` environment (the command's own ``--root``/``-c`` are parsed later).

    :param cli: the top-level click group; call ``cli.add_command``.
    """


@hookspec
def repoproxy_migrations() -> Any:
    """Contribute a sqlite-utils ``Migrations`` set for a plugin's own tables.

    Called when the catalog is opened; each set is applied once, in order, by name. Name the set
    after the plugin. Never alter core tables.

    :return: a ``sqlite_utils_migrate``-style object with ``apply(db)`` or a
        :class:`repoproxy.migrations.Migrations`. All results are applied.
    """


@hookspec
def repoproxy_background_workers(services: Core) -> Iterable[Any]:
    """Contribute background workers that ``repoproxy serve`` runs beside the web server.

    Called once when the server starts; with ``repoproxy serve --workers N``, in exactly
    one of the serving processes. A worker is an object with ``start()`` (returns
    quickly, starts its own thread) and ``stop()`` (called on shutdown, must return within a
    few seconds). A worker's failure to start is logged and does not stop the server.

    :param services: the shared services (settings, catalog, store, ingest, indexer).
    :return: an iterable of workers. All results are used.
    """


@hookspec
def repoproxy_process_workers(services: Core) -> Iterable[Any]:
    """Contribute workers that every serving process runs (``repoproxy_background_workers``
    run in one process only).

    For work about the process's own state: flushing an in-memory buffer, say. Called once
    in each serving process (``repoproxy serve --workers N`` runs N); same worker shape,
    start and stop rules as ``repoproxy_background_workers``.

    :param services: the shared services.
    :return: an iterable of workers. All results are used.
    """


@hookspec
def repoproxy_serve_processes(services: Core, workers: int) -> None:
    """``repoproxy serve --workers N`` (N > 1) is about to build the app and fork N serving
    processes.

    Called once in the supervising process, before the app is built and before any fork:
    the place to set up what processes share (a multiprocess metrics directory, say).

    :param services: the shared services.
    :param workers: the number of serving processes.
    """


@hookspec
def repoproxy_worker_exited(services: Core, pid: int) -> None:
    """A serving process of ``repoproxy serve --workers N`` ended (crashed or stopped).

    Called in the supervising process; a crashed worker is started again afterwards.

    :param services: the shared services.
    :param pid: the process id that ended.
    """


@hookspec
def repoproxy_operation_timed(services: Core, operation: str, channel: str,
                              seconds: float) -> None:
    """Event: a timed operation finished; ``operation`` is ``"ingest"`` (one package file,
    from the start of its ingest to its commit and index rebuild) or ``"index_build"`` (one
    subdir's repodata files written).

    Called on the thread that did the work; implementations must be quick. Failures are
    logged and isolated.

    :param services: the shared services.
    :param operation: ``"ingest"`` or ``"index_build"``.
    :param channel: the channel's name.
    :param seconds: the wall-clock duration.
    """


# --- requests and security -----------------------------------------------------------------


@hookspec(firstresult=True)
def repoproxy_identify(request: Request, credentials: Any) -> Identity | None:
    """Tell who is calling.

    Called at most once per request, lazily, by the security policy. Stops at the first
    non-None result. Return ``None`` for "not mine" (another backend may know these
    credentials); raise :class:`repoproxy.security.CredentialsInvalid` for "mine but invalid"
    (expired, revoked, wrong password): the request is then refused with 401.

    :param request: the current request.
    :param credentials: the :class:`repoproxy.security.Credentials` found on the request
        (bearer token, Basic user/password, ``/t/<token>/`` path token, ``X-API-Key``).
    :return: an :class:`repoproxy.models.Identity` or None.
    """


@hookspec
def repoproxy_acl_entries(request: Request, context: Any) -> Iterable[tuple[str, str, Any]]:
    """Add ACL entries to a resource (a channel), ahead of the core's own entries.

    Called each time a permission is checked on a resource. Return Deny entries to take rights
    away (they are placed first), Allow entries to grant them.

    :param request: the current request.
    :param context: the resource, e.g. a :class:`repoproxy.resources.ChannelResource`.
    :return: an iterable of Pyramid ACEs ``(Allow|Deny, principal, permission)``. All results
        are combined, Deny entries first.
    """


# --- ingest and repodata ----------------------------------------------------------------


@hookspec
def repoproxy_validate_package(
    channel: Channel, metadata: PackageMetadata, path: Path, services: Core
) -> Iterable[Rejection] | Rejection | None:
    """Accept or refuse a package before it enters a channel.

    Called by the ingest pipeline for every way in (upload, import, watch folder, mirror), after
    the core checks passed, outside any transaction, with the bytes in a temporary file.
    Return rejection values, do not raise: every plugin's reasons are collected and reported
    together (HTTP 422).

    :param channel: the target channel.
    :param metadata: what was read from the archive's info part.
    :param path: the temporary file holding the package bytes (read only).
    :param services: the shared services (a policy plugin reads its own tables through it).
    :return: None, a :class:`repoproxy.models.Rejection` or an iterable of them.
    """


@hookspec
def repoproxy_excluded_files(
    channel: Channel, subdir: str, records: list[PackageRecord], services: Core
) -> Iterable[str] | None:
    """Hide files of a channel subdir from what it serves (policy filters).

    Called whenever the subdir's repodata is materialised, outside any transaction. Hidden files
    are left out of repodata.json, .zst, shards and run_exports.json, and downloads of them
    answer 404 like a missing file. The files stay stored.

    :param channel: the channel.
    :param subdir: the subdir being built.
    :param records: every record of the subdir.
    :param services: the shared services (a policy plugin reads its own tables through it).
    :return: file names to hide. All results are combined (union).
    """


@hookspec
def repoproxy_package_added(services: Core, channel: Channel, record: PackageRecord,
                            path: Path) -> None:
    """Event: a package file entered a channel.

    Called after the catalog transaction committed and the repodata was rebuilt. A failing
    implementation is logged with its plugin's name and does not stop the others.

    :param services: the shared services.
    :param channel: the channel.
    :param record: the new catalog record.
    :param path: where the stored file is (read only).
    """


@hookspec
def repoproxy_packages_added(services: Core, channel: Channel, records: list[PackageRecord],
                             paths: list[Path]) -> None:
    """Event: files entered a channel in one publish (one for an upload, thousands for a bulk
    import), called once before their ``repoproxy_package_added`` events.

    For a plugin whose per-file work has a per-call cost (a write transaction): it does it
    once for all. A failing implementation is logged and does not stop the others.

    :param services: the shared services.
    :param channel: the channel.
    :param records: the new catalog records.
    :param paths: where the stored files are (read only), in the order of ``records``.
    """


@hookspec
def repoproxy_package_removed(services: Core, channel: Channel,
                              record: PackageRecord) -> None:
    """Event: a package file left a channel.

    Called after the catalog transaction committed and the file was removed; failures are
    logged and isolated as for ``repoproxy_package_added``.

    :param services: the shared services.
    :param channel: the channel.
    :param record: the record that was removed.
    """


@hookspec
def repoproxy_channel_created(services: Core, channel: Channel) -> None:
    """Event: a channel was created.

    Called after the catalog transaction committed and the channel's empty noarch index was
    written, by every way a channel is created (API, ``repoproxy import --create``, the watch
    folder). A failing implementation is logged with its plugin's name and does not stop the
    others.

    :param services: the shared services.
    :param channel: the new channel.
    """


@hookspec
def repoproxy_channel_removed(services: Core, channel: Channel) -> None:
    """Event: a channel was removed, with its files, catalog rows, members and token grants.

    Called after the catalog transaction committed and the channel's files were deleted.
    ``repoproxy_package_removed`` is not called for its files: a plugin removes everything it
    keeps for the channel here, so that a channel created later under the same name starts
    empty. Failures are logged and isolated.

    :param services: the shared services.
    :param channel: the channel as it was before removal.
    """


@hookspec
def repoproxy_repodata_written(services: Core, channel: Channel, subdir: str,
                               path: Path) -> None:
    """Event: a subdir's repodata files were rewritten.

    Called after repodata.json, .zst, shards and run_exports.json of the subdir were replaced
    atomically; a plugin may write side files into the subdir (atomically). Failures are logged
    and isolated.

    :param services: the shared services.
    :param channel: the channel.
    :param subdir: the subdir.
    :param path: the subdir directory.
    """


@hookspec
def repoproxy_package_extra(request: Request, channel: Channel,
                            record: PackageRecord) -> dict[str, Any] | None:
    """Add fields to a package file's JSON in the API (SBOM link, badge URLs, ...).

    Called for each file the API shows, after the caller's read access was checked.

    :param request: the current request.
    :param channel: the channel.
    :param record: the file's record.
    :return: a dict merged into the file's JSON, or None. All results are merged in order.
    """



@hookspec
def repoproxy_file_served(request: Request, channel: Channel, subdir: str, filename: str) -> None:
    """Observe a package file download (GET of a ``.conda`` / ``.tar.bz2`` file).

    Called on the hot path, inside the request, after access was checked and before the bytes
    are sent; only for package files, never for repodata, shards or HEAD requests. Keep it
    cheap: no catalog query, no I/O; buffer and write elsewhere (see repoproxy_stats).
    Exceptions are logged and ignored: a download never fails because of an observer.

    :param request: the current request (``request.identity`` tells who downloads).
    :param channel: the channel.
    :param subdir: the subdir.
    :param filename: the package file name.
    :return: nothing. All implementations are called.
    """


@hookspec
def repoproxy_channel_extra(request: Request, channel: Channel) -> dict[str, Any] | None:
    """Add fields to a channel's details in the API (``GET /api/v1/channels/<name>``).

    Called after the caller's read access to the channel was checked, once per request.

    :param request: the current request.
    :param channel: the channel shown.
    :return: a dict merged into the channel's JSON (e.g. download totals), or None. All results
        are merged in order.
    """


@hookspec
def repoproxy_channel_page_sections(request: Request, channel: Channel
                                    ) -> Iterable[PageSection] | None:
    """Add sections to a channel's web page (``/ui/channels/<name>/``), e.g. its mirrors.

    Called once per page view, after the caller's read access to the channel was checked.
    Show only what that caller may see (``request.has_permission`` tells who manages).

    :param request: the current request.
    :param channel: the channel shown.
    :return: :class:`~repoproxy.models.PageSection` values, or None. The sections of every
        implementation are shown in hook-call order, after the core's.
    """


@hookspec(firstresult=True)
def repoproxy_channel_file(request: Request, channel: Channel, subdir: str,
                           filename: str) -> Any:
    """Answer a conda-facing GET/HEAD of a channel file instead of the core (a proxy channel).

    Called on the hot path by the channel file and shard views, after the caller's read access
    was checked and the subdir name validated, before the core looks at its own tree. Keep the
    "not mine" answer cheap (no catalog query). Stops at the first non-None result.

    :param request: the current request.
    :param channel: the channel.
    :param subdir: the subdir.
    :param filename: the file name in the subdir; shards are ``shards/<sha256>.msgpack.zst``.
    :return: a response, or None to let the core serve its own file.
    """


@hookspec
def repoproxy_channel_file_claims(services: Core) -> Callable[[str], bool] | None:
    """Tell which channels' files this plugin's ``repoproxy_channel_file`` may answer.

    Called once when the WSGI app is built. The server answers the common conda requests
    (indexes and shards a caller may read) without the Pyramid application (``web/lean.py``)
    and asks each predicate, for every such request, whether to hand it to the application,
    where ``repoproxy_channel_file`` then runs. A plugin that implements
    ``repoproxy_channel_file`` without this hook sends every conda request through the
    application.

    The predicate is asked once per channel and access generation, and its answer kept until
    the generation moves: a plugin whose answer changes calls ``services.access_changed()``
    after the change (every process then asks again on its next request).

    :param services: the shared services.
    :return: ``claims(channel_name) -> bool``; None when this plugin answers no channel's
        files.
    """


@hookspec
def repoproxy_channel_file_lean(services: Core
                                ) -> Callable[[str, str, str], LeanFile | None] | None:
    """Let the server answer some files of the channels this plugin claims itself.

    A request for a claimed channel's index file or shard goes to the application, where
    ``repoproxy_channel_file`` answers it. When exactly one plugin claims the channel and
    that plugin implements this hook, the server asks its function first, after the caller's
    read access was decided and the subdir name validated, for every such request: a
    :class:`~repoproxy.models.LeanFile` names a file the plugin would answer with
    ``web/files.file_response`` (with the channel's cache policy, immutable for a shard, and
    nothing added), which the server then answers itself (200, HEAD or 304) and calls its
    ``answered``; None hands the request to the application as before. Keep it cheap (no
    catalog query): it runs for every such request.

    Called once when the WSGI app is built (again when plugins are registered or
    unregistered).

    :param services: the shared services.
    :return: ``lean(channel_name, subdir, filename) -> LeanFile | None``, ``filename`` as
        ``repoproxy_channel_file`` gets it (shards are ``shards/<sha256>.msgpack.zst``); None
        when the plugin answers nothing in front of the application.
    """


@hookspec
def repoproxy_request_observers(services: Core) -> Iterable[Callable[[str, int, float], None]]:
    """Contribute callables told of every HTTP request once it is answered (metrics).

    Called once when the WSGI app is built. Each callable is then called for every request,
    refusals and errors included, on the request's thread, after the answer is decided and
    before its body is sent: ``observe(route_name, status, seconds)``, with the matched
    route's name (``"none"`` when no route matched: never the raw path) and the time the
    application took. Keep it cheap (no I/O): it runs for every request. An exception in it
    is logged with the plugin's name and does not change the answer.

    :param services: the shared services.
    :return: an iterable of callables. All results are used.
    """


@hookspec
def repoproxy_removed_files(services: Core, channel: Channel, subdir: str) -> Iterable[str] | None:
    """Name files a subdir's repodata.json lists under ``removed`` (CEP-15 style).

    Called while the subdir's repodata is materialised, outside any transaction. A mirror
    carries its upstream's ``removed`` list this way.

    :param services: the shared services.
    :param channel: the channel.
    :param subdir: the subdir being built.
    :return: file names. All results are combined (union, sorted).
    """

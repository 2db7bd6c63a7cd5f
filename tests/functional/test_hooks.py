"""One real test per hook (``test_hook_<name>``), plus the plugin manager's own behaviour.

Plugins get into the real plugin manager in one of two ways, the same ways users have: as
``*.py`` files in the site plugins directory (``repoproxy.plugins.dir``), which is needed for
hooks called while services are opened, or with ``services.pm.register(obj)`` before the hook
is first called.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zstandard
from click.testing import CliRunner
from pyramid.authorization import Allow, Deny, Everyone
from webtest import TestApp

import repoproxy
from repoproxy import hookimpl
from repoproxy.domain.core import Core, load_core
from repoproxy.domain.permissions import Permissions
from repoproxy.errors import ConfigError, CredentialsInvalid
from repoproxy.models import Identity, Rejection
from repoproxy.plugins import describe_plugins
from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package
from repoproxy.web.app import make_app

TOKENAUTH = "repoproxy.builtin.tokenauth"
PACKAGE_SUFFIXES = (".conda", ".tar.bz2")


# --- helpers ---------------------------------------------------------------------------------
class SitePlugins:
    """A site plugins directory; writes plugin modules into it."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.names: list[str] = []

    def write(self, name: str, source: str, **constants: Any) -> Path:
        """Write ``<name>.py``; ``constants`` become module-level names ahead of ``source``."""
        header = "".join(f"{key} = {value!r}\n" for key, value in constants.items())
        path = self.dir / f"{name}.py"
        path.write_text(header + textwrap.dedent(source))
        self.names.append(name)
        return path


@pytest.fixture
def site_plugins(tmp_path: Path) -> Iterator[SitePlugins]:
    directory = tmp_path / "site-plugins"
    directory.mkdir()
    plugins = SitePlugins(directory)
    yield plugins
    for name in plugins.names:  # the loader imports them under their own names
        sys.modules.pop(name, None)


@pytest.fixture
def open_services(root: Path, site_plugins: SitePlugins) -> Iterator[Callable[..., Core]]:
    """Open services on ``root`` with the site plugins directory, like ``repoproxy serve``."""
    opened: list[Core] = []

    def _open(
        settings: dict[str, Any] | None = None, env: dict[str, str] | None = None
    ) -> Core:
        raw = {
            "repoproxy.root": str(root),
            "repoproxy.log_requests": "false",
            "repoproxy.plugins.dir": str(site_plugins.dir),
            **(settings or {}),
        }
        svc = load_core(raw, env or {})
        opened.append(svc)
        return svc

    yield _open
    for svc in opened:
        svc.close()


def _unzst(data: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(data)


def _package(
    pkgdir: Path, name: str, version: str = "1.0", subdir: str = "noarch", fmt: str = "conda"
) -> Path:
    return build_package(PackageSpec(name, version, subdir=subdir), pkgdir, fmt)


def _package_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*") if p.name.endswith(PACKAGE_SUFFIXES))


def _tmp_files(root: Path) -> list[Path]:
    return [p for p in (root / "tmp").rglob("*") if p.is_file()]


class EventRecorder:
    """Records the event hooks with what they were given and what was true at that moment."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @hookimpl
    def repoproxy_package_added(self, services: Any, channel: Any, record: Any, path: Path) -> None:
        repodata = json.loads((path.parent / "repodata.json").read_bytes())
        self.calls.append(
            {
                "hook": "added",
                "services": services,
                "channel": channel.name,
                "record": record,
                "path": path,
                "exists": path.exists(),
                "in_repodata": record.filename in repodata["packages.conda"],
            }
        )

    @hookimpl
    def repoproxy_package_removed(self, services: Any, channel: Any, record: Any) -> None:
        path = services.store.package_path(channel.name, record.subdir, record.filename)
        repodata = json.loads((path.parent / "repodata.json").read_bytes())
        self.calls.append(
            {
                "hook": "removed",
                "services": services,
                "channel": channel.name,
                "record": record,
                "exists": path.exists(),
                "in_repodata": record.filename in repodata["packages.conda"],
            }
        )

    @hookimpl
    def repoproxy_repodata_written(
        self, services: Any, channel: Any, subdir: str, path: Path
    ) -> None:
        repodata = json.loads((path / "repodata.json").read_bytes())
        self.calls.append(
            {
                "hook": "written",
                "services": services,
                "channel": channel.name,
                "subdir": subdir,
                "path": path,
                "files": sorted(repodata["packages.conda"]),
            }
        )

    def of(self, hook: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["hook"] == hook]


class BatchRecorder(EventRecorder):
    """:class:`EventRecorder` that also records ``repoproxy_packages_added``."""

    @hookimpl
    def repoproxy_packages_added(self, services: Any, channel: Any, records: list[Any],
                                 paths: list[Path]) -> None:
        repodata = json.loads((paths[0].parent / "repodata.json").read_bytes())
        self.calls.append(
            {
                "hook": "batch",
                "services": services,
                "channel": channel.name,
                "records": records,
                "paths": paths,
                "exist": [p.exists() for p in paths],
                "in_repodata": [r.filename in repodata["packages.conda"] for r in records],
            }
        )


class BrokenEvents:
    @hookimpl
    def repoproxy_package_added(self) -> None:
        raise RuntimeError("boom in added")

    @hookimpl
    def repoproxy_package_removed(self) -> None:
        raise RuntimeError("boom in removed")

    @hookimpl
    def repoproxy_repodata_written(self) -> None:
        raise RuntimeError("boom in written")


# --- start-up hooks --------------------------------------------------------------------------
def test_hook_addhooks(site_plugins: SitePlugins, open_services: Callable[..., Core]) -> None:
    # the implementation sorts (and so loads) before the plugin that declares its hookspec
    site_plugins.write(
        "repoproxy_a_greeter",
        """
        from repoproxy import hookimpl

        @hookimpl
        def repoproxy_hooktest_greeting(name):
            return f"hello {name}"
    """,
    )
    site_plugins.write(
        "repoproxy_b_specs",
        """
        from repoproxy import hookimpl
        from repoproxy.hookspecs import hookspec

        class Specs:
            @hookspec
            def repoproxy_hooktest_greeting(self, name):
                '''A greeting for name.'''

        @hookimpl
        def repoproxy_addhooks(pluginmanager):
            pluginmanager.add_hookspecs(Specs)
    """,
    )
    svc = open_services()  # check_pending() would refuse an implementation of an unknown hook
    assert svc.pm.hook.repoproxy_hooktest_greeting(name="conda") == ["hello conda"]
    assert svc.pm.hook.repoproxy_hooktest_greeting.spec is not None

    class LateSpecs:
        @repoproxy.hookspecs.hookspec
        def repoproxy_hooktest_late(self) -> None:
            """Added by a plugin registered after start-up."""

    class Late:
        @hookimpl
        def repoproxy_addhooks(self, pluginmanager: Any) -> None:
            pluginmanager.add_hookspecs(LateSpecs)

    svc.pm.register(Late(), name="repoproxy_late")  # historic: called at registration
    assert svc.pm.hook.repoproxy_hooktest_late.spec is not None


def test_hook_settings_defaults(
    site_plugins: SitePlugins,
    open_services: Callable[..., Core],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site_plugins.write(
        "repoproxy_hooktest",
        """
        from pathlib import Path
        from repoproxy import hookimpl

        @hookimpl
        def repoproxy_settings_defaults():
            return {
                "repoproxy_hooktest.limit": 5,
                "repoproxy_hooktest.enabled": False,
                "repoproxy_hooktest.ratio": 0.5,
                "repoproxy_hooktest.channels": (),
                "repoproxy_hooktest.spool": Path("spool"),
                "repoproxy_hooktest.greeting": "hi",
                "repoproxy_hooktest.untouched": 3,
            }
    """,
    )
    env = {
        "REPOPROXY_HOOKTEST__LIMIT": "42",
        "REPOPROXY_HOOKTEST__ENABLED": "yes",
        "REPOPROXY_HOOKTEST__RATIO": "0.25",
        "REPOPROXY_HOOKTEST__CHANNELS": "main, dev  extra",
        "REPOPROXY_HOOKTEST__SPOOL": str(tmp_path / "spool"),
        "REPOPROXY_HOOKTEST__NOPE": "1",
    }
    given = {"repoproxy_hooktest.limit": "7", "repoproxy_hooktest.greeting": "hello"}
    with caplog.at_level(logging.WARNING, logger="repoproxy.settings"):
        settings = open_services(given, env).settings
    assert settings["repoproxy_hooktest.limit"] == 42  # the environment wins over the ini
    assert settings["repoproxy_hooktest.enabled"] is True
    assert settings["repoproxy_hooktest.ratio"] == 0.25
    assert settings["repoproxy_hooktest.channels"] == ("main", "dev", "extra")
    assert settings["repoproxy_hooktest.spool"] == tmp_path / "spool"
    assert isinstance(settings["repoproxy_hooktest.spool"], Path)
    assert settings["repoproxy_hooktest.greeting"] == "hello"
    assert settings["repoproxy_hooktest.untouched"] == 3
    assert "unknown environment setting REPOPROXY_HOOKTEST__NOPE ignored" in caplog.text

    with pytest.raises(ConfigError, match=r"repoproxy_hooktest\.limit"):
        open_services(env={"REPOPROXY_HOOKTEST__LIMIT": "many"})


def test_hook_configure(services: Core) -> None:
    class Routes:
        @hookimpl
        def repoproxy_configure(self, config: Any) -> None:
            assert config.registry.services is services
            config.add_route("hooktest.hello", "/-/hooktest")
            config.add_view(
                lambda request: {"root": str(request.services.settings.root)},
                route_name="hooktest.hello",
                renderer="json",
            )
            # three segments, like /{channel}/{subdir}/{filename}: reserved words never
            # match a channel, so the plugin's route is reached
            config.add_route("hooktest.item", "/api/hooktest/{item}")
            config.add_view(
                lambda request: {"item": request.matchdict["item"]},
                route_name="hooktest.item",
                renderer="json",
            )
            # a plugin route on a core pattern: the core's route was added first and wins
            config.add_route("hooktest.shadow", "/-/health")
            config.add_view(
                lambda request: {"shadowed": True}, route_name="hooktest.shadow", renderer="json"
            )

    services.pm.register(Routes(), name="repoproxy_routes")
    testapp = TestApp(make_app(services))
    assert testapp.get("/-/hooktest").json == {"root": str(services.settings.root)}
    assert testapp.get("/api/hooktest/conda").json == {"item": "conda"}
    assert testapp.get("/-/health").json["status"] == "ok"


def test_hook_register_commands(site_plugins: SitePlugins, monkeypatch: pytest.MonkeyPatch) -> None:
    from repoproxy import cli as cli_module

    site_plugins.write(
        "repoproxy_hooktest_cli",
        """
        import click
        from repoproxy import hookimpl

        @click.command("hooktest-hello")
        @click.argument("who")
        def hello(who):
            '''Say hello from a plugin.'''
            click.echo(f"hello {who} from a plugin")

        @hookimpl
        def repoproxy_register_commands(cli):
            cli.add_command(hello)
    """,
    )
    monkeypatch.setenv("REPOPROXY_PLUGINS__DIR", str(site_plugins.dir))
    try:
        cli = cli_module.build_cli()
        runner = CliRunner()
        result = runner.invoke(cli, ["hooktest-hello", "conda"])
        assert result.exit_code == 0, result.output
        assert result.output == "hello conda from a plugin\n"
        listing = runner.invoke(cli, ["--help"])
        assert "hooktest-hello" in listing.output
        assert "Say hello from a plugin." in listing.output
    finally:
        cli_module.cli.commands.pop("hooktest-hello", None)  # the group is module-level


def test_broken_plugin_leaves_the_core_commands_usable(
    site_plugins: SitePlugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    from repoproxy import cli as cli_module

    site_plugins.write("repoproxy_hooktest_broken", "raise RuntimeError('broken on import')\n")
    monkeypatch.setenv("REPOPROXY_PLUGINS__DIR", str(site_plugins.dir))
    cli = cli_module.build_cli()
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert repoproxy.__version__ in result.output


def test_hook_migrations(site_plugins: SitePlugins, open_services: Callable[..., Core]) -> None:
    site_plugins.write(
        "repoproxy_hooktest",
        """
        from sqlite_utils import Migrations
        from repoproxy import hookimpl

        migrations = Migrations("repoproxy_hooktest")

        @migrations()
        def m001_notes(db):
            db.table("repoproxy_hooktest_notes").create({"id": int, "text": str}, pk="id")

        @migrations()
        def m002_author(db):
            db.table("repoproxy_hooktest_notes").add_column("author", str)

        @hookimpl
        def repoproxy_migrations():
            return migrations
    """,
    )
    svc = open_services()
    db = svc.db()
    assert db.table("repoproxy_hooktest_notes").columns_dict == {
        "id": int,
        "text": str,
        "author": str,
    }
    db.table("repoproxy_hooktest_notes").insert({"id": 1, "text": "kept", "author": "me"})
    svc.close()

    again = open_services()  # each migration runs once: m001 would fail on an existing table
    rows = list(again.db().table("repoproxy_hooktest_notes").rows)
    assert rows == [{"id": 1, "text": "kept", "author": "me"}]
    applied = [
        r["name"]
        for r in again.db()
        .table("_sqlite_migrations")
        .rows_where("migration_set = ?", ["repoproxy_hooktest"], order_by="rowid")
    ]
    assert applied == ["m001_notes", "m002_author"]
    assert again.db().table("channels").exists()  # the core's own set is untouched


def test_hook_background_workers(
    site_plugins: SitePlugins, server_factory: Any, tmp_path: Path
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    site_plugins.write(
        "repoproxy_hooktest_workers",
        """
        from pathlib import Path
        from repoproxy import hookimpl

        class Worker:
            def __init__(self, services):
                self.services = services

            def start(self):
                (Path(MARKERS) / "started").write_text(str(self.services.settings.root))

            def stop(self):
                (Path(MARKERS) / "stopped").write_text("stopped")

        class CannotStart:
            def start(self):
                raise RuntimeError("this worker cannot start")

            def stop(self):
                (Path(MARKERS) / "stopped-without-start").write_text("wrong")

        @hookimpl
        def repoproxy_background_workers(services):
            return [CannotStart(), Worker(services)]
    """,
        MARKERS=str(markers),
    )
    root = tmp_path / "server-root"
    server = server_factory(root, REPOPROXY_PLUGINS__DIR=str(site_plugins.dir))
    deadline = time.monotonic() + 30
    while not (markers / "started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (markers / "started").read_text() == str(root.resolve())
    assert not (markers / "stopped").exists()
    # a worker that failed to start does not stop the server
    with urllib.request.urlopen(f"{server.url}/-/health", timeout=10) as response:
        assert json.load(response)["status"] == "ok"

    assert server.stop() == 0  # SIGTERM
    assert (markers / "stopped").read_text() == "stopped"
    assert not (markers / "stopped-without-start").exists()
    log = server.log_path.read_text()
    assert "background worker" in log
    assert "failed to start" in log
    assert "this worker cannot start" in log


# --- requests and security -------------------------------------------------------------------
PROXY_SECRET = "proxy-shared-secret"


class ProxyAuth:
    """A trusted reverse proxy: it authenticates users itself, then passes the user name in
    ``X-Test-User`` together with a shared secret as ``X-API-Key``."""

    @hookimpl
    def repoproxy_identify(self, request: Any, credentials: Any) -> Identity | None:
        if credentials.source != "api-key" or credentials.token != PROXY_SECRET:
            return None  # not mine: the built-in backends may know these credentials
        user = request.headers.get("X-Test-User")
        if not user:
            raise CredentialsInvalid("the proxy named no user")
        if user == "mallory":
            raise CredentialsInvalid("mallory is locked out")
        return Identity(name=user, kind="proxy", role="admin" if user == "root" else "user")


def _proxied(user: str | None) -> dict[str, str]:
    return {"X-API-Key": PROXY_SECRET, **({"X-Test-User": user} if user else {})}


def test_hook_identify(services: Core, testapp: Any, admin_headers: dict[str, str]) -> None:
    services.pm.register(ProxyAuth(), name="repoproxy_proxyauth")
    body = {"name": "byproxy", "privacy": "public"}

    created = testapp.post_json("/api/v1/channels", body, headers=_proxied("root"), status=201)
    assert created.json["name"] == "byproxy"

    # "mine but invalid" is a 401, even for what anonymous callers may do
    refused = testapp.post_json(
        "/api/v1/channels", dict(body, name="locked"), headers=_proxied("mallory"), status=401
    )
    assert refused.json == {"error": "invalid-credentials", "message": "mallory is locked out"}
    assert "WWW-Authenticate" in refused.headers
    testapp.get("/byproxy/noarch/repodata.json", headers=_proxied("mallory"), status=401)
    testapp.get("/byproxy/noarch/repodata.json", headers=_proxied(None), status=401)

    # an identified non-admin may not create channels
    forbidden = testapp.post_json(
        "/api/v1/channels", dict(body, name="bob"), headers=_proxied("bob"), status=403
    )
    assert forbidden.json["error"] == "forbidden"
    # credentials the plugin does not claim go on to the built-in token backend
    testapp.post_json(
        "/api/v1/channels", dict(body, name="bytoken"), headers=admin_headers, status=201
    )
    # credentials no backend claims are refused
    testapp.get(
        "/byproxy/noarch/repodata.json",
        headers={"Authorization": "Bearer not-a-known-token"},
        status=401,
    )
    # without credentials no backend is asked: the header alone proves nothing
    anonymous = testapp.post_json(
        "/api/v1/channels", dict(body, name="anon"), headers={"X-Test-User": "root"}, status=401
    )
    assert anonymous.json["error"] == "authentication-required"
    names = {c["name"] for c in testapp.get("/api/v1/channels").json["channels"]}
    assert names == {"byproxy", "bytoken"}


class ChannelPolicy:
    @hookimpl
    def repoproxy_acl_entries(self, request: Any, context: Any) -> list[tuple[str, str, Any]]:
        if context.channel.name == "embargo":
            return [(Deny, Everyone, Permissions.CHANNEL_READ)]
        if context.channel.name == "internal":
            return [(Allow, "role:user", (Permissions.CHANNEL_READ,))]
        return []


def test_hook_acl_entries(
    services: Core, testapp: Any, make_channel: Any, admin_headers: dict[str, str]
) -> None:
    make_channel("open")
    make_channel("embargo")
    make_channel("internal", privacy="private")
    services.pm.register(ChannelPolicy(), name="repoproxy_channelpolicy")
    reader = {"Authorization": "Bearer " + make_token(services, "reader", channels=["open"])}

    testapp.get("/open/noarch/repodata.json", status=200)
    # a Deny entry takes read away from a public channel: it answers like a missing one
    testapp.get("/embargo/noarch/repodata.json", status=401)
    testapp.get("/embargo/noarch/repodata.json", headers=reader, status=404)
    # Deny entries come before the core's "admins may do everything"
    testapp.get("/embargo/noarch/repodata.json", headers=admin_headers, status=404)
    listed = {c["name"] for c in testapp.get("/api/v1/channels").json["channels"]}
    assert listed == {"open"}

    # an Allow entry grants read on a private channel to every identified user
    testapp.get("/internal/noarch/repodata.json", status=401)
    testapp.get("/internal/noarch/repodata.json", headers=reader, status=200)
    listed = {c["name"] for c in testapp.get("/api/v1/channels", headers=reader).json["channels"]}
    assert listed == {"open", "internal"}


# --- ingest and repodata ----------------------------------------------------------------------
class NamePolicy:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bool, bytes]] = []

    @hookimpl
    def repoproxy_validate_package(
        self, channel: Any, metadata: Any, path: Path
    ) -> Rejection | None:
        self.seen.append(
            (channel.name, metadata.index["name"], path.exists(), path.read_bytes()[:2])
        )
        if metadata.index["name"].startswith("bad"):
            return Rejection("repoproxy_namepolicy", "names must not start with 'bad'")
        return None


class VersionPolicy:
    @hookimpl
    def repoproxy_validate_package(self, metadata: Any) -> list[Rejection]:
        if metadata.index["version"] == "0.0":
            return [
                Rejection("repoproxy_versionpolicy", "version 0.0 is a placeholder"),
                Rejection("repoproxy_versionpolicy", "and placeholders are not shipped"),
            ]
        return []


def test_hook_validate_package(
    services: Core,
    testapp: Any,
    make_channel: Any,
    admin_headers: dict[str, str],
    pkgdir: Path,
    root: Path,
) -> None:
    make_channel("guarded")
    names, versions = NamePolicy(), VersionPolicy()
    services.pm.register(names, name="repoproxy_namepolicy")
    services.pm.register(versions, name="repoproxy_versionpolicy")
    noarch = root / "channels" / "guarded" / "noarch"
    before = {n: (noarch / n).read_bytes() for n in ("repodata.json", "repodata.json.zst")}

    bad = _package(pkgdir, "badpkg", "0.0")
    refused = upload_raw(testapp, "guarded", bad, admin_headers, status=422)
    assert refused.json["error"] == "rejected"
    assert sorted(refused.json["reasons"]) == [
        "repoproxy_namepolicy: names must not start with 'bad'",
        "repoproxy_versionpolicy: and placeholders are not shipped",
        "repoproxy_versionpolicy: version 0.0 is a placeholder",
    ]
    # the plugin read the temporary copy of the bytes (a .conda is a zip)
    assert names.seen == [("guarded", "badpkg", True, b"PK")]
    # nothing is stored: no package file, no temporary file, no catalog row, same repodata
    assert _package_files(root / "channels") == []
    assert _tmp_files(root) == []
    assert testapp.get("/api/v1/channels/guarded/files").json["files"] == []
    assert {n: (noarch / n).read_bytes() for n in before} == before
    testapp.get(f"/guarded/noarch/{bad.name}", status=404)

    # one plugin alone refusing is enough; a package both accept gets in
    upload_raw(testapp, "guarded", _package(pkgdir, "badname", "1.0"), admin_headers, status=422)
    good = _package(pkgdir, "goodpkg", "1.0", fmt="tar.bz2")
    upload_raw(testapp, "guarded", good, admin_headers, status=201)
    assert _package_files(root / "channels") == [good.name]
    assert list(testapp.get("/guarded/noarch/repodata.json").json["packages"]) == [good.name]


class HideByName:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, list[str]]] = []

    @hookimpl
    def repoproxy_excluded_files(self, channel: Any, subdir: str, records: list[Any]) -> Any:
        self.seen.append((channel.name, subdir, sorted(r.filename for r in records)))
        return (r.filename for r in records if r.name == "hidden")


class HideNothing:
    @hookimpl
    def repoproxy_excluded_files(self) -> None:
        return None


def test_hook_excluded_files(
    services: Core,
    testapp: Any,
    make_channel: Any,
    admin_headers: dict[str, str],
    pkgdir: Path,
    root: Path,
) -> None:
    make_channel("filtered")
    policy = HideByName()
    services.pm.register(policy, name="repoproxy_hidebyname")
    services.pm.register(HideNothing(), name="repoproxy_hidenothing")
    shown = _package(pkgdir, "shown")
    hidden = _package(pkgdir, "hidden")
    upload_raw(testapp, "filtered", shown, admin_headers)
    upload_raw(testapp, "filtered", hidden, admin_headers)

    assert policy.seen[-1] == ("filtered", "noarch", sorted([shown.name, hidden.name]))
    repodata = testapp.get("/filtered/noarch/repodata.json").json
    assert list(repodata["packages.conda"]) == [shown.name]
    zst = json.loads(_unzst(testapp.get("/filtered/noarch/repodata.json.zst").body))
    assert list(zst["packages.conda"]) == [shown.name]
    index = msgpack.unpackb(
        _unzst(testapp.get("/filtered/noarch/repodata_shards.msgpack.zst").body)
    )
    assert list(index["shards"]) == ["shown"]
    shard = msgpack.unpackb(
        _unzst(
            testapp.get(
                f"/filtered/noarch/shards/{index['shards']['shown'].hex()}.msgpack.zst"
            ).body
        )
    )
    assert list(shard["packages.conda"]) == [shown.name]
    run_exports = testapp.get("/filtered/noarch/run_exports.json").json
    assert list(run_exports["packages.conda"]) == [shown.name]
    assert list(testapp.get("/filtered/channeldata.json").json["packages"]) == ["shown"]

    # a download of the hidden file answers 404 like a missing file, for admins too
    testapp.get(f"/filtered/noarch/{shown.name}", status=200)
    for headers in ({}, admin_headers):
        assert (
            testapp.get(f"/filtered/noarch/{hidden.name}", headers=headers, status=404).json[
                "error"
            ]
            == "not-found"
        )
        testapp.head(f"/filtered/noarch/{hidden.name}", headers=headers, status=404)
    # the file stays stored and catalogued
    assert (root / "channels" / "filtered" / "noarch" / hidden.name).read_bytes() == (
        hidden.read_bytes()
    )
    assert sorted(r.filename for r in services.catalog().packages("filtered")) == sorted(
        [shown.name, hidden.name])
    # ... but no read API shows it, to admins neither (the read model)
    files = testapp.get("/api/v1/channels/filtered/files", headers=admin_headers).json["files"]
    assert [f["filename"] for f in files] == [shown.name]


def test_hook_package_added(
    services: Core,
    testapp: Any,
    make_channel: Any,
    admin_headers: dict[str, str],
    pkgdir: Path,
    root: Path,
) -> None:
    make_channel("events")
    recorder = EventRecorder()
    services.pm.register(recorder, name="repoproxy_recorder")
    path = _package(pkgdir, "added")
    upload_raw(testapp, "events", path, admin_headers)

    (call,) = recorder.of("added")
    assert call["services"] is services
    assert call["channel"] == "events"
    assert call["record"].filename == path.name
    assert call["record"].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert call["record"].uploader == "token:admin"
    assert call["path"] == (root / "channels" / "events" / "noarch" / path.name).resolve()
    # called after commit and after the repodata was rebuilt
    assert call["exists"] is True
    assert call["in_repodata"] is True


def test_hook_packages_added(
    services: Core, make_channel: Any, pkgdir: Path, root: Path
) -> None:
    from repoproxy.domain.packages import import_files

    make_channel("events")
    recorder = BatchRecorder()
    services.pm.register(recorder, name="repoproxy_recorder")
    paths = [_package(pkgdir, f"batch{i}") for i in range(3)]
    import_files(services, "events", [(p, None) for p in paths], workers=1)

    (call,) = recorder.of("batch")  # one call for the whole import
    assert call["services"] is services
    assert call["channel"] == "events"
    assert sorted(r.filename for r in call["records"]) == sorted(p.name for p in paths)
    stored = root / "channels" / "events" / "noarch"
    assert call["paths"] == [(stored / r.filename).resolve() for r in call["records"]]
    # after commit and after the indexes were rebuilt, and before the per-file events
    assert call["exist"] == [True] * 3
    assert call["in_repodata"] == [True] * 3
    events = [c["hook"] for c in recorder.calls if c["hook"] != "written"]
    assert events == ["batch", "added", "added", "added"]


def test_hook_package_removed(
    services: Core, testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path
) -> None:
    make_channel("events")
    path = _package(pkgdir, "removed")
    upload_raw(testapp, "events", path, admin_headers)
    recorder = EventRecorder()
    services.pm.register(recorder, name="repoproxy_recorder")

    testapp.delete(f"/api/v1/delete/events/noarch/{path.name}", headers=admin_headers)
    (call,) = recorder.of("removed")
    assert call["services"] is services
    assert call["channel"] == "events"
    assert call["record"].filename == path.name
    assert call["record"].name == "removed"
    # called after the file was removed and the repodata rebuilt
    assert call["exists"] is False
    assert call["in_repodata"] is False
    assert not recorder.of("added")


class ChannelRecorder:
    """Records the channel events with what was committed and on disk at that moment."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def _record(self, hook: str, services: Any, channel: Any) -> None:
        from repoproxy.storage.accounts import Accounts

        self.calls.append({
            "hook": hook, "services": services, "channel": channel,
            "in_catalog": services.catalog().get_channel(channel.name) is not None,
            "noarch_index": (services.store.subdir_dir(channel.name, "noarch")
                             / "repodata.json").exists(),
            "audited": [e["action"] for e in Accounts(services.db()).audit_entries(
                channel=channel.name)],
        })

    @hookimpl
    def repoproxy_channel_created(self, services: Any, channel: Any) -> None:
        self._record("created", services, channel)

    @hookimpl
    def repoproxy_channel_removed(self, services: Any, channel: Any) -> None:
        self._record("removed", services, channel)


def test_hook_channel_created(services: Core, testapp: Any, make_channel: Any,
                              admin_headers: dict[str, str], tmp_path: Path) -> None:
    from repoproxy.domain.channels import create_channel

    recorder = ChannelRecorder()
    services.pm.register(recorder, name="repoproxy_channel_recorder")
    make_channel("born", privacy="private", description="d")
    (call,) = recorder.calls
    assert call["hook"] == "created"
    assert call["services"] is services
    assert (call["channel"].name, str(call["channel"].privacy)) == ("born", "private")
    # after commit (with its audit row) and after the empty noarch index was written
    assert call["in_catalog"]
    assert call["noarch_index"]
    assert call["audited"] == ["channel.create"]
    # a refused creation fires nothing
    testapp.post_json("/api/v1/channels", {"name": "born"}, headers=admin_headers, status=409)
    assert len(recorder.calls) == 1
    # the CLI path (import --create) runs the same operation, hence the same event
    create_channel(services, "born-cli")
    assert [c["channel"].name for c in recorder.calls] == ["born", "born-cli"]


def test_hook_channel_removed(services: Core, testapp: Any, make_channel: Any,
                              admin_headers: dict[str, str], pkgdir: Path) -> None:
    make_channel("doomed")
    upload_raw(testapp, "doomed", _package(pkgdir, "gone"), admin_headers)
    recorder = EventRecorder()
    channels = ChannelRecorder()
    services.pm.register(recorder, name="repoproxy_recorder")
    services.pm.register(channels, name="repoproxy_channel_recorder")
    testapp.delete("/api/v1/channels/doomed", headers=admin_headers)
    (call,) = channels.calls
    assert call["hook"] == "removed"
    assert call["services"] is services
    assert call["channel"].name == "doomed"
    # after commit and after the files went
    assert not call["in_catalog"]
    assert not call["noarch_index"]
    assert not services.store.channel_dir("doomed").exists()
    assert call["audited"][-1] == "channel.delete"
    # the files are not announced one by one
    assert not recorder.of("removed")
    # removing it again is a 404 and fires nothing
    testapp.delete("/api/v1/channels/doomed", headers=admin_headers, status=404)
    assert len(channels.calls) == 1


def test_hook_repodata_written(
    services: Core,
    testapp: Any,
    make_channel: Any,
    admin_headers: dict[str, str],
    pkgdir: Path,
    root: Path,
) -> None:
    recorder = EventRecorder()
    services.pm.register(recorder, name="repoproxy_recorder")
    make_channel("events")  # a new channel materialises its empty noarch index
    channel_dir = (root / "channels" / "events").resolve()
    assert [(c["channel"], c["subdir"], c["path"], c["files"]) for c in recorder.calls] == [
        ("events", "noarch", channel_dir / "noarch", [])
    ]
    assert recorder.calls[0]["services"] is services

    linux = _package(pkgdir, "native", subdir="linux-64")
    upload_raw(testapp, "events", linux, admin_headers)
    last = recorder.of("written")[-1]
    assert (last["subdir"], last["path"], last["files"]) == (
        "linux-64",
        channel_dir / "linux-64",
        [linux.name],
    )

    # an up-to-date subdir is not rebuilt, so there is no event
    count = len(recorder.of("written"))
    testapp.get("/events/linux-64/repodata.json")
    assert services.indexer.build("events", "linux-64") is False
    assert len(recorder.of("written")) == count
    services.indexer.build("events", "linux-64", force=True)
    assert len(recorder.of("written")) == count + 1


def test_failing_event_plugin_is_logged_and_does_not_stop_the_others(
    services: Core,
    testapp: Any,
    make_channel: Any,
    admin_headers: dict[str, str],
    pkgdir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = EventRecorder()
    services.pm.register(recorder, name="repoproxy_recorder")
    # registered last, so it is called first
    services.pm.register(BrokenEvents(), name="repoproxy_broken")
    make_channel("events")
    path = _package(pkgdir, "isolated")
    upload_raw(testapp, "events", path, admin_headers, status=201)
    testapp.delete(f"/api/v1/delete/events/noarch/{path.name}", headers=admin_headers, status=200)

    assert [c["hook"] for c in recorder.calls] == [
        "written",
        "written",
        "added",
        "written",
        "removed",
    ]
    failures = [r for r in caplog.records if r.name == "repoproxy.plugins"]
    assert {r.getMessage() for r in failures} == {
        "plugin repoproxy_broken failed in repoproxy_package_added",
        "plugin repoproxy_broken failed in repoproxy_package_removed",
        "plugin repoproxy_broken failed in repoproxy_repodata_written",
    }
    assert all(r.exc_info and "boom" in str(r.exc_info[1]) for r in failures)


class Extras:
    def __init__(self, key: str, value: str) -> None:
        self.key, self.value = key, value
        self.calls: list[tuple[str, str]] = []

    @hookimpl
    def repoproxy_package_extra(
        self, request: Any, channel: Any, record: Any
    ) -> dict[str, Any] | None:
        self.calls.append((channel.name, record.filename))
        if record.name == "plain":
            return None
        return {
            self.key: f"{request.application_url}/-/{self.value}/{record.sha256}",
            "hooktest_shared": self.value,
        }


def test_hook_package_extra(
    services: Core, testapp: Any, make_channel: Any, admin_headers: dict[str, str], pkgdir: Path
) -> None:
    make_channel("extras")
    make_channel("closed", privacy="private")
    first, second = Extras("hooktest_sbom", "sbom"), Extras("hooktest_badge", "badge")
    services.pm.register(first, name="repoproxy_first")
    services.pm.register(second, name="repoproxy_second")
    fancy, plain = _package(pkgdir, "fancy"), _package(pkgdir, "plain")
    for path in (fancy, plain):
        upload_raw(testapp, "extras", path, admin_headers)
        upload_raw(testapp, "closed", path, admin_headers)

    files = {f["filename"]: f for f in testapp.get("/api/v1/channels/extras/files").json["files"]}
    sha = files[fancy.name]["sha256"]
    assert files[fancy.name]["hooktest_sbom"] == f"http://localhost/-/sbom/{sha}"
    assert files[fancy.name]["hooktest_badge"] == f"http://localhost/-/badge/{sha}"
    # merged in call order: the plugin registered first is called last and has the last word
    assert files[fancy.name]["hooktest_shared"] == "sbom"
    assert files[fancy.name]["name"] == "fancy"
    assert {"hooktest_sbom", "hooktest_badge", "hooktest_shared"}.isdisjoint(files[plain.name])
    assert (
        sorted(first.calls)
        == sorted(second.calls)
        == sorted([("extras", fancy.name), ("extras", plain.name)])
    )

    # called only after read access was checked
    testapp.get("/api/v1/channels/closed/files", status=401)
    assert len(first.calls) == 2
    closed = testapp.get("/api/v1/channels/closed/files", headers=admin_headers).json
    assert all("hooktest_sbom" in f for f in closed["files"] if f["name"] == "fancy")


class DownloadObserver:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str]] = []

    @hookimpl
    def repoproxy_file_served(self, request: Any, channel: Any, subdir: str, filename: str) -> None:
        self.seen.append((channel.name, subdir, filename, request.identity.name))


class BrokenObserver:
    @hookimpl
    def repoproxy_file_served(self) -> None:
        raise RuntimeError("observer down")


def test_hook_file_served(
    services: Core,
    testapp: Any,
    make_channel: Any,
    admin_headers: dict[str, str],
    pkgdir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_channel("dl")
    path = _package(pkgdir, "served")
    upload_raw(testapp, "dl", path, admin_headers)
    observer = DownloadObserver()
    services.pm.register(observer, name="repoproxy_observer")

    assert testapp.get(f"/dl/noarch/{path.name}").body == path.read_bytes()
    testapp.get(f"/dl/noarch/{path.name}", headers=admin_headers)
    assert observer.seen == [
        ("dl", "noarch", path.name, "anonymous"),
        ("dl", "noarch", path.name, "token:admin"),
    ]
    # only GETs of package files that exist are observed
    testapp.head(f"/dl/noarch/{path.name}")
    testapp.get("/dl/noarch/repodata.json")
    testapp.get("/dl/noarch/repodata_shards.msgpack.zst")
    testapp.get("/dl/noarch/missing-1.0-0.conda", status=404)
    testapp.get(f"/dl/noarch/{path.name}.attestation.json", status=404)
    assert len(observer.seen) == 2

    # a failing observer is logged and fails no download (it is registered last: called first)
    services.pm.register(BrokenObserver(), name="repoproxy_brokenobserver")
    assert testapp.get(f"/dl/noarch/{path.name}").body == path.read_bytes()
    assert "observer down" in caplog.text


# --- the plugin manager ---------------------------------------------------------------------
def test_block_list_skips_site_plugins_but_never_the_essential_ones(
    site_plugins: SitePlugins,
    open_services: Callable[..., Core],
) -> None:
    for name in ("repoproxy_blocked", "repoproxy_kept"):
        site_plugins.write(
            name,
            """
            from repoproxy import hookimpl

            @hookimpl
            def repoproxy_package_extra(record):
                return {"by": __name__}
        """,
        )
    svc = open_services(env={"REPOPROXY_PLUGINS__BLOCK": f"repoproxy_blocked, {TOKENAUTH}"})
    names = {p["name"] for p in describe_plugins(svc.pm)}
    assert "repoproxy_kept" in names
    assert "repoproxy_blocked" not in names
    assert "repoproxy_blocked" not in sys.modules  # never even imported
    assert svc.pm.is_blocked("repoproxy_blocked")
    assert svc.pm.register(object(), name="repoproxy_blocked") is None
    # the token backend cannot be blocked: tokens still work
    assert TOKENAUTH in names
    testapp = TestApp(make_app(svc))
    token = make_token(svc, "admin", admin=True)
    testapp.post_json(
        "/api/v1/channels",
        {"name": "stillsafe"},
        headers={"Authorization": f"Bearer {token}"},
        status=201,
    )


def test_allow_list_keeps_only_the_allowed_and_essential_plugins(
    site_plugins: SitePlugins,
    open_services: Callable[..., Core],
) -> None:
    for name in ("repoproxy_allowed", "repoproxy_other"):
        site_plugins.write(
            name,
            """
            from repoproxy import hookimpl

            @hookimpl
            def repoproxy_package_extra(record):
                return None
        """,
        )
    svc = open_services({"repoproxy.plugins.allow": "repoproxy_allowed"})
    assert {p["name"] for p in describe_plugins(svc.pm)} == {"repoproxy_allowed", TOKENAUTH}
    assert len(svc.pm.hook.repoproxy_package_extra.get_hookimpls()) == 1


def test_plugins_endpoint_lists_name_version_and_hooks(
    site_plugins: SitePlugins,
    open_services: Callable[..., Core],
    monkeypatch: pytest.MonkeyPatch,
    root: Path,
) -> None:
    site_plugins.write(
        "repoproxy_hooktest",
        """
        from repoproxy import hookimpl

        __version__ = "1.2.3"

        @hookimpl
        def repoproxy_validate_package(channel):
            return None

        @hookimpl
        def repoproxy_package_extra(record):
            return None
    """,
    )
    svc = open_services()
    plugins = TestApp(make_app(svc)).get("/-/plugins").json["plugins"]
    by_name = {p["name"]: p for p in plugins}
    assert [p["name"] for p in plugins] == sorted(by_name)
    assert by_name["repoproxy_hooktest"] == {
        "name": "repoproxy_hooktest",
        "version": "1.2.3",
        "hooks": ["repoproxy_package_extra", "repoproxy_validate_package"],
    }
    assert by_name[TOKENAUTH] == {
        "name": TOKENAUTH,
        "version": repoproxy.__version__,
        "hooks": ["repoproxy_identify"],
    }
    svc.close()

    # the CLI prints the same list
    from repoproxy.cli import build_cli

    monkeypatch.setenv("REPOPROXY_PLUGINS__DIR", str(site_plugins.dir))
    result = CliRunner().invoke(build_cli(), ["plugins", "--root", str(root)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == plugins


def test_trace_hooks_logs_hook_calls(
    monkeypatch: pytest.MonkeyPatch,
    open_services: Callable[..., Core],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="repoproxy.hooks")
    open_services().close()
    assert not [r for r in caplog.records if r.name == "repoproxy.hooks"]

    monkeypatch.setenv("REPOPROXY_TRACE_HOOKS", "1")
    svc = open_services()
    testapp = TestApp(make_app(svc))
    token = make_token(svc, "admin", admin=True)
    testapp.post_json(
        "/api/v1/channels",
        {"name": "traced"},
        headers={"Authorization": f"Bearer {token}"},
        status=201,
    )
    traced = "\n".join(r.getMessage() for r in caplog.records if r.name == "repoproxy.hooks")
    for hook in (
        "repoproxy_settings_defaults",
        "repoproxy_migrations",
        "repoproxy_configure",
        "repoproxy_identify",
    ):
        assert f"finish {hook}: " in traced
    # every backend is named, in call order
    (line,) = re.findall(
        r"^call repoproxy_identify\(request, credentials\) on (.*)$", traced, re.MULTILINE
    )
    assert TOKENAUTH in line.split(", ")
    assert "finish repoproxy_identify: Identity" in traced
    assert token not in traced  # credentials are traced, their secrets are not


class ChannelExtras:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def repoproxy_channel_extra(self, request: Any, channel: Any) -> dict[str, Any]:
        self.calls.append(channel.name)
        return {"hooktest_owner_team": f"team-{channel.name}"}


def test_hook_channel_extra(services: Core, testapp: Any, make_channel: Any,
                            admin_headers: dict[str, str]) -> None:
    plugin = ChannelExtras()
    services.pm.register(plugin, name="repoproxy_channel_extras")
    make_channel("shown")
    make_channel("hidden", privacy="private")
    assert plugin.calls == ["shown", "hidden"]  # the creation answer shows the details too
    plugin.calls.clear()
    body = testapp.get("/api/v1/channels/shown").json
    assert body["hooktest_owner_team"] == "team-shown"
    assert body["name"] == "shown"
    # the stats plugin's contribution: the channel's download total
    assert body["downloads"] == 0
    # never called for a channel the caller may not read
    testapp.get("/api/v1/channels/hidden", status=401)
    assert plugin.calls == ["shown"]


class PageSections:
    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl
    def repoproxy_channel_page_sections(self, request: Any, channel: Any) -> Any:
        from repoproxy.models import PageSection

        self.calls.append(channel.name)
        return [PageSection(id="contacts", title="Contacts", columns=("Team", "Mail"),
                            rows=(("<b>Packaging</b>", f"pkg@{channel.name}.example"),)),
                PageSection(id="notes", title="Notes", empty="No notes yet.")]


def test_hook_channel_page_sections(services: Core, testapp: Any, make_channel: Any) -> None:
    from bs4 import BeautifulSoup

    plugin = PageSections()
    services.pm.register(plugin, name="repoproxy_page_sections")
    make_channel("shown")
    make_channel("hidden", privacy="private")
    page = BeautifulSoup(testapp.get("/ui/channels/shown/", headers={"Accept": "text/html"})
                         .text, "html.parser")
    contacts, notes = page.find(id="contacts"), page.find(id="notes")
    assert contacts is not None
    assert notes is not None
    assert contacts.find("h2").get_text() == "Contacts"
    assert [th.get_text() for th in contacts.find_all("th")] == ["Team", "Mail"]
    # cells are text: markup from a plugin is escaped, never rendered
    assert [td.get_text() for td in contacts.find_all("td")] == [
        "<b>Packaging</b>", "pkg@shown.example"]
    assert contacts.find("b") is None
    assert notes.find("table") is None
    assert "No notes yet." in notes.get_text()
    # never called for a channel the caller may not read
    # (anonymous: sent to sign in, exactly like for an absent channel)
    hidden = testapp.get("/ui/channels/hidden/", headers={"Accept": "text/html"}, status=303)
    assert hidden.location.endswith("/ui/login?next=%2Fui%2Fchannels%2Fhidden%2F")
    assert plugin.calls == ["shown"]


# --- serving processes (repoproxy serve --workers N) ----------------------------------------
PROCESS_PLUGIN = """
    import os
    from pathlib import Path
    from repoproxy import hookimpl

    class Marker:
        def __init__(self, kind):
            self.kind = kind

        def start(self):
            (Path(MARKERS) / f"{self.kind}-{os.getpid()}").write_text("")

        def stop(self):
            (Path(MARKERS) / f"stopped-{self.kind}-{os.getpid()}").write_text("")

    @hookimpl
    def repoproxy_process_workers(services):
        return [Marker("process")]

    @hookimpl
    def repoproxy_background_workers(services):
        return [Marker("background")]

    @hookimpl
    def repoproxy_serve_processes(services, workers):
        (Path(MARKERS) / f"serve-{workers}-{os.getpid()}").write_text("")

    @hookimpl
    def repoproxy_worker_exited(services, pid):
        (Path(MARKERS) / f"exited-{pid}").write_text("")
"""


def _markers(directory: Path, kind: str) -> set[int]:
    return {int(p.name.rsplit("-", 1)[1]) for p in directory.glob(f"{kind}-*")}


def _until(predicate: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def two_workers(site_plugins: SitePlugins, server_factory: Any,
                tmp_path: Path) -> tuple[Any, Path]:
    markers = tmp_path / "markers"
    markers.mkdir()
    site_plugins.write("repoproxy_hooktest_processes", PROCESS_PLUGIN, MARKERS=str(markers))
    server = server_factory(tmp_path / "server-root", workers=2,
                            REPOPROXY_PLUGINS__DIR=str(site_plugins.dir))
    _until(lambda: len(_markers(markers, "process")) == 2)
    return server, markers


def test_hook_process_workers(two_workers: tuple[Any, Path]) -> None:
    server, markers = two_workers
    processes = _markers(markers, "process")
    # every serving process runs its process workers; one more process, which serves
    # nothing, the background workers
    _until(lambda: len(_markers(markers, "background")) == 1)
    assert not _markers(markers, "background") & processes
    assert server.proc.pid not in processes | _markers(markers, "background")
    assert len(_markers(markers, "process")) == 2
    assert server.stop() == 0
    assert _markers(markers, "stopped-process") == processes
    assert _markers(markers, "stopped-background") == _markers(markers, "background")


def test_hook_serve_processes(two_workers: tuple[Any, Path]) -> None:
    server, markers = two_workers
    # once, in the supervisor, with the number of processes
    assert [p.name for p in markers.glob("serve-*")] == [f"serve-2-{server.proc.pid}"]


def test_hook_worker_exited(two_workers: tuple[Any, Path]) -> None:
    import os
    import signal

    server, markers = two_workers
    (background,) = _until(lambda: _markers(markers, "background"))
    os.kill(background, signal.SIGKILL)
    _until(lambda: _markers(markers, "exited") == {background})
    # the replacement takes the background work over
    _until(lambda: len(_markers(markers, "background")) == 2)
    (victim,) = sorted(_markers(markers, "process"))[:1]
    os.kill(victim, signal.SIGKILL)
    _until(lambda: _markers(markers, "exited") == {background, victim})
    _until(lambda: len(_markers(markers, "process")) == 3)  # a serving one replaced too
    alive = (_markers(markers, "process") | _markers(markers, "background")) - {
        background, victim}
    assert server.stop() == 0
    assert _markers(markers, "exited") == alive | {background, victim}


class TimingRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []

    @hookimpl
    def repoproxy_operation_timed(self, services: Any, operation: str, channel: str,
                                  seconds: float) -> None:
        self.calls.append((operation, channel, seconds))


def test_hook_operation_timed(services: Core, testapp: Any, make_channel: Any,
                              admin_headers: dict[str, str], pkgdir: Path) -> None:
    recorder = TimingRecorder()
    services.pm.register(recorder, name="repoproxy_timing_recorder")
    make_channel("timed")  # its empty noarch index is built
    assert [(op, ch) for op, ch, _ in recorder.calls] == [("index_build", "timed")]
    recorder.calls.clear()
    upload_raw(testapp, "timed", _package(pkgdir, "clocked"), admin_headers)
    assert sorted((op, ch) for op, ch, _ in recorder.calls) == [
        ("index_build", "timed"), ("ingest", "timed")]
    ingest = next(s for op, _, s in recorder.calls if op == "ingest")
    build = next(s for op, _, s in recorder.calls if op == "index_build")
    assert ingest >= build > 0  # the ingest includes its index build

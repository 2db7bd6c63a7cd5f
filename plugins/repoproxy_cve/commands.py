"""``repoproxy cve import PATH``, ``repoproxy cve status ID STATUS`` and seed 002's
``repoproxy cves --list | --show ID | --show-files ID``: offline on the server root, or through
the API with ``--url`` (or ``REPOPROXY_URL``) when neither ``--root`` nor ``-c`` is given."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from repoproxy.cli.common import config_option, open_services, root_option
from repoproxy.errors import RepoproxyError


def api_options(func: Any) -> Any:
    func = click.option("--token", "auth", envvar="REPOPROXY_TOKEN", default=None,
                        help="Your token (API mode).")(func)
    return click.option("--url", envvar="REPOPROXY_URL", default=None,
                        help="Server URL: work through the API instead of on the root.")(func)


def _api(url: str | None, auth: str | None, root: Path | None, config: Path | None,
         method: str, path: str, **kwargs: Any) -> bool:
    """Call the API and print its answer, if this is API mode (--url without --root/-c)."""
    if url is None or root is not None or config is not None:
        return False
    from repoproxy.cli.http import Client

    try:
        click.echo(json.dumps(Client(url, auth).request(method, path, **kwargs), indent=2))
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None
    return True


def _run(root: Path | None, config: Path | None, func: Any) -> None:
    services = open_services(root, config)
    try:
        click.echo(json.dumps(func(services), indent=2))
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None
    finally:
        services.close()


@click.group()
def cve() -> None:
    """CVE data: import files, set curation status."""


@cve.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@api_options
@root_option
@config_option
def cve_import(path: Path, url: str | None, auth: str | None, root: Path | None,
               config: Path | None) -> None:
    """Import OSV JSON records (a directory or zip) or a curated file; re-apply policies."""
    from .plugin import import_path

    if url is not None and root is None and config is None:
        if path.is_dir():
            raise click.ClickException("through the API, give one JSON file or a zip")
        with open(path, "rb") as f:
            _api(url, auth, root, config, "POST", "/api/v1/cves/import", data=f,
                 headers={"Content-Type": "application/octet-stream"})
        return

    _run(root, config, lambda s: import_path(s, path))


@cve.command("status")
@click.argument("cve_id")
@click.argument("status", type=click.Choice(["active", "reported", "mitigated", "cleared",
                                             "disputed", "uncurated"]))
@api_options
@root_option
@config_option
def cve_status(cve_id: str, status: str, url: str | None, auth: str | None,
               root: Path | None, config: Path | None) -> None:
    """Set a CVE's curation status (uncurated clears it)."""
    from .plugin import set_status

    if _api(url, auth, root, config, "PATCH", f"/api/v1/cves/{cve_id}",
            json={"status": status}):
        return

    _run(root, config, lambda s: set_status(s, cve_id, None if status == "uncurated"
                                            else status))


@click.command("cves")
@click.option("--list", "do_list", is_flag=True, help="List CVEs.")
@click.option("--show", "show_id", default=None, metavar="CVE_ID", help="Details of a CVE.")
@click.option("--show-files", "files_id", default=None, metavar="CVE_ID",
              help="Files a CVE affects.")
@api_options
@root_option
@config_option
def cves(do_list: bool, show_id: str | None, files_id: str | None, url: str | None,
         auth: str | None, root: Path | None, config: Path | None) -> None:
    """List CVEs, show one, or list the files one affects."""
    from .plugin import affected_files, cve_store, summary

    if sum(map(bool, (do_list, show_id, files_id))) != 1:
        raise click.ClickException("give exactly one of --list, --show, --show-files")
    path = ("/api/v1/cves" if do_list else f"/api/v1/cves/{show_id}" if show_id
            else f"/api/v1/cves/{files_id}/files")
    if _api(url, auth, root, config, "GET", path):
        return
    if do_list:
        _run(root, config, lambda s: [summary(s, c) for c in cve_store(s).all()])
    elif show_id:
        _run(root, config, lambda s: cve_store(s).get(show_id))
    else:
        _run(root, config, lambda s: affected_files(s, str(files_id)))

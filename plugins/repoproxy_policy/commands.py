"""``repoproxy policy``: seed 002's policy command, offline on the server root or through the
API.

Like ``repoproxy token create``, it opens the root (``--root``/``-c``) itself unless ``--url``
(or ``REPOPROXY_URL``) names a server: the catalog is the source of truth and the subdir
rebuilds it triggers take the same file locks as the server's, so it is safe while
``repoproxy serve`` runs. With ``--url`` it calls ``/api/v1/policies`` (admins) with the same
body, so both ways give the same answers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from repoproxy.cli.common import config_option, open_services, root_option
from repoproxy.errors import RepoproxyError

from .model import BOOL_FILTERS, FILTERS

_HELP = {
    "platform": "Include platforms, comma-separated (noarch always stays).",
    "platform_not": "Exclude platforms, comma-separated.",
    "license": "Include license families, comma-separated (docs/policies.md).",
    "license_not": "Exclude license families, comma-separated.",
    "package_name": "Include only these package names, comma-separated.",
    "exclude_package_name": "Exclude package names, comma-separated.",
    "exclude_package_name_exception": "Remove exclusions for these names, comma-separated.",
    "include_dependencies": "Keep what the named packages depend on (MatchSpecs).",
    "exclude_dependencies": "Also hide what excluded packages depend on.",
    "only_signed_packages": "Not supported yet (comes with signing).",
    "keep_legacy_packages": "Keep .tar.bz2 files that have a .conda twin.",
    "package_created_from": "Keep packages created on or after YYYY-MM-DD.",
    "package_created_to": "Keep packages created on or before YYYY-MM-DD.",
    "cve_score": "CVE score threshold (0-10).",
    "cve_score_comparator": "Comparator a CVE's score must satisfy: ==, <=, >=, <, > (<=).",
    "cve_status": "Allowed CVE statuses, comma-separated.",
    "exclude_cve_status": "Refused CVE statuses, comma-separated.",
    "cve_link_status_and_score": "and|or between the CVE status and score tests (and).",
    "cve_allowlist": "CVE ids that never hide a file, comma-separated.",
    "exclude_uncurated_cve_packages": "Hide files with an uncurated CVE.",
}


def _filter_options(func: Any) -> Any:
    for key in reversed(FILTERS):
        flag = "--" + key.replace("_", "-")
        if key in BOOL_FILTERS:
            func = click.option(f"{flag}/--no-{flag[2:]}", key, default=None,
                                help=_HELP[key])(func)
        else:
            func = click.option(flag, key, default=None, help=_HELP[key])(func)
    return func


@click.command("policy")
@click.option("--create", "do_create", is_flag=True, help="Create a policy.")
@click.option("--list-all", "do_list", is_flag=True, help="List every policy.")
@click.option("--show", "show_id", default=None, metavar="POLICY_ID", help="Show a policy.")
@click.option("--edit", "edit_id", default=None, metavar="POLICY_ID",
              help="Edit a policy: a given filter replaces the old value, '' clears it.")
@click.option("--delete", "delete_id", default=None, metavar="POLICY_ID")
@click.option("--assign", "assign_id", default=None, metavar="POLICY_ID")
@click.option("--unassign", "unassign_id", default=None, metavar="POLICY_ID")
@click.option("--channel", default=None, help="Channel for --assign/--unassign.")
@click.option("--explain", nargs=2, default=None, metavar="CHANNEL FILE",
              help="Say which rules hide FILE ([subdir/]filename) in CHANNEL.")
@click.option("--name", default=None, help="Policy name.")
@click.option("--channel-name", default=None, help="Channel to assign the policy to.")
@click.option("--description", default=None)
@_filter_options
@click.option("--url", envvar="REPOPROXY_URL", default=None,
              help="Server URL: work through the API instead of on the root.")
@click.option("--token", "auth", envvar="REPOPROXY_TOKEN", default=None,
              help="Your token (API mode).")
@root_option
@config_option
def policy(do_create: bool, do_list: bool, show_id: str | None, edit_id: str | None,
           delete_id: str | None, assign_id: str | None, unassign_id: str | None,
           channel: str | None, explain: tuple[str, str] | None, name: str | None,
           channel_name: str | None, description: str | None, url: str | None,
           auth: str | None, root: Path | None, config: Path | None, **filters: Any) -> None:
    """Create, list, show, edit, delete, assign and explain channel policies (offline on the
    root, or through the API with --url)."""
    from . import ops
    from .service import policy_store

    modes = [m for m in (do_create, do_list, show_id, edit_id, delete_id, assign_id,
                         unassign_id, explain) if m]
    if len(modes) != 1:
        raise click.ClickException("give exactly one of --create, --list-all, --show, --edit, "
                                   "--delete, --assign, --unassign, --explain")
    given = {k: v for k, v in filters.items() if v is not None}
    body: dict[str, Any] = dict(given)
    for key, value in (("name", name), ("description", description),
                       ("channel_name", channel_name)):
        if value is not None:
            body[key] = value
    if (assign_id or unassign_id) and not channel:
        raise click.ClickException("--assign and --unassign need --channel")
    if url is not None and root is None and config is None:
        click.echo(json.dumps(_through_api(url, auth, body, do_list=do_list, show_id=show_id,
                                           edit_id=edit_id, delete_id=delete_id,
                                           assign_id=assign_id, unassign_id=unassign_id,
                                           channel=channel, explain=explain), indent=2))
        return
    services = open_services(root, config)
    try:
        if do_create:
            out: Any = ops.create(services, body)
        elif do_list:
            out = [p.as_json() for p in policy_store(services).list()]
        elif show_id:
            out = policy_store(services).get(show_id).as_json()
        elif edit_id:
            out = ops.edit(services, edit_id, body)
        elif delete_id:
            out = ops.delete(services, delete_id)
        elif assign_id or unassign_id:
            assert channel is not None
            out = (ops.assign(services, assign_id, channel) if assign_id
                   else ops.unassign(services, str(unassign_id), channel))
        else:
            assert explain is not None
            out = ops.explain(services, explain[0], explain[1])
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None
    finally:
        services.close()
    click.echo(json.dumps(out, indent=2))


def _through_api(url: str, auth: str | None, body: dict[str, Any], *, do_list: bool,
                 show_id: str | None, edit_id: str | None, delete_id: str | None,
                 assign_id: str | None, unassign_id: str | None, channel: str | None,
                 explain: tuple[str, str] | None) -> Any:
    """The same modes over ``/api/v1/policies`` (policy ids are URL path segments)."""
    from urllib.parse import quote

    from repoproxy.cli.http import Client

    client = Client(url, auth)
    base = "/api/v1/policies"
    try:
        if do_list:
            return client.request("GET", base)["policies"]
        if show_id:
            return client.request("GET", f"{base}/{quote(show_id)}")
        if edit_id:
            return client.request("PATCH", f"{base}/{quote(edit_id)}", json=body)
        if delete_id:
            return client.request("DELETE", f"{base}/{quote(delete_id)}")
        if assign_id or unassign_id:
            action, pid = ("assign", assign_id) if assign_id else ("unassign", unassign_id)
            return client.request("POST", f"{base}/{quote(str(pid))}/{action}",
                                  json={"channel": channel})
        if explain:
            return client.request("GET", f"{base}/explain/{quote(explain[0])}/"
                                         f"{quote(explain[1])}")
        return client.request("POST", base, json=body)
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None

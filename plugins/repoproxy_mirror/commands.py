"""``repoproxy mirror``: seed 002's mirror command.

Through a running server (``--url``/``--token`` or ``REPOPROXY_URL``/``REPOPROXY_TOKEN``) by
default, or offline on the server root with ``--root``/``-c`` (then ``--run_now`` runs the
mirror in this process instead of asking the server's worker to).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from repoproxy.cli.common import config_option, open_services, root_option
from repoproxy.errors import RepoproxyError

ACTIONS = ("create", "update", "show", "list", "stop", "restart", "delete")


def _filters(opts: dict[str, Any]) -> dict[str, Any]:
    """Only the options given: on --update, a given option replaces the old value."""
    body: dict[str, Any] = {}
    for key in ("source", "mode", "subdirs", "licenses", "cve_score", "date_from", "date_to",
                "cron", "policy_id"):
        if opts.get(key) is not None:
            body[key] = opts[key]
    if opts.get("mirror_type") is not None:
        body["type"] = opts["mirror_type"]
    for flag, key in (("only_spec", "only_specs"), ("exclude_spec", "exclude_specs"),
                      ("include_spec", "include_specs")):
        if opts.get(flag):
            body[key] = list(opts[flag])
    for key in ("exclude_uncurated_cve_packages", "use_channel_policy",
                "only_spec_dependencies"):
        if opts.get(key) is not None:
            body[key] = opts[key]
    return body


def details(m: dict[str, Any]) -> str:
    """The seed's ``--show`` layout."""
    lines = ["Mirror Details:", "---------------"]
    for label, key in (("id", "id"), ("name", "name"), ("channel", "channel"), ("type", "type"),
                       ("mode", "mode"), ("state", "state"), ("source root", "source"),
                       ("Last run at", "last_run_at"), ("Updated at", "updated"),
                       ("created", "created"), ("cron", "cron"),
                       ("use channel policy", "use_channel_policy"),
                       ("policy id", "policy_id"), ("last error", "last_error")):
        value = m.get(key)
        lines.append(f"{label}: {'' if value is None else value}")
    lines.append("filters:")
    for key, value in m["filters"].items():
        if value not in (None, [], False):
            lines.append(f"    {key:<24} | {value}")
    lines.append("counts:")
    for key, value in sorted((m.get("counts") or {}).items()):
        lines.append(f"    {key:<24} | {value}")
    return "\n".join(lines)


@click.command("mirror")
@click.option("--create", "create", metavar="NAME", help="Create a mirror.")
@click.option("--update", "update", metavar="NAME", help="Change a mirror (with --channel).")
@click.option("--show", "show", metavar="NAME", help="Show a mirror's details and status.")
@click.option("--list", "do_list", is_flag=True, help="List mirrors (of --channel).")
@click.option("--stop", "stop", metavar="NAME", help="Stop a mirror (a run ends early).")
@click.option("--restart", "restart", metavar="NAME", help="Restart a stopped mirror.")
@click.option("--delete", "delete", metavar="NAME", help="Delete a mirror (with --channel).")
@click.option("--channel", default=None, help="The channel the mirror feeds.")
@click.option("--source", default=None, help="URL of the upstream conda channel.")
@click.option("--type", "mirror_type", default=None, help="Mirror type: conda (the only one).")
@click.option("--mode", default=None, type=click.Choice(["active", "passive"]))
@click.option("--run_now", "--run-now", "run_now", is_flag=True, help="Run it now.")
@click.option("--subdirs", default=None, help='Subdirs, e.g. "noarch, linux-64".')
@click.option("--only_spec", "--only-spec", "only_spec", multiple=True,
              help="Keep only packages matching these MatchSpecs (repeatable).")
@click.option("--only_spec_dependencies", "--only-spec-dependencies", "only_spec_dependencies",
              default=None, help="True or False: an active mirror also keeps what the "
              "--only_spec packages need (a solve per subdir).")
@click.option("--exclude_spec", "--exclude-spec", "exclude_spec", multiple=True,
              help="Leave out packages matching these MatchSpecs (repeatable).")
@click.option("--include_spec", "--include-spec", "include_spec", multiple=True,
              help="Keep these although an --exclude_spec matches (repeatable).")
@click.option("--licenses", default=None, help='Licenses, "-" excludes: "mit, -gpl3".')
@click.option("--cve_score", "--cve-score", "cve_score", default=None,
              help="Leave out packages with a CVE scoring above this (the mirror's own policy).")
@click.option("--exclude_uncurated_cve_packages", "--exclude-uncurated-cve-packages",
              "exclude_uncurated_cve_packages", default=None, help="True or False.")
@click.option("--date_from", "--date-from", "date_from", default=None, help="YYYY-MM-DD.")
@click.option("--date_to", "--date-to", "date_to", default=None, help="YYYY-MM-DD.")
@click.option("--cron", default=None, help='Schedule of an active mirror: "0 0 * * *".')
@click.option("--use-channel-policy", "--use_channel_policy", "use_channel_policy",
              default=None, help="True or False.")
@click.option("--policy-id", "--policy_id", "policy_id", default=None)
@click.option("--url", envvar="REPOPROXY_URL", default=None,
              help="Server URL (REPOPROXY_URL; default http://127.0.0.1:8080).")
@click.option("--token", envvar="REPOPROXY_TOKEN", default=None,
              help="API token (REPOPROXY_TOKEN).")
@root_option
@config_option
def mirror(create: str | None, update: str | None, show: str | None, do_list: bool,
           stop: str | None, restart: str | None, delete: str | None, channel: str | None,
           run_now: bool, url: str | None, token: str | None, root: Path | None,
           config: Path | None, **opts: Any) -> None:
    """Create, update, show, list, stop, restart and delete mirrors of upstream channels."""
    chosen = {k: v for k, v in (("create", create), ("update", update), ("show", show),
                                ("list", do_list), ("stop", stop), ("restart", restart),
                                ("delete", delete)) if v}
    if len(chosen) != 1:
        raise click.ClickException("give exactly one of --create, --update, --show, --list, "
                                   "--stop, --restart, --delete")
    action, name = next(iter(chosen.items()))
    if action in ("create", "update", "delete") and not channel:
        raise click.ClickException(f"--{action} needs --channel")
    body = _filters(opts)
    try:
        if root is not None or config is not None:
            out = _offline(root, config, action, name, channel, body, run_now)
        else:
            out = _remote(url, token, action, name, channel, body, run_now)
    except RepoproxyError as e:
        raise click.ClickException(e.message) from None
    if action == "show":
        click.echo(details(out))
    elif action == "list":
        for m in out:
            click.echo(f"{m['name']}\t{m['channel']}\t{m['mode']}\t{m['state']}\t{m['source']}")
    else:
        click.echo(json.dumps(out, indent=2))


def _offline(root: Path | None, config: Path | None, action: str, name: Any,
             channel: str | None, body: dict[str, Any], run_now: bool) -> Any:
    from . import service

    core = open_services(root, config)
    out: Any
    try:
        if action == "create":
            out = service.create(core, name, str(channel), body, run_now=run_now)
        elif action == "update":
            out = service.update(core, name, str(channel), body, run_now=run_now)
        elif action == "show":
            out = service.show(core, name, channel)
        elif action == "list":
            out = service.list_mirrors(core, channel)
        elif action == "stop":
            out = service.stop(core, name)
        elif action == "restart":
            out = service.restart(core, name)
        else:
            out = service.delete(core, name, str(channel))
        if run_now and action in ("create", "update") and out["mode"] == "active":
            from .active import run

            out = run(core, name)
        return out
    finally:
        core.close()


def _remote(url: str | None, token: str | None, action: str, name: Any, channel: str | None,
            body: dict[str, Any], run_now: bool) -> Any:
    from repoproxy.cli.http import Client

    client = Client(url or "http://127.0.0.1:8080", token)
    path = f"/api/v1/mirrors/{name}" if isinstance(name, str) else "/api/v1/mirrors"
    params = {"channel": channel} if channel else {}
    if action == "create":
        return client.request("POST", "/api/v1/mirrors", json={
            "name": name, "channel": channel, "run_now": run_now, **body})
    if action == "update":
        return client.request("PATCH", path, json={"channel": channel, "run_now": run_now,
                                                   **body})
    if action == "show":
        return client.request("GET", path, params=params)
    if action == "list":
        return client.request("GET", "/api/v1/mirrors", params=params)["mirrors"]
    if action == "delete":
        return client.request("DELETE", path, params=params)
    return client.request("POST", f"{path}/{action}")

"""``repoproxy wizard``: configure conda, micromamba/mamba and pixi/rattler for this server's
channels; ``repoproxy wizard --restore`` undoes it.

What it writes, and why that form:

- ``~/.condarc`` (or ``$CONDARC``): ``channels:`` with each channel's full URL. A channel that
  is not public carries the token as ``<server>/t/<token>/<channel>``: conda (every version)
  and micromamba recognise that form and send the token on every request, package downloads
  included; conda hides it when it prints URLs. A ``channel_alias`` with a token would also
  work for conda, but it would make every short channel name (``conda-forge``!) resolve to
  this server, so the wizard does not set one. The file becomes mode 0600 when it holds a token.
- ``~/.mamba/auth/authentication.json``: ``{"host[:port]": {"type": "BearerToken", "token"}}``
  (micromamba/mamba 2.x, longest-prefix match) and the rattler/pixi auth file
  (``$RATTLER_AUTH_FILE``, else ``~/.rattler/credentials.json``):
  ``{"host": {"BearerToken": "..."}}`` (rattler keys by host, without the port). Both only
  when a chosen channel needs a token; other hosts' entries are kept.

Each file it changes is backed up first (``<file>.repoproxy-wizard.bak``); a list of them is
kept beside the config file (``wizard-backup.json``), and ``--restore`` puts each back (or
removes a file the wizard created). A second run keeps the first run's backups, so a restore
always returns to the state before the wizard. It never writes an admin token: those files are
meant for installing, and an admin token there would hand the whole server to anything that
reads them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import click

from repoproxy.cli.client import client_options
from repoproxy.cli.http import Client
from repoproxy.cli.userconfig import config_path, write_private
from repoproxy.errors import RepoproxyError

BACKUP_SUFFIX = ".repoproxy-wizard.bak"


def condarc_path() -> Path:
    return Path(os.environ.get("CONDARC") or Path.home() / ".condarc").expanduser()


def mamba_auth_path() -> Path:
    return Path.home() / ".mamba" / "auth" / "authentication.json"


def rattler_auth_path() -> Path:
    return Path(os.environ.get("RATTLER_AUTH_FILE")
                or Path.home() / ".rattler" / "credentials.json").expanduser()


def manifest_path() -> Path:
    return config_path().parent / "wizard-backup.json"


def _backup(path: Path, manifest: dict[str, str | None]) -> None:
    """Remember how ``path`` was before the wizard first touched it."""
    key = str(path)
    if key in manifest:
        return  # an earlier run's backup is the state to return to
    if path.exists():
        backup = path.with_name(path.name + BACKUP_SUFFIX)
        write_private(backup, path.read_bytes())
        backup.chmod(path.stat().st_mode & 0o777)
        manifest[key] = str(backup)
    else:
        manifest[key] = None


def _load_manifest() -> dict[str, str | None]:
    try:
        data = json.loads(manifest_path().read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        raise click.ClickException(f"{manifest_path()} is damaged") from None
    return {str(k): (str(v) if v else None) for k, v in data.items()}


def _json_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError:
        raise click.ClickException(f"{path} is not valid JSON; fix or move it first") from None
    if not isinstance(data, dict):
        raise click.ClickException(f"{path} is not a JSON object; fix or move it first")
    return data


def _condarc(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return {}
    except yaml.YAMLError:
        raise click.ClickException(f"{path} is not valid YAML; fix or move it first") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise click.ClickException(f"{path} is not a YAML mapping; fix or move it first")
    return data


def restore() -> list[str]:
    """Put every backed-up file back; remove the files the wizard created."""
    manifest = _load_manifest()
    done = []
    for target, backup in manifest.items():
        path = Path(target)
        if backup is None:
            path.unlink(missing_ok=True)
            done.append(f"removed {path}")
        elif Path(backup).exists():
            os.replace(backup, path)
            done.append(f"restored {path}")
    manifest_path().unlink(missing_ok=True)
    return done


def channel_url(base: str, name: str, token: str | None) -> str:
    return f"{base}/t/{token}/{name}" if token else f"{base}/{name}"


@click.command()
@click.option("--channel", "chosen", multiple=True,
              help="A channel to add (repeat); default: asked interactively.")
@click.option("--yes", is_flag=True, help="Do not ask: write the files.")
@click.option("--append", is_flag=True,
              help="Keep the .condarc's existing channels after the chosen ones.")
@click.option("--restore", "do_restore", is_flag=True,
              help="Put back the files the last wizard changed.")
@client_options
def wizard(client: Client, chosen: tuple[str, ...], yes: bool, append: bool,
           do_restore: bool) -> None:
    """Configure conda (.condarc), micromamba and pixi/rattler for this server's channels."""
    if do_restore:
        done = restore()
        click.echo("\n".join(done) if done else "nothing to restore")
        return
    base = client.url
    token = client.token or None
    try:
        me = client.request("GET", "/api/v1/whoami")
        channels = {c["name"]: c for c in client.request("GET", "/api/v1/channels")["channels"]}
    except RepoproxyError as e:
        raise click.ClickException(f"cannot read the server's channels: {e.message}") from None
    if token and me.get("role") == "admin":
        raise click.ClickException(
            "refusing to write an admin token into files meant for installing: create a read "
            "token (repoproxy token create --name NAME --channel C --permission read) and run "
            "the wizard with --token")
    if not channels:
        raise click.ClickException(f"no channel of {base} is readable with these credentials")
    click.echo(f"Channels of {base} you may read:")
    for ch in channels.values():
        click.echo(f"  {ch['name']:<30} {ch['privacy']:<14} {ch.get('description') or ''}")
    if not chosen:
        if yes:
            raise click.UsageError("--yes needs at least one --channel")
        chosen = tuple(str(click.prompt("channels to add (space-separated)")).split())
    picked = []
    for name in chosen:
        if name in channels:
            picked.append(name)
        else:
            click.echo(f"warning: no readable channel {name!r}: not added", err=True)
    if not picked:
        raise click.ClickException("no channel to add")
    for name in picked:  # reachable as a conda channel, with these credentials
        try:
            client.request("HEAD", f"/{name}/noarch/repodata.json")
        except RepoproxyError as e:
            raise click.ClickException(f"channel {name} is not reachable: {e.message}") from None
    needs_token = [n for n in picked if channels[n]["privacy"] != "public"]
    if needs_token and not token:
        raise click.ClickException(f"{', '.join(needs_token)} need a token: log in first "
                                   "(repoproxy login) or give --token")
    _write(base, token, picked, needs_token, append, yes)


def _write(base: str, token: str | None, picked: list[str], needs_token: list[str],
           append: bool, yes: bool) -> None:
    import yaml

    condarc = condarc_path()
    rc = _condarc(condarc)
    urls = [channel_url(base, n, token if n in needs_token else None) for n in picked]
    old = [c for c in (rc.get("channels") or []) if isinstance(c, str)]
    rc["channels"] = urls + [c for c in old if c not in urls] if append else urls
    parts = urlsplit(base)
    host, netloc = parts.hostname or "localhost", parts.netloc.rpartition("@")[2]
    plan = [(condarc, yaml.safe_dump(rc, sort_keys=False).encode())]
    if needs_token:
        assert token is not None
        mamba = _json_file(mamba_auth_path())
        mamba[netloc + parts.path.rstrip("/")] = {"type": "BearerToken", "token": token}
        rattler = _json_file(rattler_auth_path())
        rattler[host] = {"BearerToken": token}
        plan += [(mamba_auth_path(), json.dumps(mamba, indent=2).encode() + b"\n"),
                 (rattler_auth_path(), json.dumps(rattler, indent=2).encode() + b"\n")]
    click.echo("\nThe wizard will write (tokens shown as <TOKEN>):")
    for path, data in plan:
        shown = data.decode().replace(token, "<TOKEN>") if token else data.decode()
        click.echo(f"--- {path}\n{shown}")
    if not yes:
        click.confirm("Write these files? (each is backed up first)", default=True, abort=True)
    manifest = _load_manifest()
    for path, _ in plan:
        _backup(path, manifest)
    write_private(manifest_path(), json.dumps(manifest, indent=2).encode())
    for path, data in plan:
        write_private(path, data)  # 0600: they hold a token, or sit beside files that do
        click.echo(f"wrote {path}")
    click.echo("undo with: repoproxy wizard --restore")

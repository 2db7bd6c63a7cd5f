"""``repoproxy nginx-conf``: print the nginx front's configuration (web/front.py)."""

from __future__ import annotations

from pathlib import Path

import click

from repoproxy.cli.common import config_option, root_option


def _hostport(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{value!r}: expected HOST:PORT")
    return value


@click.command("nginx-conf")
@root_option
@config_option
@click.option("--upstream", "upstreams", multiple=True, required=True,
              help="repoproxy serve HOST:PORT; repeat for several readers (reads are "
                   "balanced over them).")
@click.option("--writer", default=None,
              help="HOST:PORT that takes writes (uploads, API changes); default: the first "
                   "--upstream.")
@click.option("--listen", default="127.0.0.1:8000", show_default=True,
              help="What nginx listens on (nginx's listen syntax, e.g. 0.0.0.0:80).")
@click.option("--user", default=None,
              help="nginx `user` for its workers when started as root (default: the owner "
                   "of the root directory, who can read the tree).")
@click.option("--access-log", default=None, help="nginx access log path (default: off).")
@click.option("--nginx-workers", "worker_processes", default="auto", show_default=True,
              help="nginx worker_processes.")
def nginx_conf(root: Path | None, config: Path | None, upstreams: tuple[str, ...],
               writer: str | None, listen: str, user: str | None, access_log: str | None,
               worker_processes: str) -> None:
    """Print an nginx.conf fronting repoproxy: public index files and shards straight from
    the tree, package bytes by X-Accel-Redirect, everything else proxied.

    Run it with `nginx -p PREFIX -c FILE -e stderr` (PREFIX: any writable directory); start
    repoproxy with repoproxy.accel_redirect set to the internal location it names.
    """
    import grp
    import pwd

    from repoproxy.cli.common import open_services
    from repoproxy.domain.channels import sync_public_view
    from repoproxy.web.front import DEFAULT_ACCEL, FrontConfig, render

    for value in (*upstreams, *([writer] if writer else [])):
        _hostport(value)
    services = open_services(root, config, must_exist=True)
    try:
        settings = services.settings
        tree = services.store.root
        sync_public_view(services)  # the conf serves from public/: have it right now
    finally:
        services.close()
    if user is None:
        st = tree.stat()
        try:
            user = f"{pwd.getpwuid(st.st_uid).pw_name} {grp.getgrgid(st.st_gid).gr_name}"
        except KeyError:  # ids without names (containers): nginx takes names only
            user = None
    cfg = FrontConfig(
        root=tree, listen=listen, readers=list(upstreams), writer=writer,
        accel=settings["repoproxy.accel_redirect"] or DEFAULT_ACCEL,
        index_max_age=settings["repoproxy.index_max_age"],
        max_upload_size=settings["repoproxy.max_upload_size"],
        user=user, access_log=access_log, worker_processes=worker_processes,
    )
    click.echo(render(cfg), nl=False)

"""The ``repoproxy`` command line: one click group; every command imports what it needs
inside its body, so ``repoproxy --help`` loads no web framework and no database."""

from __future__ import annotations

import click

from repoproxy import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="repoproxy")
def cli() -> None:
    """repoproxy: a self-hosted conda package server."""


def build_cli() -> click.Group:
    """The group with the core's commands and every plugin's."""
    from repoproxy.cli import access, client, nginx, server
    from repoproxy.cli import transfers as transfers_cli
    from repoproxy.plugins import get_plugin_manager
    from repoproxy.settings import raw_settings

    for command in (server.serve, server.import_, server.plugins_cmd, nginx.nginx_conf):
        cli.add_command(command)
    client.register(cli)
    access.register(cli)
    transfers_cli.register(cli)
    # issue 15 (client side): artifacts download, login/logout/config, wizard
    from repoproxy.cli import artifacts, login, wizard

    for command in (artifacts.download, login.login, login.logout, login.config_cmd,
                    wizard.wizard):
        cli.add_command(command)
    try:
        pm = get_plugin_manager(raw_settings())
        pm.hook.repoproxy_register_commands(cli=cli)
    except Exception as e:  # a broken plugin must not make the CLI unusable
        click.echo(f"warning: plugins not loaded: {e}", err=True)
    return cli


#: commands that need none of the others, loaded alone when they are what is run: their
#: start-up is part of their cost (a bulk import, a server start), and building the whole
#: group imports every command module
STANDALONE = {"import": "import_", "serve": "serve"}


def main() -> None:
    import sys

    first = sys.argv[1] if len(sys.argv) > 1 else ""
    if first in STANDALONE:
        from repoproxy.cli import server

        command = getattr(server, STANDALONE[first])
        group = click.Group(cli.name, commands={first: command}, help=cli.help,
                            context_settings=cli.context_settings)
        group(prog_name="repoproxy")
        return
    build_cli()(prog_name="repoproxy")

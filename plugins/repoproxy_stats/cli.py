"""``repoproxy report``: the download report, like ``conda repo report``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from repoproxy.cli.client import client_options
from repoproxy.cli.http import Client


@click.command()
@click.option("--date-from", "--date_from", "date_from", required=True, help="YYYY-MM-DD")
@click.option("--date-to", "--date_to", "date_to", required=True, help="YYYY-MM-DD")
@click.option("--file-type", type=click.Choice(["json", "csv"]), default="json",
              show_default=True)
@click.option("--user-names", "--user_names", "user_names", default="",
              help="Comma-separated users or token names.")
@click.option("--channels", default="", help="Comma-separated channels.")
@click.option("--filename", required=True, type=click.Path(path_type=Path),
              help="Report file; the extension is added when missing.")
@client_options
def report(client: Client, date_from: str, date_to: str, file_type: str, user_names: str,
           channels: str, filename: Path) -> None:
    """Download a download-history report (admin): who downloaded what, when."""
    from .views import check_dates, to_csv

    try:
        check_dates(date_from, date_to)
    except Exception as e:
        raise click.ClickException(str(e)) from None
    data = client.request("GET", "/api/v1/reports/downloads", params={
        "date_from": date_from, "date_to": date_to, "user_names": user_names,
        "channels": channels})
    if filename.suffix != f".{file_type}":
        filename = filename.with_name(filename.name + f".{file_type}")
    text = to_csv(data["rows"]) if file_type == "csv" else json.dumps(data, indent=2)
    filename.write_text(text)
    click.echo(f"{len(data['rows'])} rows written to {filename}")

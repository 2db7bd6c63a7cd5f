"""Download totals of a channel (``channel:read`` on its resource) and the admin download
report (JSON or CSV). Files a policy hides are absent from both, as from every read."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from pyramid.config import Configurator
from pyramid.response import Response
from pyramid.view import view_config

from repoproxy.domain.permissions import Permissions
from repoproxy.errors import RepoproxyError
from repoproxy.web.request import Request
from repoproxy.web.resources import ServerResource, channel_factory
from repoproxy.web.routes import CHANNEL_PATH

from .counter import REPORT_COLUMNS, channel_totals, report_rows


class BadReport(RepoproxyError):
    status = 400
    code = "bad-request"


def includeme(config: Configurator) -> None:
    config.add_route("stats.channel", f"/api/channels/{CHANNEL_PATH}/downloads",
                     factory=channel_factory)
    config.add_route("stats.report", "/api/v1/reports/downloads", factory=ServerResource)
    config.scan(".views")


EARLIEST, LATEST = date(1970, 1, 1), date(9000, 12, 31)


def check_dates(date_from: str, date_to: str) -> tuple[date, date]:
    """Parse YYYY-MM-DD dates; at most one year between them (as conda repo report)."""
    try:
        start, end = date.fromisoformat(date_from), date.fromisoformat(date_to)
    except ValueError:
        raise BadReport("dates must be YYYY-MM-DD") from None
    # the one-year limit below is date arithmetic, which overflows past year 9999
    if not EARLIEST <= start <= LATEST or not EARLIEST <= end <= LATEST:
        raise BadReport(f"dates must be between {EARLIEST} and {LATEST}")
    if end < start:
        raise BadReport("date_to is before date_from")
    try:
        limit = start.replace(year=start.year + 1)
    except ValueError:  # 29 February
        limit = start.replace(year=start.year + 1, day=28)
    if end > limit:
        raise BadReport("at most one year is allowed between date_from and date_to")
    return start, end


def split_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


@view_config(route_name="stats.channel", request_method="GET", renderer="json",
             permission=Permissions.CHANNEL_READ)
def channel_downloads(request: Request) -> Any:
    channel = request.context.channel
    return channel_totals(request.services, channel.name,
                          exclude=request.reads.hidden_paths(channel))


@view_config(route_name="stats.report", request_method="GET", renderer="json",
             permission=Permissions.SERVER_ADMIN)
def download_report(request: Request) -> Any:
    get = request.GET
    if not get.get("date_from") or not get.get("date_to"):
        raise BadReport("date_from and date_to are required")
    start, end = check_dates(get["date_from"], get["date_to"])
    rows = report_rows(request.services, start.isoformat(), end.isoformat(),
                       split_list(get.get("user_names")), split_list(get.get("channels")))
    reads = request.reads
    rows = [r for r in rows if r["file"] not in reads.hidden(r["channel"], r["subdir"])]
    if get.get("format", "json") == "csv":
        return Response(to_csv(rows), content_type="text/csv", charset="utf-8")
    return {"date_from": start.isoformat(), "date_to": end.isoformat(), "rows": rows}

"""repoproxy_stats: downloads counted per file, day and identity; buffered; reports."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from repoproxy_stats.counter import FlushWorker, buffer_for

from repoproxy import hookimpl
from repoproxy.testing.fixtures import make_token, upload_raw
from repoproxy.testing.packages import PackageSpec, build_package

TODAY = datetime.now(UTC).date().isoformat()


@pytest.fixture
def files(testapp: Any, make_channel: Any, admin_headers: dict[str, str],
          pkgdir: Path) -> list[Path]:
    make_channel("pub")
    make_channel("secret", privacy="private")
    paths = [build_package(PackageSpec("a", "1.0"), pkgdir, "conda"),
             build_package(PackageSpec("b", "2.0", subdir="linux-64"), pkgdir, "tar.bz2")]
    for p in paths:
        upload_raw(testapp, "pub", p, admin_headers)
        upload_raw(testapp, "secret", p, admin_headers)
    return paths


def _rows(services: Any) -> list[tuple[Any, ...]]:
    return services.db().execute(
        "SELECT day, channel, subdir, filename, who, count FROM stats_downloads "
        "ORDER BY filename, who").fetchall()


def test_hook_file_served(testapp: Any, files: list[Path], services: Any) -> None:
    seen: list[tuple[str, str, str, str]] = []

    class Observer:
        @hookimpl
        def repoproxy_file_served(self, request: Any, channel: Any, subdir: str,
                                  filename: str) -> None:
            seen.append((request.method, channel.name, subdir, filename))

    services.pm.register(Observer(), name="observer")
    testapp.get(f"/pub/noarch/{files[0].name}")
    testapp.head(f"/pub/noarch/{files[0].name}")  # HEAD is not a download
    testapp.get("/pub/noarch/repodata.json")  # nor is an index
    testapp.get("/pub/noarch/nothing-1.0-0.conda", status=404)
    assert seen == [("GET", "pub", "noarch", files[0].name)]


def test_hook_file_served_failure_does_not_break_the_download(
        testapp: Any, files: list[Path], services: Any) -> None:
    class Broken:
        @hookimpl
        def repoproxy_file_served(self) -> None:
            raise RuntimeError("boom")

    services.pm.register(Broken(), name="broken")
    assert testapp.get(f"/pub/noarch/{files[0].name}").body == files[0].read_bytes()


def test_downloads_are_buffered_not_written_on_the_hot_path(
        testapp: Any, files: list[Path], services: Any, admin_token: str) -> None:
    for _ in range(3):
        testapp.get(f"/pub/noarch/{files[0].name}")
    testapp.get(f"/secret/linux-64/{files[1].name}",
                headers={"Authorization": f"Bearer {admin_token}"})
    assert _rows(services) == []
    assert buffer_for(services).pending() == 4
    assert buffer_for(services).flush() == 4
    assert _rows(services) == [
        (TODAY, "pub", "noarch", files[0].name, "anonymous", 3),
        (TODAY, "secret", "linux-64", files[1].name, "token:admin", 1),
    ]


def test_worker_flushes_periodically_and_on_stop(testapp: Any, files: list[Path],
                                                 services: Any) -> None:
    worker = FlushWorker(services, interval=0.1)
    worker.start()
    testapp.get(f"/pub/noarch/{files[0].name}")
    deadline = time.monotonic() + 5
    while not _rows(services) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rows(services)[0][-1] == 1
    worker.stopping.set()
    worker._thread.join()  # type: ignore[union-attr]
    testapp.get(f"/pub/noarch/{files[0].name}")
    assert buffer_for(services).pending() == 1
    worker.stop()
    assert buffer_for(services).pending() == 0
    assert _rows(services)[0][-1] == 2


def test_details_and_channel_totals_show_downloads(testapp: Any, files: list[Path]) -> None:
    for _ in range(2):
        testapp.get(f"/pub/noarch/{files[0].name}")
    testapp.get(f"/pub/linux-64/{files[1].name}")
    assert testapp.get("/api/channels/pub/artifacts/conda/a").json["downloads"] == 2
    f = testapp.get("/api/channels/pub/artifacts/conda/b/files").json["files"][0]
    assert f["downloads"] == 1
    totals = testapp.get("/api/channels/pub/downloads").json
    assert totals["downloads"] == 3
    assert totals["packages"] == {"a": 2, "b": 1}
    testapp.get("/api/channels/secret/downloads", status=401)


def _report(testapp: Any, headers: dict[str, str], status: int = 200, **params: str) -> Any:
    return testapp.get("/api/v1/reports/downloads", params, headers=headers, status=status)


def test_report_rows_filters_and_csv(testapp: Any, files: list[Path], services: Any,
                                     admin_headers: dict[str, str]) -> None:
    reader = make_token(services, "reader", channels=["secret"])
    testapp.get(f"/pub/noarch/{files[0].name}")
    testapp.get(f"/secret/noarch/{files[0].name}", headers={"Authorization": f"Bearer {reader}"})
    body = _report(testapp, admin_headers, date_from=TODAY, date_to=TODAY).json
    assert [(r["who"], r["channel"], r["file"], r["package"], r["version"])
            for r in body["rows"]] == [
        ("anonymous", "pub", files[0].name, "a", "1.0"),
        ("token:reader", "secret", files[0].name, "a", "1.0")]
    only = _report(testapp, admin_headers, date_from=TODAY, date_to=TODAY,
                   user_names="token:reader", channels="secret,other").json["rows"]
    assert len(only) == 1
    text = _report(testapp, admin_headers, date_from=TODAY, date_to=TODAY, format="csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["when"] == TODAY
    assert rows[0]["subdir"] == "noarch"


def test_report_is_admin_only_and_at_most_one_year(testapp: Any, files: list[Path],
                                                   services: Any,
                                                   admin_headers: dict[str, str]) -> None:
    _report(testapp, {}, status=401, date_from=TODAY, date_to=TODAY)
    reader = make_token(services, "reader", channels=["pub"])
    _report(testapp, {"Authorization": f"Bearer {reader}"}, status=403, date_from=TODAY,
            date_to=TODAY)
    ok = _report(testapp, admin_headers, date_from="2024-01-01", date_to="2025-01-01")
    assert ok.json["rows"] == []
    err = _report(testapp, admin_headers, status=400, date_from="2024-01-01",
                  date_to="2025-01-02").json
    assert "one year" in err["message"]
    _report(testapp, admin_headers, status=400, date_from="2024-13-01", date_to="2024-12-01")


def test_cli_report_writes_csv_and_refuses_long_spans(testapp: Any, files: list[Path],
                                                      admin_headers: dict[str, str],
                                                      monkeypatch: Any, tmp_path: Path) -> None:
    from repoproxy.cli import build_cli
    from repoproxy.cli.http import Client

    monkeypatch.setattr(Client, "request", lambda self, m, p, **kw: testapp.get(
        p, params=kw.get("params") or {}, headers=admin_headers).json)
    testapp.get(f"/pub/noarch/{files[0].name}")
    out = tmp_path / "q"
    r = CliRunner().invoke(build_cli(), [
        "report", "--date-from", TODAY, "--date-to", TODAY, "--file-type", "csv",
        "--channels", "pub", "--filename", str(out)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "q.csv").read_text())))
    assert [x["file"] for x in rows] == [files[0].name]
    r = CliRunner().invoke(build_cli(), [
        "report", "--date-from", "2020-01-01", "--date-to", str(date(2021, 6, 1)),
        "--filename", str(out)])
    assert r.exit_code == 1
    assert "one year" in r.output
    r = CliRunner().invoke(build_cli(), [
        "report", "--date_from", TODAY, "--date_to", TODAY, "--file-type", "json",
        "--filename", str(out)])
    assert json.loads((tmp_path / "q.json").read_text())["rows"][0]["count"] == 1

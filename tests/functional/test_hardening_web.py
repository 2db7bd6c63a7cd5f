"""Hardening through the WSGI app: undecodable URLs, log redaction, the early upload check.

The real server's side of these (waitress, a real process's logs) is in
tests/e2e/test_hardening_server.py; here each piece is checked case by case, and the early
check is held to give the answer the application itself gives.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import pytest

from repoproxy.testing.fixtures import make_token
from repoproxy.web.early import EarlyCheck
from repoproxy.web.redact import RedactingFilter, redact

TOKEN = "rp-AbCdEfGhIj-" + "k" * 43
GiB = 1024**3


@pytest.fixture
def settings(root: Any) -> dict[str, Any]:
    """The shared fixture's settings, with the access log on (it is what is checked here)."""
    return {"repoproxy.root": str(root), "repoproxy.log_requests": "true"}


# --- undecodable URLs --------------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "/main/noarch/repodata.json?%ff",  # conda file route
    "/main/noarch/x-1.0-0.conda?a=1&b=%ff",
    "/main/?%fe%ff",
    "/api/v1/channels?%ff",  # API route
    "/api/v1/search?q=%ff",  # search (included like a plugin's routes)
    "/api/v1/channels/main/files?%c3%28",
    f"/t/{TOKEN}/main/noarch/repodata.json?%ff",
    "/%ff/noarch/repodata.json",  # undecodable path
    "/api/v1/channels/%c3%28",
])
def test_undecodable_url_is_400_and_one_log_line(
        make_channel: Callable[..., Any], testapp: Any, caplog: pytest.LogCaptureFixture,
        url: str) -> None:
    make_channel("main")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        response = testapp.get(url, status=400)
    assert response.json["error"] == "bad-request"
    assert "UTF-8" in response.json["message"]
    assert [r.name for r in caplog.records] == ["repoproxy.access"]
    assert " 400 " in caplog.records[0].getMessage()
    assert TOKEN not in caplog.text


def test_undecodable_url_on_upload_and_plugin_routes(
        testapp: Any, admin_headers: dict[str, str], make_channel: Callable[..., Any]) -> None:
    make_channel("main")
    testapp.post("/api/v1/upload/main?force=%ff", b"x", headers=admin_headers, status=400)
    testapp.put("/main/noarch/x-1.0-0.conda?%ff", b"x", headers=admin_headers, status=400)
    testapp.get("/-/plugins?%ff", status=400)
    # well-formed UTF-8 still works
    assert testapp.get("/api/v1/channels?q=%C3%A9").status_int == 200


# --- redaction -------------------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    f"GET /t/{TOKEN}/main/noarch/repodata.json",
    f"GET /T/{TOKEN}/main/x",
    "GET /t/not-a-token-shape/main/x",
    f"GET /t/rp-aaaa-bbbb/t/{TOKEN}/main/x",
    f"GET /main/t/{TOKEN}/noarch/x",
    f"GET /main/noarch/x?token={TOKEN}&a=1",
    "GET /main/noarch/x?a=1&access_token=secret123",
    "GET /main/noarch/x?api_key=secret123",
    "GET /main/noarch/x?a=1%26token%3Dsecret123",
    "GET /main/noarch/x%3FTOKEN=secret123",
    f"headers {{'Authorization': 'Bearer {TOKEN}'}}",
    "headers {'Authorization': 'Basic c2VjcmV0MTIzOnNlY3JldDEyMw=='}",
    "Authorization: token secret123",
    "{'X-Api-Key': 'secret123'}",
    f"plain {TOKEN} in a message",
    "credentials {'username': 'u', 'password': 'secret123'}",
    '{"token": "secret123", "name": "ci"}',
])
def test_redact_every_form(text: str) -> None:
    out = redact(text)
    assert TOKEN not in out
    assert "secret123" not in out
    assert "c2VjcmV0MTIz" not in out
    assert "not-a-token-shape" not in out
    assert "<redacted>" in out


def test_redact_leaves_ordinary_text() -> None:
    text = 'GET /main/noarch/repodata.json?tokens_page=2 200 "rp-1" /api/v1/tokens'
    assert redact(text) == text


def test_redact_leaves_an_access_line_of_a_token_identity() -> None:
    text = '127.0.0.1 "GET /priv/noarch/repodata.json" 304 0.1ms token:ci-reader'
    assert redact(text) == text


def test_filter_redacts_message_args_and_traceback() -> None:
    try:
        raise RuntimeError(f"failed for /t/{TOKEN}/x")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "serving %s",
                                   (f"/t/{TOKEN}/x",), sys.exc_info())
    assert RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert TOKEN not in formatted
    assert "RuntimeError: failed for /t/<redacted>/x" in formatted
    assert "serving /t/<redacted>/x" in formatted


def test_filter_redacts_again_what_changed_after_it_ran() -> None:
    """A handler's filter skips a record the factory already redacted, unless its message,
    traceback or stack text changed since (another filter rewrote it, say)."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "serving %s", (f"/t/{TOKEN}/x",),
                               None)
    redacting = RedactingFilter()
    assert redacting.filter(record)
    assert redacting.filter(record)
    assert record.getMessage() == "serving /t/<redacted>/x"
    record.msg = f"rewritten for {TOKEN}"
    assert redacting.filter(record)
    assert TOKEN not in record.getMessage()
    record.stack_info = f"Stack: /t/{TOKEN}/y"
    assert redacting.filter(record)
    assert TOKEN not in record.stack_info


@pytest.mark.parametrize("created", [0.0, 1_700_000_000.0, 1_700_000_000.999,
                                     1_700_000_001.0005, 1_800_000_059.5])
def test_line_formatter_writes_the_stock_formatters_text(created: float) -> None:
    from repoproxy.cli.common import LineFormatter

    fmt = "%(asctime)s %(levelname)s [%(name)s] %(message)s"
    ours, stock = LineFormatter(fmt), logging.Formatter(fmt)
    for when in (created, created + 0.25, created + 1.0, created):  # cached, then a new second
        record = logging.LogRecord("repoproxy.access", logging.INFO, __file__, 1, "line", None,
                                   None)
        record.created, record.msecs = when, (when - int(when)) * 1000
        assert ours.format(record) == stock.format(record)
        assert ours.formatTime(record, "%H:%M") == stock.formatTime(record, "%H:%M")


# --- the early upload check --------------------------------------------------------------------
def waitress_headers(headers: dict[str, str]) -> dict[str, str]:
    """Header names as waitress's parser keeps them (upper case, ``-`` -> ``_``)."""
    return {k.upper().replace("-", "_"): v for k, v in headers.items()}


def test_early_check_answers_like_the_app(
        services: Any, app: Any, testapp: Any, make_channel: Callable[..., Any],
        admin_headers: dict[str, str]) -> None:
    make_channel("pub")
    make_channel("hidden", privacy="private")
    read = make_token(services, "reader", channels=["pub"], access="read")
    write = make_token(services, "writer", channels=["pub"], access="write")
    check = EarlyCheck(app.registry)
    name = {"X-File-Name": "x-1.0-0.conda", "Content-Type": "application/octet-stream"}
    refused = [
        # method, path, query, headers, status
        ("POST", "/api/v1/upload/pub", "", {}, 401),
        ("POST", "/api/v1/upload/nope", "", {}, 401),
        ("POST", "/api/v1/upload/pub", "", {"Authorization": f"Bearer {TOKEN}"}, 401),
        ("POST", "/api/v1/upload/pub", "", {"Authorization": "Bearer bad token"}, 401),
        ("POST", "/api/v1/upload/pub", "", {"X-API-Key": read}, 403),
        ("POST", f"/t/{read}/api/v1/upload/pub", "", {}, 403),
        # a query token is for GET/HEAD reads only (whatever its scope): 401
        ("POST", "/api/v1/upload/pub", f"token={read}", {}, 401),
        ("POST", "/api/v1/upload/hidden", "", {"Authorization": f"Bearer {write}"}, 404),
        ("POST", "/api/channels/pub/upload/x-1.0-0.conda", "", {}, 401),
        ("PUT", "/pub/noarch/x-1.0-0.conda", "", {"Authorization": f"Bearer {read}"}, 403),
        ("POST", "/api/v1/upload/pub", "", {"Authorization": f"Bearer {write}",
                                             "Content-Length": str(GiB + 65 * 1024)}, 413),
    ]
    for method, path, query, headers, status in refused:
        answer = check(method, path, query, waitress_headers({**name, **headers}))
        assert answer is not None, (method, path, headers)
        assert answer.status == status, (method, path, headers, answer)
        # the application, given the same request with a (small) body, answers the same
        app_headers = {k: v for k, v in {**name, **headers}.items() if k != "Content-Length"}
        url = path + ("?" + query if query else "")
        if "Content-Length" in headers:  # webtest sends the real length; the app checks it
            continue
        got = testapp.request(url, method=method, body=b"x", headers=app_headers,
                              expect_errors=True)
        assert got.status_int == status, (method, path, got.text)
        assert got.json["error"] == answer.code
    passed = [
        ("GET", "/api/v1/upload/pub", "", {}),  # not an upload method
        ("POST", "/api/v1/channels", "", {}),  # not an upload route
        ("PUT", "/pub/noarch/x-1.0-0.conda", "", {"Authorization": f"Bearer {write}"}),
        ("POST", "/api/v1/upload/pub", "", {"Authorization": f"Bearer {write}",
                                             "Content-Length": str(GiB)}),
        ("POST", "/api/v1/upload/pub", "a=%ff", {}),  # the app answers the 400
        ("POST", "/api/v1/upload/pub", "", admin_headers),
    ]
    for method, path, query, headers in passed:
        assert check(method, path, query, waitress_headers({**name, **headers})) is None


@pytest.mark.parametrize("trusted", ["", "10.9.9.9"])
def test_early_check_takes_the_client_address_as_the_app_does(
        settings: dict[str, Any], trusted: str, make_channel: Callable[..., Any]) -> None:
    """Failed logins in the early check count against the peer's address, or (from the
    trusted proxy only) the address the proxy appended: never one the client wrote."""
    import base64

    from repoproxy.domain.core import load_core
    from repoproxy.web.app import make_app

    make_channel("pub")
    services = load_core({**settings, "repoproxy.trusted_proxy": trusted,
                          "repoproxy.auth.max_failures": "0",
                          "repoproxy.auth.max_failures_per_address": "2"}, {})
    try:
        check = EarlyCheck(make_app(services).registry)
        wrong = {"Authorization": "Basic " + base64.b64encode(b"mallory:guess").decode()}

        def upload(peer: str, forwarded: str) -> int:
            headers = waitress_headers({**wrong, "X-Forwarded-For": forwarded})
            answer = check("POST", "/api/v1/upload/pub", "", {**headers, "REMOTE_ADDR": peer})
            assert answer is not None
            return answer.status

        # a client behind the proxy (or the proxy itself, untrusted) writes a new address
        # into every attempt
        assert [upload("10.9.9.9", f"198.51.100.{n}, 203.0.113.7") for n in range(2)] \
            == [401, 401]
        assert upload("10.9.9.9", "198.51.100.50, 203.0.113.7") == 429
        # another client of the trusted proxy is its own address; untrusted, all are the peer
        assert upload("10.9.9.9", "203.0.113.8") == (401 if trusted else 429)
    finally:
        services.close()

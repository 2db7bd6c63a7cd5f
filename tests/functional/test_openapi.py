"""The OpenAPI document (``GET /api/openapi.json``) is valid and describes exactly the
``/api/`` routes the running app has: every route and method is documented, and every
documented path and method is routed. Routes and methods come from Pyramid's own registry
(the routes mapper and the view introspectables), not from a list kept by hand.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi
from pyramid.interfaces import IRoutesMapper
from webtest import TestApp

from repoproxy import hookimpl
from repoproxy.web.app import make_app
from repoproxy.web.openapi import PLUGIN_PATHS

# HEAD is answered wherever GET is (Pyramid adds it to a GET view), so it is not listed
IMPLIED = {"HEAD"}
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def openapi_path(pattern: str) -> str:
    """Pyramid pattern -> OpenAPI path: ``{name:regex}`` -> ``{name}``, ``*rest`` -> ``{rest}``."""
    pattern = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", pattern)
    return re.sub(r"\*(\w+)$", r"{\1}", pattern)


def routed_operations(app: Any) -> set[tuple[str, str]]:
    """(path, METHOD) of every view on a route whose pattern starts with ``/api/``."""
    registry = app.registry
    patterns = {r.name: r.pattern for r in registry.getUtility(IRoutesMapper).get_routes()
                if r.pattern.startswith("/api/")}
    found: set[tuple[str, str]] = set()
    routes_with_views: set[str] = set()
    for item in registry.introspector.get_category("views"):
        view = item["introspectable"]
        route = view["route_name"]
        if route not in patterns or view["exception_only"]:
            continue  # an exception view of a route (a refusal) is no operation of its own
        routes_with_views.add(route)
        methods = view["request_methods"]
        if methods is None:  # a view for every method: it must be documented as such
            methods = ("*",)
        elif isinstance(methods, str):
            methods = (methods,)
        found |= {(openapi_path(patterns[route]), m) for m in methods if m not in IMPLIED}
    # a route with no view at all answers 404 on every method: still a route to document
    found |= {(openapi_path(p), "*") for name, p in patterns.items()
              if name not in routes_with_views}
    return found


def documented_operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in doc["paths"].items()
            for method in item if method in METHODS}


def test_document_is_valid_openapi(testapp: TestApp) -> None:
    r = testapp.get("/api/openapi.json")
    assert r.content_type == "application/json"
    doc = r.json
    validate_openapi(doc)  # raises on any violation of the OpenAPI 3.1 specification
    assert doc["openapi"].startswith("3.")
    assert doc["servers"] == [{"url": "http://localhost"}]
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer",
                                 "description": schemes["bearer"]["description"]}
    assert schemes["basic"]["scheme"] == "basic"
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    # every operation answers errors with the one error body
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                assert item[method]["responses"]["default"] == {
                    "$ref": "#/components/responses/Error"}, (path, method)


def test_every_api_route_is_documented_and_every_documented_path_is_routed(
        app: Any, testapp: TestApp) -> None:
    routed = routed_operations(app)
    documented = documented_operations(testapp.get("/api/openapi.json").json)
    assert routed, "no /api/ route found: the introspection is broken"
    assert sorted(routed - documented) == [], "routes missing from the OpenAPI document"
    assert sorted(documented - routed) == [], "documented paths or methods not routed"
    # every first-party plugin's routes are there
    for plugin_paths in PLUGIN_PATHS.values():
        for path in plugin_paths:
            assert any(p == path for p, _ in routed), path


def test_a_new_undocumented_route_fails_the_comparison(services: Any) -> None:
    """The comparison above can fail: a plugin route missing from the document shows up."""

    class Extra:
        @hookimpl
        def repoproxy_configure(self, config: Any) -> None:
            config.add_route("extra.thing", "/api/v1/extra/{id}")
            config.add_view(lambda request: {}, route_name="extra.thing",
                            request_method="PUT", renderer="json")

    services.pm.register(Extra(), name="extra-test-plugin")
    app = make_app(services)
    documented = documented_operations(TestApp(app).get("/api/openapi.json").json)
    assert routed_operations(app) - documented == {("/api/v1/extra/{id}", "PUT")}


def test_a_blocked_plugins_paths_are_left_out(settings: dict[str, Any]) -> None:
    from repoproxy.domain.core import load_core

    settings["repoproxy.plugins.block"] = "repoproxy_cve, repoproxy_stats"
    services = load_core(settings, {})
    try:
        app = make_app(services)
        doc = TestApp(app).get("/api/openapi.json").json
    finally:
        services.close()
    assert "/api/v1/cves" not in doc["paths"]
    assert "/api/v1/reports/downloads" not in doc["paths"]
    assert "/api/v1/policies" in doc["paths"]  # others stay
    assert documented_operations(doc) == routed_operations(app)


def test_error_bodies_match_the_documented_error_schema(testapp: TestApp, make_channel: Any,
                                                        admin_headers: dict[str, str]) -> None:
    doc = testapp.get("/api/openapi.json").json
    error_schema = doc["components"]["schemas"]["Error"]
    make_channel("main")
    answers = [
        testapp.get("/api/v1/channels/nope", headers=admin_headers, status=404),
        testapp.post_json("/api/v1/channels", {"name": "Bad Name"}, headers=admin_headers,
                          status=400),
        testapp.get("/api/v1/search", status=400),
        testapp.get("/api/v1/audit", status=401),
        testapp.post_json("/api/v1/channels", {"name": "x"}, status=401),
        testapp.get("/api/v1/whoami", headers={"Authorization": "Bearer !!"}, status=401),
        testapp.get("/api/channels/main/artifacts/conda/x/files?limit=0", status=404),
    ]
    for r in answers:
        jsonschema.validate(r.json, error_schema)
    # the schema is strict: a body without a message, or with an unknown key, is refused
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"error": "x"}, error_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"error": "x", "message": "m", "extra": 1}, error_schema)


def test_success_bodies_match_their_documented_schemas(testapp: TestApp, make_channel: Any,
                                                       admin_headers: dict[str, str]) -> None:
    """A few real answers against the document, resolved the way a client would."""
    doc = testapp.get("/api/openapi.json").json

    def schema_of(path: str, method: str, status: str) -> dict[str, Any]:
        schema = doc["paths"][path][method]["responses"][status]["content"][
            "application/json"]["schema"]
        # resolve local $refs by embedding the components next to the schema
        return {**schema, "components": doc["components"]}

    make_channel("main")
    checks = [
        ("/api/v1/channels", "get", "200", testapp.get("/api/v1/channels")),
        ("/api/v1/channels/{name}", "get", "200", testapp.get("/api/v1/channels/main")),
        ("/api/v1/whoami", "get", "200", testapp.get("/api/v1/whoami",
                                                      headers=admin_headers)),
        ("/api/v1/tokens", "post", "201", testapp.post_json(
            "/api/v1/tokens", {"name": "ci", "channels": ["main"]}, headers=admin_headers,
            status=201)),
        ("/api/v1/tokens", "get", "200", testapp.get("/api/v1/tokens",
                                                      headers=admin_headers)),
    ]
    for path, method, status, r in checks:
        jsonschema.validate(r.json, schema_of(path, method, status))


# --- 500s found by tests/e2e/test_schemathesis.py, now specific 400s ------------------------
FUZZ_FOUND = [
    ("/api/v1/tokens", {"name": "t", "channels": 3.88e16}, "'channels' must be a list"),
    ("/api/v1/tokens", {"name": "t", "channels": [["main"]]}, "'channels' must be a list"),
    ("/api/v1/tokens", {"name": "t", "admin": True, "expires_in_days": 998941610475},
     "'expires_in_days' must be between 1 and 36500"),
    ("/api/v1/tokens", {"name": "t", "admin": True, "expires_in_days": True},
     "'expires_in_days' must be an integer"),
    ("/api/v1/tokens", {"name": [[]], "admin": True}, "'name' must be a string"),
    ("/api/v1/tokens", {"name": "t", "channels": ["main"], "user_id": ["x"]},
     "'user_id' must be a string"),
    ("/api/v1/policies", {"name": "p", "channel_name": {"a": 1}},
     "'channel_name' must be a string"),
    ("/api/v1/policies", {"name": ["p"]}, "'name' must be a string"),
    ("/api/v1/policies", {"name": "p", "description": {"a": 1}},
     "'description' must be a string"),
]


@pytest.mark.parametrize(("path", "body", "message"), FUZZ_FOUND)
def test_wrong_json_types_found_by_fuzzing_are_400s(
        testapp: TestApp, make_channel: Any, admin_headers: dict[str, str], path: str,
        body: dict[str, Any], message: str) -> None:
    make_channel("main")
    r = testapp.post_json(path, body, headers=admin_headers, status=400)
    assert message in r.json["message"]
    jsonschema.validate(r.json, testapp.get("/api/openapi.json").json["components"][
        "schemas"]["Error"])

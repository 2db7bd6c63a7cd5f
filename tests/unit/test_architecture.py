"""The architecture's rules that import-linter cannot see (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SQL = re.compile(r"\b(SELECT\s.+\sFROM|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|"
                 r"DELETE\s+FROM|CREATE\s+(TABLE|INDEX))\b", re.DOTALL)
#: where SQL text belongs: the core's storage layer and each plugin's own store module
SQL_HOMES = ("repoproxy/storage/", "plugins/repoproxy_policy/store.py",
             "plugins/repoproxy_cve/store.py", "plugins/repoproxy_stats/counter.py",
             "plugins/repoproxy_watch/state.py", "plugins/repoproxy_sbom/queue.py",
             "plugins/repoproxy_mirror/store.py")


def sql_strings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        and id(node) not in docstrings and SQL.search(node.value)
    ]


def test_sql_text_lives_only_in_storage_modules() -> None:
    offenders = []
    for path in sorted([*ROOT.glob("repoproxy/**/*.py"), *ROOT.glob("plugins/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(SQL_HOMES) or rel.startswith("repoproxy/testing/"):
            continue
        offenders += [f"{rel}:{line}: {text[:60]!r}" for line, text in sql_strings(path)]
    assert offenders == []


def test_the_sql_detector_finds_sql() -> None:
    # the rule above must be able to fail
    assert SQL.search("SELECT name FROM packages WHERE channel = ?")
    assert SQL.search("INSERT OR REPLACE INTO shards VALUES (?)")
    assert SQL.search("UPDATE tokens SET revoked = 1")
    assert not SQL.search("select a channel from the list")


def view_registrations(app: Any) -> list[dict[str, Any]]:
    introspector = app.registry.introspector
    # exception views of a route (a plugin's own refusal) answer for a view, not instead of one
    return [intr for intr in introspector.get_category("views")
            if intr["introspectable"]["route_name"]
            and not intr["introspectable"]["exception_only"]]


def test_every_routed_view_declares_a_permission(app: Any) -> None:
    from pyramid.security import NO_PERMISSION_REQUIRED

    missing = []
    views = view_registrations(app)
    assert len(views) > 30  # the core's and the plugins' views were found
    for view in views:
        intr = view["introspectable"]
        permissions = [r["value"] for r in view["related"]
                       if r.category_name == "permissions"]
        if not permissions:
            missing.append(f"{intr['route_name']} {intr['request_methods']} "
                           f"{getattr(intr['callable'], '__module__', '?')}")
        else:
            assert all(p == NO_PERMISSION_REQUIRED or ":" in str(p) for p in permissions)
    assert missing == []


def test_every_route_has_a_resource_factory(app: Any) -> None:
    from pyramid.interfaces import IRoutesMapper

    mapper = app.registry.getUtility(IRoutesMapper)
    without = [route.name for route in mapper.get_routes()
               if route.factory is None and not route.name.startswith("__")]
    assert without == []


HEAVY = ("pyramid", "webob", "waitress", "sqlite_utils", "requests", "rattler", "libarchive",
         "cyclonedx", "watchdog", "zstandard", "argon2", "bcrypt")


@pytest.mark.parametrize("argv", [["--help"], ["-h"]])
def test_help_loads_no_web_framework_database_or_client(argv: list[str]) -> None:
    code = (
        "import sys\n"
        "from repoproxy.cli import build_cli\n"
        f"sys.argv = ['repoproxy', *{argv!r}]\n"
        "try:\n"
        "    build_cli()(prog_name='repoproxy')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert "Usage: repoproxy" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"

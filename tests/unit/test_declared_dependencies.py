"""Every third-party import is declared in setup.cfg, and every declared package is used.

Imports are read with :mod:`ast` from every file of repoproxy/, plugins/, tests/ and bench/,
including those inside functions. Server code (repoproxy/ but its testing helpers, plugins/)
must be covered by ``install_requires``; tests, benchmarks and ``repoproxy.testing`` by
``install_requires`` plus the ``test`` extra. An import guarded by ``except ImportError`` is
optional (a peer a benchmark compares with when it is there) and needs no declaration.
Module -> distribution comes from the installed metadata (``packages_distributions``), so
this runs against what ``pip install -e '.[test]'`` really installed.
"""

from __future__ import annotations

import ast
import configparser
import importlib.metadata
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = re.compile(r"^repoproxy(_\w+)?$")

#: declared, never imported, and why that is right
NOT_IMPORTED = {
    "itsdangerous": "named by the project card; not imported by any code yet",
    "pytest-timeout": "a pytest plugin: the `timeout` setting and marks",
    "ruff": "a tool CI runs", "mypy": "a tool CI runs", "import-linter": "a tool CI runs",
    "types-requests": "type stubs for mypy", "types-cachetools": "type stubs for mypy",
    "Jinja2": "the UI's templates are written in its language; pyramid_jinja2 runs it",
}


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> tuple[set[str], set[str]]:
    """(install_requires, test extra) distribution names from setup.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")

    def names(value: str) -> set[str]:
        out = set()
        for line in value.splitlines():
            line = line.split("#")[0].strip()
            name = re.match(r"[A-Za-z0-9._-]*", line)
            if line and name is not None:
                out.add(normalize(name.group()))
        return out

    return (names(cfg["options"]["install_requires"]),
            names(cfg["options.extras_require"]["test"]))


def optional_imports(tree: ast.AST) -> set[int]:
    """ids of import nodes inside ``try: ... except ImportError``."""
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError",
                                                               "ModuleNotFoundError")
                for h in node.handlers):
            for stmt in node.body:
                guarded |= {id(n) for n in ast.walk(stmt)
                            if isinstance(n, ast.Import | ast.ImportFrom)}
    return guarded


def imports(path: Path) -> set[str]:
    """Top-level names of the absolute, non-optional imports of one file."""
    tree = ast.parse(path.read_text(), str(path))
    skip = optional_imports(tree)
    local = {p.stem for p in path.parent.glob("*.py")}  # bench/_common, tests' helpers
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return {m for m in out if m not in sys.stdlib_module_names and not FIRST_PARTY.match(m)
            and m not in local and m != "__future__"}


def third_party(*dirs: str, exclude: str | None = None) -> dict[str, set[str]]:
    """module -> files importing it."""
    found: dict[str, set[str]] = {}
    for d in dirs:
        for path in sorted((ROOT / d).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            if exclude and rel.startswith(exclude):
                continue
            for module in imports(path):
                found.setdefault(module, set()).add(rel)
    return found


def distributions(module: str) -> set[str]:
    return {normalize(d) for d in importlib.metadata.packages_distributions().get(module, [])}


def test_server_imports_are_in_install_requires() -> None:
    runtime, _ = declared()
    found = third_party("repoproxy", "plugins", exclude="repoproxy/testing")
    # the walk sees the real imports, top-level and inside functions
    assert {"pyramid", "libarchive", "waitress"} <= set(found)
    missing = {m: sorted(files) for m, files in found.items()
               if not distributions(m) & runtime}
    assert missing == {}, f"imported by server code but not in install_requires: {missing}"


def test_test_and_bench_imports_are_declared() -> None:
    runtime, test = declared()
    found = third_party("tests", "bench", "repoproxy/testing")
    assert {"hypothesis", "webtest", "cairosvg"} <= set(found)
    missing = {m: sorted(files) for m, files in found.items()
               if not distributions(m) & (runtime | test)}
    assert missing == {}, f"imported by tests or benchmarks but not declared: {missing}"


def test_every_declared_package_is_used() -> None:
    runtime, test = declared()
    used: set[str] = set()
    for module in third_party("repoproxy", "plugins", "tests", "bench"):
        used |= distributions(module)
    # declared for an extra of another package (cyclonedx-python-lib[json-validation]) or
    # imported through a plugin of pytest count as used by their import names above
    unused = sorted((runtime | test) - used - {normalize(n) for n in NOT_IMPORTED})
    assert unused == [], f"declared in setup.cfg but never imported: {unused}"


def test_the_walk_finds_imports_inside_functions_and_skips_optional_ones(
        tmp_path: Path) -> None:
    src = tmp_path / "mod.py"
    src.write_text("import os\n"
                   "def f():\n    from PIL import Image\n"
                   "try:\n    import conda_index\nexcept ImportError:\n    pass\n")
    assert imports(src) == {"PIL"}

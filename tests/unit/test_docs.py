"""Meta-tests: every hook is documented with its exact arguments, and every hook is tested."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from repoproxy import hookspecs

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "plugin_hooks.md"
TESTS = REPO / "tests"
HEADING = re.compile(r"^## (repoproxy_\w+)\((.*)\)\s*$", re.MULTILINE)


def _hookspecs() -> dict[str, list[str]]:
    """Hook name -> argument names, in the hookspec's order: the core's, then those that
    first-party plugins add with ``repoproxy_addhooks`` (held to the same rules)."""
    from repoproxy.plugins import get_plugin_manager

    specs = {
        name: list(inspect.signature(func).parameters)
        for name, func in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("repoproxy_") and hasattr(func, "repoproxy_spec")
    }
    for name, caller in vars(get_plugin_manager({}).hook).items():
        spec = getattr(caller, "spec", None)
        if name.startswith("repoproxy_") and spec is not None and name not in specs:
            specs[name] = list(spec.argnames)
    return specs


def _documented() -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    for name, args in HEADING.findall(DOC.read_text()):
        assert name not in sections, f"{name} is documented twice"
        sections[name] = [a.strip() for a in args.split(",") if a.strip()]
    return sections


def _test_names() -> set[str]:
    names = set()
    for path in TESTS.rglob("test_*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        names |= {
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_hook_")
        }
    return names


def test_hookspecs_are_found() -> None:
    specs = _hookspecs()
    assert "repoproxy_validate_package" in specs
    assert specs["repoproxy_identify"] == ["request", "credentials"]
    assert specs["repoproxy_settings_defaults"] == []


@pytest.mark.parametrize("hook", sorted(_hookspecs()))
def test_every_hook_is_documented_with_its_exact_arguments(hook: str) -> None:
    documented = _documented()
    assert hook in documented, f"docs/plugin_hooks.md has no '## {hook}(...)' section"
    assert documented[hook] == _hookspecs()[hook], (
        f"the heading of {hook} lists {documented[hook]}, the hookspec {_hookspecs()[hook]}"
    )


def test_every_documented_hook_exists() -> None:
    unknown = set(_documented()) - set(_hookspecs())
    assert not unknown, f"docs/plugin_hooks.md documents hooks that do not exist: {unknown}"


@pytest.mark.parametrize("hook", sorted(_hookspecs()))
def test_every_hook_has_a_test(hook: str) -> None:
    expected = "test_hook_" + hook.removeprefix("repoproxy_")
    assert expected in _test_names(), f"no test named {expected} under tests/"

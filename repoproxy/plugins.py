"""The plugin manager: built in a function, never at import time.

Order of loading: hookspecs; built-in plugins from :data:`DEFAULT_PLUGINS` (first, so that
third-party implementations, registered later, run before them); block list; the
``repoproxy`` entry-point group (first-party packages under plugins/ and third-party ones);
the site plugins directory; the allow list; ``check_pending``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pluggy

from repoproxy import hookspecs

log = logging.getLogger(__name__)
hooklog = logging.getLogger("repoproxy.hooks")

#: Built-in plugins, registered first.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "repoproxy.builtin.tokenauth",
    "repoproxy.builtin.userauth",
    "repoproxy.builtin.predefined",
    "repoproxy.builtin.htpasswd",
)
#: Built-ins that cannot be blocked: without them the server is unsafe or unusable.
ESSENTIAL_PLUGINS: frozenset[str] = frozenset({"repoproxy.builtin.tokenauth"})


def _names(value: Any) -> set[str]:
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return {str(v) for v in value or ()}


class PluginManager(pluggy.PluginManager):
    """pluggy's plugin manager, counting registrations: what caches a decision made from the
    loaded plugins (the server's lean path, web/lean.py) compares ``changes`` per request."""

    changes = 0

    def register(self, plugin: object, name: str | None = None) -> str | None:
        self.changes += 1
        return super().register(plugin, name)

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        self.changes += 1
        return super().unregister(plugin, name)


def get_plugin_manager(raw_settings: Mapping[str, Any] | None = None) -> PluginManager:
    """Build a plugin manager from (raw or parsed) settings."""
    settings = raw_settings or {}
    block = _names(settings.get("repoproxy.plugins.block", ())) - ESSENTIAL_PLUGINS
    allow = _names(settings.get("repoproxy.plugins.allow", ()))
    plugins_dir = str(settings.get("repoproxy.plugins.dir", "") or "")

    pm = PluginManager("repoproxy")
    pm.add_hookspecs(hookspecs)
    # historic: every plugin registered from here on gets to add its own hookspecs
    pm.hook.repoproxy_addhooks.call_historic(kwargs={"pluginmanager": pm})
    for name in DEFAULT_PLUGINS:
        if name in block:
            continue
        pm.register(importlib.import_module(name), name=name)
    for name in block:
        pm.set_blocked(name)
    _load_entrypoints(pm)
    if plugins_dir:
        _load_directory(pm, Path(plugins_dir), block)
    if allow:
        for name, plugin in list(pm.list_name_plugin()):
            if name not in allow and name not in ESSENTIAL_PLUGINS:
                pm.unregister(plugin, name=name)
    pm.check_pending()
    if os.environ.get("REPOPROXY_TRACE_HOOKS", "").lower() in ("1", "true", "yes"):
        pm.add_hookcall_monitoring(_trace_call, _trace_result)
    return pm


# A trace names the hook, its argument names and the plugins, never the argument values: the
# request and the credentials carry tokens (pluggy's own enable_tracing() prints them in full).
def _trace_call(hook_name: str, impls: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    hooklog.info("call %s(%s) on %s", hook_name, ", ".join(kwargs),
                 ", ".join(i.plugin_name for i in reversed(impls)) or "no plugin")


def _trace_result(outcome: Any, hook_name: str, impls: Sequence[Any],
                  kwargs: Mapping[str, Any]) -> None:
    if outcome.exception is not None:
        hooklog.info("finish %s: raised %s", hook_name, type(outcome.exception).__name__)
    else:
        result = outcome.get_result()
        what = f"{len(result)} results" if isinstance(result, list) else type(result).__name__
        hooklog.info("finish %s: %s", hook_name, what)


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    # pluggy's own loader; it skips blocked names and records the distribution for /-/plugins
    pm.load_setuptools_entrypoints("repoproxy")


def _load_directory(pm: pluggy.PluginManager, directory: Path, block: set[str]) -> None:
    if not directory.is_dir():
        log.warning("plugins directory %s does not exist", directory)
        return
    for path in sorted(directory.glob("*.py")):
        name = path.stem
        if name in block or pm.has_plugin(name):
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        pm.register(module, name=name)


def plugin_version(pm: pluggy.PluginManager, name: str, plugin: Any) -> str | None:
    for p, dist in pm.list_plugin_distinfo():
        if p is plugin:
            return str(dist.version)
    if name.startswith("repoproxy."):
        from repoproxy import __version__

        return __version__
    return getattr(plugin, "__version__", None)


def describe_plugins(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Name, version and hooks of every loaded plugin (for /-/plugins and the CLI)."""
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda np: np[0]):
        if plugin is None:
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or ())
        out.append({"name": name, "version": plugin_version(pm, name, plugin), "hooks": hooks})
    return out


def notify(pm: pluggy.PluginManager, hook_name: str, **kwargs: Any) -> None:
    """Call an event hook, one implementation at a time, isolating failures.

    An event hook runs after commit: one plugin's exception must neither undo the event nor keep
    the other plugins from hearing about it.
    """
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):  # pluggy's call order: last registered first
        args = {k: kwargs[k] for k in impl.argnames}
        try:
            impl.function(**args)
        except Exception:
            log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)


def collect(results: Iterable[Any]) -> list[Any]:
    """Flatten hook results where each implementation may return an item, a list, or None."""
    out: list[Any] = []
    for r in results:
        if r is None:
            continue
        if isinstance(r, (list, tuple, set, frozenset)) or (
            hasattr(r, "__iter__") and not isinstance(r, (str, bytes, dict))
        ):
            out.extend(x for x in r if x is not None)
        else:
            out.append(r)
    return out

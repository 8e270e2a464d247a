"""The per-app plugin manager: built-in hook implementations, entry points, direct plugins."""

from collections.abc import Iterable
from importlib.metadata import entry_points

import pluggy

from . import defaults, hookspecs
from .hookspecs import hookimpl

__all__ = ["hookimpl", "make_plugin_manager", "plugin_summary"]
ENTRY_POINT_GROUP = "homework"


class PluginLoadError(RuntimeError):
    """An installed plugin could not be loaded; the message names it and the way out."""


def make_plugin_manager(
    plugins: Iterable[object] = (),
    load_entry_points: bool = True,
    disabled: Iterable[str] = (),
) -> pluggy.PluginManager:
    """Return a new plugin manager with the built-in defaults and the given plugins;
    installed plugins named in `disabled` are not loaded at all."""
    pm = pluggy.PluginManager("homework")
    pm.add_hookspecs(hookspecs)
    pm.register(defaults, name="homework.defaults")
    for name in disabled:
        pm.set_blocked(name)
    if load_entry_points:
        _load_entry_points(pm)
    for plugin in plugins:
        pm.register(plugin, name=_free_name(pm, plugin))
    # A misspelled hook implementation (e.g. `curent_therapist`) must fail at start-up,
    # not be silently ignored.
    pm.check_pending()
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
            continue
        dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "an unknown package"
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:  # any bug in someone else's package, named for the admin
            raise PluginLoadError(
                f"The homework plugin {ep.name!r} ({ep.value}, from {dist}) failed to "
                f"load: {type(exc).__name__}: {exc}. Fix or uninstall that package, or "
                f"set HOMEWORK_DISABLED_PLUGINS = [{ep.name!r}] to start without it."
            ) from exc


def _free_name(pm: pluggy.PluginManager, plugin: object) -> str:
    """A readable name for a plugin passed in directly: its module's or its class's name."""
    base = getattr(plugin, "__name__", None) or type(plugin).__name__
    name, n = base, 1
    while pm.get_plugin(name) is not None or pm.is_blocked(name):
        n += 1
        name = f"{base}-{n}"
    return name


def plugin_summary(pm: pluggy.PluginManager) -> list[dict]:
    """List each registered plugin with the hooks it implements."""
    rows = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked by HOMEWORK_DISABLED_PLUGINS
            continue
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        rows.append({"name": name, "hooks": hooks})
    return rows
